"""The broken-plan corpus: every mistake is one ``HilError`` at its file:line.

``tests/plans/broken/`` holds one plan per mistake a lab engineer could make;
``expected.yaml`` says where hil must report it and a substring of what it
must say. Entries marked ``xfail`` hold the message hil *should* give (the
reason says what it gives today); they are strict, so a fix shows up as
XPASS until the mark is removed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

import hil.yamlio
from hil.bench.definition import DeviceDefinition
from hil.bench.loader import LoadedBench, load_bench
from hil.errors import HilError, PlanError
from hil.plan.loader import load_plan
from hil.plan.resolve import resolve_plan
from hil.plan.tools import validate_plans
from tests.conftest import EMULATED_BENCH, ROOT

CORPUS = ROOT / "tests" / "plans" / "broken"
EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load(
    (CORPUS / "expected.yaml").read_text(encoding="utf-8")
)
FILES = sorted(p for p in CORPUS.glob("*.yaml") if p.name != "expected.yaml")


@pytest.fixture(scope="module")
def bench() -> LoadedBench:
    return load_bench(EMULATED_BENCH)


@pytest.fixture(scope="module")
def definitions(bench: LoadedBench) -> dict[str, DeviceDefinition]:
    return bench.definitions()


@pytest.fixture(scope="module")
def capabilities(bench: LoadedBench) -> dict[str, frozenset[str]]:
    return bench.capabilities()


def plan_error(
    path: Path,
    definitions: dict[str, DeviceDefinition],
    capabilities: dict[str, frozenset[str]],
) -> BaseException | None:
    """The one exception that loading, expanding and resolving ``path`` raises."""
    try:
        loaded = load_plan(path)
        for instance in loaded.instances():
            resolve_plan(instance, definitions, capabilities)
    except Exception as err:  # any type: the test judges it
        return err
    return None


def _case(name: str) -> Any:
    entry = EXPECTED.get(name, {})
    marks = [pytest.mark.xfail(strict=True, reason=entry["xfail"])] if "xfail" in entry else []
    return pytest.param(name, id=name, marks=marks)


@pytest.mark.parametrize("name", [_case(p.name) for p in FILES])
def test_each_mistake_is_one_located_hil_error(
    name: str,
    definitions: dict[str, DeviceDefinition],
    capabilities: dict[str, frozenset[str]],
) -> None:
    entry = EXPECTED[name]
    path = CORPUS / name
    err = plan_error(path, definitions, capabilities)
    assert err is not None, f"{name}: hil accepted a broken plan"
    assert isinstance(err, HilError), f"{name}: crashed with {type(err).__name__}: {err}"
    message = str(err)
    where = f"{path}:{entry['line']}:"
    if entry["column"] is not None:
        where += f"{entry['column']}:"
    assert message.startswith(where), f"expected {where!r} at the start of: {message}"
    assert entry["message"] in message, f"expected {entry['message']!r} in: {message}"


def test_corpus_is_complete_and_distinct() -> None:
    names = [p.name for p in FILES]
    assert len(names) >= 40
    assert sorted(EXPECTED) == names, "every corpus file has exactly one expected.yaml entry"
    for name in names:
        number, _, slug = name.partition("-")
        assert number.isdigit() and len(number) == 2 and slug.endswith(".yaml"), name
    keys = [(e["line"], e["column"], e["message"]) for e in EXPECTED.values()]
    assert len(set(keys)) == len(keys), "two cases expect the same message at the same place"


def _validate_each(paths: list[Path], bench: LoadedBench) -> None:
    count, problems = validate_plans(paths, bench)
    assert count == len(paths)
    assert len(problems) == len(paths), "\n".join(problems)
    for path, problem in zip(paths, problems, strict=True):
        assert problem.startswith(f"{path}:"), problem
        assert "\n" not in problem.strip(), problem


def test_validate_reports_all_problems_at_once(bench: LoadedBench) -> None:
    """``hil plans validate`` goes on after a bad file: one line per file, in order."""
    _validate_each(list(FILES), bench)


def test_a_50_mb_plan_is_refused_by_size_before_parsing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as fh:
        fh.write(b"spec: 1\nid: HUGE\ntitle: huge\ndevices: [ev]\nsteps:\n")
        row = b"  - wait: {duration: 1 s}\n"
        fh.write(row * (50 * 1024 * 1024 // len(row) + 1))

    def must_not_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the file was parsed")

    monkeypatch.setattr(hil.yamlio, "load_text", must_not_parse)
    start = time.perf_counter()
    with pytest.raises(PlanError) as err:
        load_plan(path)
    assert time.perf_counter() - start < 1.0
    assert str(err.value).startswith(f"{path}: ")
    assert "larger than the 2048 KiB allowed" in str(err.value)


def test_a_generated_billion_laughs_plan_is_refused_quickly(tmp_path: Path) -> None:
    lines = [
        "spec: 1",
        "id: LOL",
        "title: billion laughs",
        "devices: [ev]",
        "steps: [{wait: {duration: 1}}]",
        "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]",
    ]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 10)]
    lines.append("description: *l9")  # 10**10 values if expanded
    path = tmp_path / "lol.yaml"
    path.write_text("\n".join(lines) + "\n")
    start = time.perf_counter()
    with pytest.raises(PlanError) as err:
        load_plan(path)
    assert time.perf_counter() - start < 5.0
    assert str(err.value).startswith(f"{path}:")
    assert "billion laughs" in str(err.value)
