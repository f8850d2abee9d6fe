"""Options, plan collection and the ``bench`` fixture."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hil.bench.bench import Bench
from hil.errors import HilError
from hil.pytest_plugin.abort import pytest_runtest_makereport  # noqa: F401 (a hook)
from hil.pytest_plugin.items import PlanFile, is_plan_file
from hil.pytest_plugin.session import SESSION_KEY, HilSession, hil_session
from hil.report import allure_files
from hil.secrets import install_log_redaction

DEFAULT_BENCH = "benches/emulated.yaml"
ROOTS_KEY = pytest.StashKey[list[Path]]()
SIGTERM_KEY = pytest.StashKey[Any]()  # the handler to restore


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("hil", "hardware-in-the-loop (hil)")
    group.addoption(
        "--bench",
        dest="hil_bench",
        action="append",
        default=[],
        metavar="FILE[,FILE…]",
        help="bench file to run on; several (repeat, or a comma list) make a pool from which "
        "each process (xdist worker) leases one",
    )
    group.addoption(
        "--hil-lease-timeout",
        dest="hil_lease_timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long to wait for a free bench of the pool (default: ini hil_lease_timeout)",
    )
    group.addoption(
        "--hil-defect",
        dest="hil_defects",
        action="append",
        default=[],
        metavar="DEVICE:DEFECT",
        help="inject an emulator defect (repeatable)",
    )
    group.addoption(
        "--hil-results", dest="hil_results", default=None, help="write plan records (JSON) here"
    )
    group.addoption(
        "--hil-param",
        dest="hil_params",
        action="append",
        default=[],
        metavar="[PLAN.]NAME=VALUE",
        help="override a plan parameter (repeatable)",
    )
    group.addoption(
        "--hil-answers",
        dest="hil_answers",
        default=None,
        metavar="FILE",
        help="answers for operator prompts (YAML: step id → answer), for unattended runs",
    )
    parser.addini("hil_bench", "default bench file", default=DEFAULT_BENCH)
    parser.addini("hil_lease_timeout", "seconds to wait for a free bench", default="60")
    parser.addini(
        "hil_plan_roots",
        "folders whose YAML files are plans",
        type="linelist",
        default=["testplans"],
    )
    parser.addini("hil_requirement_url", "URL of a requirement; {id} is replaced", default="{id}")


def pytest_configure(config: pytest.Config) -> None:
    install_log_redaction()  # bench secrets never reach a log line, captured or not
    if threading.current_thread() is threading.main_thread():
        config.stash[SIGTERM_KEY] = signal.signal(signal.SIGTERM, _on_sigterm)
    pool = _bench_pool(config)
    results = config.getoption("hil_results")
    answers = config.getoption("hil_answers")
    timeout = config.getoption("hil_lease_timeout") or float(config.getini("hil_lease_timeout"))
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    config.stash[SESSION_KEY] = HilSession(
        bench_path=pool[0],
        pool=pool,
        # an xdist controller runs no plan: only the workers lease benches
        leases=workerinput is not None or config.getoption("dist", "no") == "no",
        worker=str(workerinput["workerid"]) if workerinput else "main",
        lease_timeout_s=timeout,
        defects=list(config.getoption("hil_defects")),
        results_dir=Path(results).resolve() if results else None,
        requirement_url=str(config.getini("hil_requirement_url")),
        params=list(config.getoption("hil_params")),
        answers=Path(answers).resolve() if answers else None,
        terminal=_terminal_reader(config),
    )


def _bench_pool(config: pytest.Config) -> list[Path]:
    """``--bench`` values (repeated, or comma lists), relative to the rootdir; else the ini's."""
    given = [b for arg in config.getoption("hil_bench") for b in arg.split(",") if b.strip()]
    names = given or [str(config.getini("hil_bench"))]
    return [Path(n) if Path(n).is_absolute() else config.rootpath / n.strip() for n in names]


def _terminal_reader(config: pytest.Config) -> Callable[[str], str] | None:
    """Reads an operator's answer with pytest's output capture suspended, if a person is there."""
    if not os.isatty(0):
        return None
    capman = config.pluginmanager.getplugin("capturemanager")

    def read(question: str) -> str:
        with capman.global_and_fixture_disabled():
            return input(question)

    return read


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into pytest's own interruption path (teardowns, interlock, reports)."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated("SIGTERM")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The interlock (every process with a bench), then, once, from the controller:
    environment.properties and categories.json."""
    config = session.config
    interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
    reason = "session interrupted (Ctrl-C or SIGTERM)" if interrupted else "end of session"
    hil_session(config).make_safe(reason)
    alluredir = config.getoption("allure_report_dir", None)
    if not alluredir or hasattr(config, "workerinput"):  # xdist workers leave it alone
        return
    hil = hil_session(config)
    try:
        bench = hil.loaded_bench()
    except HilError:
        return  # the bench file itself is broken; every item already says so
    identities = hil.bench.identities() if hil.bench is not None else {}
    allure_files.write(Path(alluredir), bench, identities, config.rootpath)
    if len(hil.pool) > 1:  # each plan's record names the bench it ran on; this, the pool
        with (Path(alluredir) / "environment.properties").open("a", encoding="utf-8") as out:
            out.write("bench.pool=" + " ".join(p.name for p in hil.pool) + "\n")


def pytest_unconfigure(config: pytest.Config) -> None:
    previous = config.stash.get(SIGTERM_KEY, None)
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)
    session = config.stash.get(SESSION_KEY, None)
    if session is not None:
        session.close()


def _plan_roots(config: pytest.Config) -> list[Path]:
    """The ini's plan folders (``-o hil_plan_roots=…`` adds a lab's own: ``hil certify``
    does), plus the folder of any YAML file named on the command line."""
    roots = [config.rootpath / r for r in config.getini("hil_plan_roots")]
    if config.args_source is pytest.Config.ArgsSource.ARGS:
        for arg in config.args:
            path = (config.invocation_params.dir / arg.split("::")[0]).resolve()
            if path.suffix in (".yaml", ".yml") and path.is_file():
                roots.append(path.parent)
    return roots


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.File | None:
    roots = parent.config.stash.get(ROOTS_KEY, None)
    if roots is None:
        roots = parent.config.stash[ROOTS_KEY] = _plan_roots(parent.config)
    if is_plan_file(file_path, roots):
        # explore files (hil.explore) sit in an explore/ folder of a plan root
        from hil.pytest_plugin.explore_items import ExploreFile, is_explore_file

        if is_explore_file(file_path):
            return ExploreFile.from_parent(parent, path=file_path)
        return PlanFile.from_parent(parent, path=file_path)
    return None


@pytest.fixture(scope="session")
def bench(request: pytest.FixtureRequest) -> Bench:
    """The session's bench (``--bench``), opened once and shared with plan items.

    It is closed when the session ends (``pytest_unconfigure``), after every
    plan item and test that shares it.
    """
    return hil_session(request.config).open_bench()
