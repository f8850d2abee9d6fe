"""The plan cache (``hil.plan_cache``): a hit gives what a miss gives, on every shipped
plan; an edited file misses; a corrupt entry is ignored and replaced; writers racing on
one entry leave it whole; ``HIL_PLAN_CACHE=0`` switches it off; the directory is pruned."""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hil import plan_cache, yaml_fast, yamlio
from hil.bench.loader import load_bench
from hil.errors import ConfigError, PlanError
from hil.plan.loader import LoadedPlan, load_plan
from hil.plan.resolve import resolve_plan

from .test_yaml_lazy_locations import _same

ROOT = Path(__file__).resolve().parents[2]
PLANS = sorted((ROOT / "testplans").rglob("*.yaml"))
EXAMPLE = ROOT / "testplans" / "acceptance" / "A0-plug-switching.yaml"


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test with its own, empty cache, switched on."""
    home = tmp_path / "cache"
    monkeypatch.setenv("HIL_CACHE_DIR", str(home))
    monkeypatch.delenv("HIL_PLAN_CACHE", raising=False)
    return home


def _entries(home: Path) -> list[Path]:
    return sorted((home / "plans").glob("*/*.json"))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _outcome(path: Path) -> Any:
    """Everything loading ``path`` gives: the document, its positions, each instance's
    plan and what resolving it says; or the error, with its place."""
    try:
        loaded = load_plan(path)
    except PlanError as err:
        return ("error", str(err), err.file, err.line, err.column)
    return _loaded_outcome(loaded)


_BENCH = load_bench(ROOT / "benches" / "emulated.yaml")


def _loaded_outcome(loaded: LoadedPlan) -> Any:
    resolved = []
    for instance in loaded.instances():
        try:
            plan = resolve_plan(instance, _BENCH.definitions(), _BENCH.capabilities())
        except PlanError as err:
            resolved.append((instance.plan, str(err)))
        else:
            resolved.append((instance.plan, repr(plan)))
    return (
        "plan",
        loaded.data,
        loaded.locations.fast_items,
        loaded.sha256,
        resolved,
    )


def _same_outcome(a: Any, b: Any) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] == "error":
        return bool(a == b)
    return _same(a[1], b[1]) and a[2:] == b[2:]


def _tamper(entry: Path, edit: Any) -> None:
    """Rewrite ``entry`` with ``edit`` applied to its body, its check digest made to match:
    a wrong entry that looks whole (the reads below must tell it from the right one)."""
    head, _, payload = entry.read_bytes().partition(b"\n")
    body = json.loads(payload)
    edit(body)
    payload = json.dumps(body).encode()
    header = json.loads(head)
    header["check"] = hashlib.sha256(payload).hexdigest()
    entry.write_bytes(json.dumps(header).encode() + b"\n" + payload)


@pytest.mark.parametrize("path", PLANS, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_hit_gives_what_a_miss_gives(
    path: Path, cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HIL_PLAN_CACHE", "0")
    reference = _outcome(path)
    monkeypatch.delenv("HIL_PLAN_CACHE")
    assert not _entries(cache_home)
    miss = _outcome(path)  # parses and writes the entry
    entry = plan_cache.entry_path(_digest(path))
    if reference[0] == "plan":
        assert entry.is_file()  # every shipped plan's document is JSON data
    hit = _outcome(path)
    if entry.is_file():
        assert plan_cache.read_entry(entry, _digest(path)) is not None  # it was a hit
    assert _same_outcome(miss, reference)
    assert _same_outcome(hit, reference)


def test_the_comparison_above_sees_a_wrong_entry(cache_home: Path) -> None:
    """The check of the test above fails for an entry with another value or position."""
    reference = _outcome(EXAMPLE)
    entry = plan_cache.entry_path(_digest(EXAMPLE))
    assert _same_outcome(_outcome(EXAMPLE), reference)

    def other_value(body: dict[str, Any]) -> None:
        body["data"]["title"] += " (edited)"

    _tamper(entry, other_value)
    assert not _same_outcome(_outcome(EXAMPLE), reference)

    def other_line(body: dict[str, Any]) -> None:
        body["items"][0][1] += 1

    _tamper(entry, lambda body: body["data"].update(title=reference[1]["title"]))
    assert _same_outcome(_outcome(EXAMPLE), reference)
    _tamper(entry, other_line)
    assert not _same_outcome(_outcome(EXAMPLE), reference)

    def other_type(body: dict[str, Any]) -> None:
        body["data"]["spec"] = 1.0  # equal to 1, but not the same value

    _tamper(entry, other_type)
    assert not _same_outcome(_outcome(EXAMPLE), reference)


def test_an_edited_file_misses(
    tmp_path: Path, cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "plan.yaml"
    text = EXAMPLE.read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    before = load_plan(path)
    assert len(_entries(cache_home)) == 1
    path.write_text(text.replace("title:", "title: Edited", 1), encoding="utf-8")
    after = load_plan(path)
    assert after.data["title"].startswith("Edited")
    assert after.data["title"] != before.data["title"]
    assert len(_entries(cache_home)) == 2  # a new key, the old entry untouched
    monkeypatch.setenv("HIL_PLAN_CACHE", "0")
    assert _same(load_plan(path).data, after.data)


def test_a_changed_loader_reads_no_old_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key holds the loader's own code: one comment more gives another fingerprint."""
    before = plan_cache.entry_path("ab", tmp_path)
    edited = tmp_path / "yaml_fast.py"
    edited.write_bytes(Path(str(yaml_fast.__file__)).read_bytes() + b"# changed\n")
    monkeypatch.setattr(yaml_fast, "__file__", str(edited))
    plan_cache.fingerprint.cache_clear()
    try:
        assert plan_cache.entry_path("ab", tmp_path) != before
        assert plan_cache.entry_path("ab", tmp_path).name == before.name  # the same file, elsewhere
    finally:
        monkeypatch.undo()
        plan_cache.fingerprint.cache_clear()
    assert plan_cache.entry_path("ab", tmp_path) == before


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda raw: b"",
        lambda raw: raw[: len(raw) // 2],  # a torn write
        lambda raw: raw.replace(b'"spec":1', b'"spec":2', 1),  # the body, not its digest
        lambda raw: b"not json\n" + raw,
        lambda raw: b'{"hil-plan-cache": 1}\n[]',
        lambda raw: raw.partition(b"\n")[0] + b"\n" + b"\xff\xfe",
    ],
    ids=["empty", "torn", "edited", "no-header", "no-body", "not-utf8"],
)
def test_a_corrupt_entry_is_ignored_and_replaced(corrupt: Any, cache_home: Path) -> None:
    reference = load_plan(EXAMPLE)
    entry = plan_cache.entry_path(_digest(EXAMPLE))
    good = entry.read_bytes()
    entry.write_bytes(corrupt(good))
    assert plan_cache.read_entry(entry, _digest(EXAMPLE)) is None
    again = load_plan(EXAMPLE)
    assert _same(again.data, reference.data)
    assert again.locations.fast_items == reference.locations.fast_items
    assert entry.read_bytes() == good  # written anew


