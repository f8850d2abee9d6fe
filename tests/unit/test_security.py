"""Plans and bench files are data, and emulators serve only this machine.

* No code path can turn loaded text into code: the source tree is scanned for
  ``eval``/``exec``/``compile``, pickle-like deserialisers, unsafe YAML
  loaders, ``shell=True`` and dynamic imports of computed names. The scanner
  is shown to find each one in a planted sample, so a clean scan means
  something.
* Every server an emulated bench starts listens on loopback only, checked on
  the sockets the kernel reports for this process (``/proc/net/tcp``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil.bench.bench import open_bench
from hil.process_resources import is_loopback, listening_tcp
from hil.transports.socketcand_gateway import SocketcandGateway
from tests.conftest import EMULATED_BENCH, ROOT

SCANNED = ("hil", "devices", "fixtures", "benchmarks", "conftest.py")
CODE_FROM_TEXT = {"eval", "exec", "compile", "__import__"}
DESERIALISERS = {"pickle", "cPickle", "dill", "marshal", "shelve", "jsonpickle"}
UNSAFE_YAML = {"load", "load_all", "unsafe_load", "unsafe_load_all", "full_load", "full_load_all"}
UNSAFE_LOADERS = {"Loader", "UnsafeLoader", "FullLoader"}


def findings(source: str, filename: str = "<sample>") -> list[str]:
    """Every construct that could run loaded text as code, as ``file:line: what``."""
    found: list[str] = []
    tree = ast.parse(source, filename)
    # names bound to one of PyYAML's safe loaders (``loader = yaml.CSafeLoader``)
    safe_loaders = {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign | ast.AnnAssign)
        and node.value is not None
        and "SafeLoader" in ast.unparse(node.value)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    for node in ast.walk(tree):
        where = f"{filename}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names]
            module = node.module if isinstance(node, ast.ImportFrom) else None
            for name in [module or "", *names]:
                if name.split(".")[0] in DESERIALISERS:
                    found.append(f"{where}: imports {name}")
            if module == "yaml" and set(names) & (UNSAFE_YAML | UNSAFE_LOADERS):
                found.append(f"{where}: imports an unsafe YAML loader")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in CODE_FROM_TEXT:
                found.append(f"{where}: calls {func.id}()")
            if isinstance(func, ast.Attribute):
                owner = func.value.id if isinstance(func.value, ast.Name) else ""
                if owner == "yaml" and func.attr in UNSAFE_YAML:
                    loader = next((k.value for k in node.keywords if k.arg == "Loader"), None)
                    if not _safe_loader(loader, safe_loaders):
                        found.append(f"{where}: yaml.{func.attr}()")
                computed = not (node.args and isinstance(node.args[0], ast.Constant))
                if owner == "importlib" and func.attr == "import_module" and computed:
                    found.append(f"{where}: importlib.import_module of a computed name")
            for kw in node.keywords:
                if kw.arg == "shell" and not (
                    isinstance(kw.value, ast.Constant) and kw.value.value is False
                ):
                    found.append(f"{where}: subprocess with shell=True")
        elif (
            isinstance(node, ast.Attribute)
            and node.attr in UNSAFE_LOADERS
            and isinstance(node.value, ast.Name)
            and node.value.id == "yaml"
        ):
            found.append(f"{where}: yaml.{node.attr}")
    return found


def _safe_loader(loader: ast.expr | None, safe_names: set[str]) -> bool:
    if loader is None:
        return False
    if isinstance(loader, ast.Name):
        return loader.id in safe_names or "SafeLoader" in loader.id
    return isinstance(loader, ast.Attribute) and loader.attr in ("SafeLoader", "CSafeLoader")


def _sources() -> Iterator[Path]:
    for entry in SCANNED:
        path = ROOT / entry
        yield from ([path] if path.is_file() else sorted(path.rglob("*.py")))


PLANTED = {
    "eval": "x = eval(text)",
    "exec": "exec(text)",
    "compile": "code = compile(text, 'f', 'exec')",
    "pickle": "import pickle\npickle.loads(data)",
    "marshal": "from marshal import loads",
    "yaml.load": "import yaml\nyaml.load(text, Loader=yaml.Loader)",
    "yaml.load without a loader": "import yaml\nyaml.load(text)",
    "yaml.unsafe_load": "import yaml\nyaml.unsafe_load(text)",
    "UnsafeLoader": "from yaml import UnsafeLoader",
    "shell": "import subprocess\nsubprocess.run(cmd, shell=True)",
    "import_module": "import importlib\nimportlib.import_module(name)",
    "__import__": "m = __import__(name)",
}


@pytest.mark.parametrize("construct", sorted(PLANTED))
def test_the_scanner_finds_each_construct_when_planted(construct: str) -> None:
    assert findings(PLANTED[construct]), construct


def test_the_scanner_leaves_safe_code_alone() -> None:
    safe = (
        "import yaml\ndata = yaml.safe_load(text)\nimport subprocess\nsubprocess.run(['ls'])\n"
        "loader = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)\nyaml.load(text, Loader=loader)\n"
    )
    assert findings(safe) == []


def test_no_code_path_turns_loaded_text_into_code() -> None:
    sources = list(_sources())
    assert len(sources) > 100  # the tree was really scanned
    found = [f for path in sources for f in findings(path.read_text(encoding="utf-8"), str(path))]
    assert found == []


def test_every_emulator_server_listens_on_loopback_only() -> None:
    before = set(listening_tcp())
    with open_bench(EMULATED_BENCH), SocketcandGateway() as gateway:
        opened = set(listening_tcp()) - before
        assert opened, "the emulated bench and the gateway opened no server: nothing was checked"
        assert any(port == gateway.port for _, port in opened)
        exposed = [f"{addr}:{port}" for addr, port in opened if not is_loopback(addr)]
        assert exposed == []
