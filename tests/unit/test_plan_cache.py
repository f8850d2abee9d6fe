"""The plan cache (``hil.plan_cache``): a hit gives what a miss gives, on every shipped
plan; an edited file misses; a corrupt entry is ignored and replaced; writers racing on
one entry leave it whole; ``HIL_PLAN_CACHE=0`` switches it off; the file is pruned."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
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
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test with its own, empty cache, switched on."""
    home = tmp_path / "cache"
    monkeypatch.setenv("HIL_CACHE_DIR", str(home))
    monkeypatch.delenv("HIL_PLAN_CACHE", raising=False)
    yield home
    plan_cache.Store.close_all()


def _db(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(home / plan_cache.DB_NAME, isolation_level=None)


def _entries(home: Path) -> list[str]:
    if not (home / plan_cache.DB_NAME).exists():
        return []
    with contextlib.closing(_db(home)) as db:
        return [key for (key,) in db.execute("SELECT key FROM entries ORDER BY key")]


def _raw(home: Path, digest: str) -> bytes:
    with contextlib.closing(_db(home)) as db:
        (entry,) = db.execute(
            "SELECT entry FROM entries WHERE key = ?", (plan_cache.entry_key(digest),)
        ).fetchone()
    assert isinstance(entry, bytes)
    return entry


def _set_raw(home: Path, digest: str, entry: bytes) -> None:
    with contextlib.closing(_db(home)) as db:
        db.execute(
            "UPDATE entries SET entry = ? WHERE key = ?", (entry, plan_cache.entry_key(digest))
        )


def _store() -> plan_cache.Store:
    store = plan_cache.Store.open(plan_cache.cache_dir() / plan_cache.DB_NAME)
    assert store is not None
    return store


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


def _tamper(home: Path, digest: str, edit: Any) -> None:
    """Rewrite an entry with ``edit`` applied to its body, its check digest made to match:
    a wrong entry that looks whole (the reads below must tell it from the right one)."""
    head, _, payload = _raw(home, digest).partition(b"\n")
    body = json.loads(payload)
    edit(body)
    payload = json.dumps(body).encode()
    header = json.loads(head)
    header["check"] = hashlib.sha256(payload).hexdigest()
    _set_raw(home, digest, json.dumps(header).encode() + b"\n" + payload)


@pytest.mark.parametrize("path", PLANS, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_hit_gives_what_a_miss_gives(
    path: Path, cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HIL_PLAN_CACHE", "0")
    reference = _outcome(path)
    monkeypatch.delenv("HIL_PLAN_CACHE")
    assert not _entries(cache_home)
    miss = _outcome(path)  # parses and writes the entry
    stored = _entries(cache_home)
    if reference[0] == "plan":
        assert stored == [plan_cache.entry_key(_digest(path))]  # every plan is JSON data
    hit = _outcome(path)
    if stored:
        assert _store().get(_digest(path)) is not None  # it was a hit
    assert _same_outcome(miss, reference)
    assert _same_outcome(hit, reference)


def test_the_comparison_above_sees_a_wrong_entry(cache_home: Path) -> None:
    """The check of the test above fails for an entry with another value or position."""
    reference = _outcome(EXAMPLE)
    digest = _digest(EXAMPLE)
    assert _same_outcome(_outcome(EXAMPLE), reference)

    def other_value(body: dict[str, Any]) -> None:
        body["data"]["title"] += " (edited)"

    _tamper(cache_home, digest, other_value)
    assert not _same_outcome(_outcome(EXAMPLE), reference)

    def other_line(body: dict[str, Any]) -> None:
        body["items"][0][1] += 1

    _tamper(cache_home, digest, lambda body: body["data"].update(title=reference[1]["title"]))
    assert _same_outcome(_outcome(EXAMPLE), reference)
    _tamper(cache_home, digest, other_line)
    assert not _same_outcome(_outcome(EXAMPLE), reference)

    def other_type(body: dict[str, Any]) -> None:
        body["data"]["spec"] = 1.0  # equal to 1, but not the same value

    _tamper(cache_home, digest, other_type)
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
    before = plan_cache.entry_key("ab")
    edited = tmp_path / "yaml_fast.py"
    edited.write_bytes(Path(str(yaml_fast.__file__)).read_bytes() + b"# changed\n")
    monkeypatch.setattr(yaml_fast, "__file__", str(edited))
    plan_cache.fingerprint.cache_clear()
    try:
        assert plan_cache.entry_key("ab") != before
        assert plan_cache.entry_key("ab").endswith(":ab")
    finally:
        monkeypatch.undo()
        plan_cache.fingerprint.cache_clear()
    assert plan_cache.entry_key("ab") == before


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
    digest = _digest(EXAMPLE)
    good = _raw(cache_home, digest)
    _set_raw(cache_home, digest, corrupt(good))
    assert _store().get(digest) is None
    again = load_plan(EXAMPLE)
    assert _same(again.data, reference.data)
    assert again.locations.fast_items == reference.locations.fast_items
    assert _raw(cache_home, digest) == good  # written anew


def test_a_damaged_cache_file_is_made_anew(cache_home: Path) -> None:
    cache_home.mkdir()
    (cache_home / plan_cache.DB_NAME).write_bytes(b"not a database\n" * 100)
    reference = load_plan(EXAMPLE)
    assert _entries(cache_home) == [plan_cache.entry_key(_digest(EXAMPLE))]
    assert (cache_home / f"{plan_cache.DB_NAME}.damaged").read_bytes().startswith(b"not a")
    assert _same(load_plan(EXAMPLE).data, reference.data)


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
    digest = _digest(EXAMPLE)
    _tamper(cache_home, digest, lambda body: body["data"].update(title="from the cache"))
    assert load_plan(EXAMPLE).data["title"] == "from the cache"  # on: the entry is read
    monkeypatch.setenv("HIL_PLAN_CACHE", "0")
    assert load_plan(EXAMPLE).data["title"] == reference.data["title"]  # off: not read
    with contextlib.closing(_db(cache_home)) as db:
        db.execute("DELETE FROM entries")
    load_plan(EXAMPLE)
    assert not _entries(cache_home)  # nor written
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
from pathlib import Path
from hil import plan_cache, yamlio
path, digest, text, times = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
data, locs = yamlio.load_text(text, "f.yaml")
entry = plan_cache.encode(digest, data, locs.fast_items)
store = plan_cache.Store.open(path)
for _ in range(times):
    assert store.put(digest, entry)
"""


def test_racing_writers_leave_a_whole_entry(cache_home: Path) -> None:
    """Two processes (as two xdist workers) write one entry again and again while this
    one reads it: once it exists, every read gives the whole document."""
    text = EXAMPLE.read_text(encoding="utf-8")
    digest = _digest(EXAMPLE)
    want, locs = yamlio.load_text(text, "f.yaml")
    store = _store()  # made before the writers start, so they all open one file
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(store.path), digest, text, "300"], cwd=ROOT
        )
        for _ in range(2)
    ]
    whole = 0
    deadline = time.monotonic() + 120  # bounds the loop, judges nothing
    while any(w.poll() is None for w in writers) and time.monotonic() < deadline:
        got = store.get(digest)
        if got is None and not whole:
            continue  # not written yet
        assert got is not None, f"a missing or partial entry after {whole} whole reads"
        assert _same(got[0], want) and got[1] == locs.fast_items
        whole += 1
    assert whole > 0  # the entry was read while being rewritten
    assert [w.wait(timeout=60) for w in writers] == [0, 0]
    got = store.get(digest)
    assert got is not None and _same(got[0], want)
    assert _entries(cache_home) == [plan_cache.entry_key(digest)]


def test_prune_drops_the_least_recently_used(cache_home: Path) -> None:
    digests = [f"{i:064x}" for i in range(8)]
    for i, digest in enumerate(digests):
        plan_cache.load_text(f"spec: 1\nlist: [{'x' * 1000}, {i}]\n", "f.yaml", digest)
    with contextlib.closing(_db(cache_home)) as db:
        for i, digest in enumerate(digests):  # written in this order, long ago
            db.execute(
                "UPDATE entries SET used = ? WHERE key = ?",
                (1_000_000 + i, plan_cache.entry_key(digest)),
            )
    size = sum(len(_raw(cache_home, d)) for d in digests)
    store = _store()
    assert store.prune(limit=size) == 0  # within the bound: nothing goes
    assert store.get(digests[0]) is not None  # used: now the newest
    removed = store.prune(limit=size // 2)
    kept = [d for d in digests if plan_cache.entry_key(d) in _entries(cache_home)]
    assert removed == len(digests) - len(kept) > 0
    assert sum(len(_raw(cache_home, d)) for d in kept) <= size // 2 * 3 // 4
    assert digests[0] in kept  # the one just read stays
    assert digests[1] not in kept and digests[-1] in kept  # the oldest went first


def test_close_all_releases_the_file(cache_home: Path) -> None:
    """A leak check before and after loading (the soak's) sees nothing once it is closed."""
    before = len(os.listdir("/proc/self/fd"))
    load_plan(EXAMPLE)
    assert len(os.listdir("/proc/self/fd")) > before  # held for the next load
    plan_cache.Store.close_all()
    assert len(os.listdir("/proc/self/fd")) == before
    assert _same(load_plan(EXAMPLE).data, load_plan(EXAMPLE).data)  # and opened again
    assert plan_cache.Store.open(cache_home / plan_cache.DB_NAME) is not None