def test_an_unwritable_cache_loads_as_without(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("HIL_CACHE_DIR", str(blocker))
    loaded = load_plan(EXAMPLE)
    assert loaded.data["spec"] == 1
    assert blocker.read_text() == "not a directory"


def test_the_switch_turns_it_off(cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = load_plan(EXAMPLE)
    entry = plan_cache.entry_path(_digest(EXAMPLE))
    _tamper(entry, lambda body: body["data"].update(title="from the cache"))
    assert load_plan(EXAMPLE).data["title"] == "from the cache"  # on: the entry is read
    monkeypatch.setenv("HIL_PLAN_CACHE", "0")
    assert load_plan(EXAMPLE).data["title"] == reference.data["title"]  # off: not read
    entry.unlink()
    load_plan(EXAMPLE)
    assert not entry.exists()  # nor written
    assert not plan_cache.enabled()
    monkeypatch.setenv("HIL_PLAN_CACHE", "1")
    assert plan_cache.enabled()


def test_only_json_data_is_stored_and_errors_never(cache_home: Path) -> None:
    dated = "spec: 1\nwhen: 2001-12-14\nlist: [1, 2]\n"
    numbered = "spec: 1\nkeys: {1: one, 2.5: half}\nlist: [1, 2]\n"
    for _ in range(2):
        data, locs = plan_cache.load_text(dated, "f.yaml", "d" * 64)
        assert type(data["when"]).__name__ == "date"
        assert locs.fast_items == {("list", 0): (3, 8), ("list", 1): (3, 11)}
        data, locs = plan_cache.load_text(numbered, "f.yaml", "e" * 64)
        assert data["keys"] == {1: "one", 2.5: "half"}
        assert locs.fast_items == {("list", 0): (3, 8), ("list", 1): (3, 11)}
    assert not _entries(cache_home)
    with pytest.raises(ConfigError) as want:
        yamlio.load_text("a: [1, 2\n", "f.yaml")
    for _ in range(2):
        with pytest.raises(ConfigError, match="malformed YAML") as err:
            plan_cache.load_text("a: [1, 2\n", "f.yaml", "c" * 64)
        assert (str(err.value), err.value.line) == (str(want.value), want.value.line)
    assert not _entries(cache_home)
    for _ in range(2):  # NaN is a JSON value (Python's json writes and reads it)
        data, _ = plan_cache.load_text("spec: 1\nlist: [1.5, .nan, x]\n", "f.yaml", "f" * 64)
        assert data["list"][0] == 1.5 and math.isnan(data["list"][1])
    assert len(_entries(cache_home)) == 1
    assert (cache_home / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (cache_home / "CACHEDIR.TAG").read_text().startswith("Signature: 8a477f597d28d172")


_WRITER = """
import sys
from hil import plan_cache, yamlio
path, digest, text, times = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
data, locs = yamlio.load_text(text, "f.yaml")
from pathlib import Path
for _ in range(times):
    assert plan_cache.write_entry(Path(path), digest, data, locs.fast_items)
"""


def test_racing_writers_leave_a_whole_entry(cache_home: Path) -> None:
    """Two processes (as two xdist workers) write one entry again and again while this
    one reads it: once it exists, every read gives the whole document."""
    text = EXAMPLE.read_text(encoding="utf-8")
    digest = _digest(EXAMPLE)
    entry = plan_cache.entry_path(digest)
    want, locs = yamlio.load_text(text, "f.yaml")
    entry.parent.mkdir(parents=True)
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(entry), digest, text, "300"], cwd=ROOT)
        for _ in range(2)
    ]
    reads = whole = 0
    deadline = time.monotonic() + 120  # bounds the loop, judges nothing
    while any(w.poll() is None for w in writers) and time.monotonic() < deadline:
        if not entry.exists():
            continue
        got = plan_cache.read_entry(entry, digest)
        reads += 1
        assert got is not None, f"a partial entry after {whole} whole reads"
        assert _same(got[0], want) and got[1] == locs.fast_items
        whole += 1
    assert whole > 0  # the entry was read while being rewritten
    assert [w.wait(timeout=60) for w in writers] == [0, 0]
    got = plan_cache.read_entry(entry, digest)
    assert got is not None and _same(got[0], want)
    assert list(entry.parent.iterdir()) == [entry]  # no temporary file left behind


def test_prune_drops_the_least_recently_used(cache_home: Path) -> None:
    folder = cache_home / "plans"
    entries = []
    for i in range(8):
        text = f"spec: 1\nlist: [{'x' * 1000}, {i}]\n"
        plan_cache.load_text(text, "f.yaml", f"{i:064x}")
        entry = plan_cache.entry_path(f"{i:064x}")
        os.utime(entry, (1_000_000 + i, 1_000_000 + i))  # written in this order
        entries.append(entry)
    size = sum(e.stat().st_size for e in entries)
    assert plan_cache.prune(folder, limit=size) == 0  # within the bound: nothing goes
    assert plan_cache.read_entry(entries[0], f"{0:064x}") is not None  # used: now the newest
    removed = plan_cache.prune(folder, limit=size // 2)
    kept = [e for e in entries if e.exists()]
    assert removed == len(entries) - len(kept) > 0
    assert sum(e.stat().st_size for e in kept) <= size // 2 * 3 // 4
    assert entries[0] in kept  # the one just read stays
    assert entries[1] not in kept and entries[-1] in kept  # the oldest went first
