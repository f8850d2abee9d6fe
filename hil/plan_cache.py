"""A content-addressed cache of parsed plan documents, as ``.pyc`` files or mypy's cache.

Parsing is most of loading a plan (PyYAML composing a node tree and hil building data
from it), and a plan file rarely changes between runs. So the document hil builds
from a file's text (its data and the positions the fast path keeps: list items and
their members, see ``hil.yaml_fast``) is stored as JSON, keyed by the sha256 of the
file's bytes and a fingerprint of the loader (its source, PyYAML's version, this
module's format): a changed file or a changed loader never reads an old entry.
Validation, parameters, the matrix and resolving still run on every load: they
depend on the bench and on the arguments, not only on the text.

Only documents the fast path built, whose data JSON gives back exactly (string keys,
no dates), are stored; anything else is parsed every time, as without the cache.
Errors are never stored: a broken file is parsed, and reported, on every load.

Where: ``$HIL_CACHE_DIR/plans.sqlite`` if ``HIL_CACHE_DIR`` is set, else
``.hil_cache/plans.sqlite`` in the working directory (the directory is made with a
``.gitignore`` of ``*`` and a ``CACHEDIR.TAG``, as pytest makes ``.pytest_cache``, so
it is never committed or backed up). Switched off with ``HIL_PLAN_CACHE=0`` (read per
load, so a test or a script can change it). A process that loaded a plan keeps the file
open (three descriptors: the database, its write-ahead log and shared index) for the
next load; ``Store.close_all()`` releases it, as a leak check before and after wants.

Why one SQLite file and not a file per entry (as mypy's ``--sqlite-cache``): creating
a file cost 0.3-1.1 ms of kernel CPU on the development VM, so writing 1,000 entries
took 0.3-0.8 s, a third of the load it saves; SQLite stores the same 1,000 in 0.09 s
and reads them in 0.02 s.

Safety: an entry is plain JSON (never pickle or marshal) in a row written by one
SQLite transaction, so a reader sees a whole entry or none, and pytest-xdist workers
writing the same entry serialise on SQLite's lock (a write that waits too long is
skipped: it is only a cache). Each entry carries the sha256 of its payload; an entry
that is truncated, edited or not hil's is ignored and written again, and a file that
is not a database is moved aside and made anew. The file is pruned to
``MAX_CACHE_BYTES``, least recently used entries first (a hit refreshes an entry's
time at most once an hour); entries of other loader fingerprints, never read by this
one, age out first.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from hil import yaml_fast, yamlio
from hil.errors import ConfigError

FORMAT = 1  # bump when the entry layout changes
DB_NAME = "plans.sqlite"
MAX_CACHE_BYTES = 64 * 1024 * 1024  # about 10,000 plans; pruned to 3/4 of it when over
PRUNE_EVERY = 500  # writes between two looks at the size (the first write included)
REFRESH_S = 3600.0  # a hit marks its entry used again when it was last marked this long ago
BUSY_S = 2.0  # how long a write waits for another process's; then it is skipped
_HEADER = "hil-plan-cache"

Document = tuple[Any, dict[yamlio.Path_, tuple[int, int]]]


def enabled() -> bool:
    """Whether plan documents are cached (``HIL_PLAN_CACHE=0`` switches it off)."""
    return os.environ.get("HIL_PLAN_CACHE", "1").strip().lower() not in ("0", "no", "off", "false")


def cache_dir() -> Path:
    """``$HIL_CACHE_DIR``, else ``.hil_cache`` in the working directory."""
    root = os.environ.get("HIL_CACHE_DIR")
    return Path(root).absolute() if root else Path.cwd() / ".hil_cache"


@functools.cache
def fingerprint() -> str:
    """What the cached document depends on besides the text: the loader's own code."""
    digest = hashlib.sha256(f"{_HEADER} {FORMAT} {sys.version}".encode())
    digest.update(f"PyYAML {yaml.__version__} libyaml {yamlio._BaseLoader.__name__}".encode())
    for module in (yaml_fast, yamlio, sys.modules[__name__]):
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()[:16]


def entry_key(digest: str) -> str:
    """The row of the document of a file whose bytes hash to ``digest``."""
    return f"{fingerprint()}:{digest}"


def load_text(
    text: str, file: str, digest: str, cls: type[ConfigError] = ConfigError
) -> tuple[Any, yamlio.Locations]:
    """``hil.yamlio.load_text``, through the cache; ``digest`` is the sha256 of the
    file's bytes (``text`` is what ``yamlio.read_file`` made of them)."""
    if not enabled():
        return yamlio.load_text(text, file, cls)
    store = Store.open(cache_dir() / DB_NAME)
    cached = None if store is None else store.get(digest)
    if cached is not None:
        return cached[0], yamlio.Locations(file, text=text, items=cached[1])
    data, locs = yamlio.load_text(text, file, cls)  # errors are raised, never stored
    items = locs.fast_items
    if store is not None and items is not None and locs.json_exact:
        entry = encode(digest, data, items)
        if entry is not None:
            store.put(digest, entry)
    return data, locs


def encode(digest: str, data: Any, items: dict[yamlio.Path_, tuple[int, int]]) -> bytes | None:
    """An entry: a header line (format, file digest, payload digest), then the payload.
    The caller gives only data JSON gives back as it is (``Locations.json_exact``: string
    keys, no dates; JSON keeps int, float, bool and None apart)."""
    body = {"data": data, "items": [[list(p), line, col] for p, (line, col) in items.items()]}
    try:
        payload = json.dumps(
            body, ensure_ascii=False, check_circular=False, separators=(",", ":")
        ).encode("utf-8")
    except (TypeError, ValueError):  # a date after all, or a lone surrogate ("\ud800")
        return None
    head = {_HEADER: FORMAT, "sha256": digest, "check": hashlib.sha256(payload).hexdigest()}
    return json.dumps(head).encode("ascii") + b"\n" + payload


def decode(entry: bytes, digest: str) -> Document | None:
    """The document in ``entry`` for ``digest``; ``None`` if it is not whole or not ours."""
    header, _, payload = entry.partition(b"\n")
    try:
        head = json.loads(header)
        if head != {
            _HEADER: FORMAT,
            "sha256": digest,
            "check": hashlib.sha256(payload).hexdigest(),
        }:
            return None
        body = json.loads(payload)
        data = body["data"]
        items = {tuple(p): (int(line), int(col)) for p, line, col in body["items"]}
    except (ValueError, TypeError, KeyError, AttributeError):  # not JSON, or not our layout
        return None
    return data, items


class Store:
    """The cache file, one SQLite connection per process (a forked child opens its own)."""

    _opened: dict[tuple[int, Path], Store | None] = {}
    _opening = threading.Lock()

    def __init__(self, path: Path, db: sqlite3.Connection) -> None:
        self.path = path
        self.db = db
        self.lock = threading.Lock()  # one connection, shared by the process's threads
        self.writes = 0

    @classmethod
    def open(cls, path: Path) -> Store | None:
        """The store at ``path``, made if need be; ``None`` when it cannot be (a read-only
        checkout, say), and loading goes on as without the cache."""
        key = (os.getpid(), path)
        with cls._opening:
            if key not in cls._opened:
                cls._opened[key] = cls._connect(path)
            return cls._opened[key]

    @classmethod
    def _connect(cls, path: Path) -> Store | None:
        for attempt in range(2):
            try:
                _make_dir(path.parent)
                db = sqlite3.connect(
                    path, timeout=BUSY_S, isolation_level=None, check_same_thread=False
                )
            except (OSError, sqlite3.Error):
                return None
            try:
                db.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
                db.execute("PRAGMA synchronous=NORMAL")  # a lost entry is only re-parsed
                db.execute(
                    "CREATE TABLE IF NOT EXISTS entries"
                    " (key TEXT PRIMARY KEY, used REAL NOT NULL, entry BLOB NOT NULL)"
                )
                return cls(path, db)
            except sqlite3.DatabaseError:  # not a database (or a damaged one): made anew
                db.close()
                if attempt or not _move_aside(path):
                    return None
        return None

    @classmethod
    def close_all(cls) -> None:
        """Close this process's connections (tests; a process's end closes them too)."""
        with cls._opening:
            for store in cls._opened.values():
                if store is not None:
                    store.db.close()
            cls._opened.clear()

    def get(self, digest: str) -> Document | None:
        key = entry_key(digest)
        try:
            with self.lock:
                row = self.db.execute(
                    "SELECT entry, used FROM entries WHERE key = ?", (key,)
                ).fetchone()
                if row is None:
                    return None
                now = time.time()
                if now - row[1] > REFRESH_S:  # recently used: pruned last
                    self.db.execute("UPDATE entries SET used = ? WHERE key = ?", (now, key))
        except sqlite3.OperationalError:  # busy, or the disk is full: a miss
            return None
        except sqlite3.DatabaseError:
            self._disable()
            return None
        entry = row[0]
        return decode(entry, digest) if isinstance(entry, bytes) else None

    def put(self, digest: str, entry: bytes) -> bool:
        try:
            with self.lock:
                self.db.execute(
                    "INSERT OR REPLACE INTO entries VALUES (?, ?, ?)",
                    (entry_key(digest), time.time(), entry),
                )
                self.writes += 1
                if self.writes % PRUNE_EVERY == 1:
                    self._prune(MAX_CACHE_BYTES)
        except sqlite3.OperationalError:  # another writer held it too long: skipped
            return False
        except sqlite3.DatabaseError:
            self._disable()
            return False
        return True

    def prune(self, limit: int = MAX_CACHE_BYTES) -> int:
        """Delete the least recently used entries until they take at most 3/4 of
        ``limit``, if they take more than ``limit``; how many went."""
        with self.lock:
            return self._prune(limit)

    def _prune(self, limit: int) -> int:
        (total,) = self.db.execute("SELECT coalesce(sum(length(entry)), 0) FROM entries").fetchone()
        if total <= limit:
            return 0
        doomed = []
        for key, size in self.db.execute(
            "SELECT key, length(entry) FROM entries ORDER BY used, key"
        ).fetchall():
            if total <= limit * 3 // 4:
                break
            doomed.append((key,))
            total -= size
        self.db.executemany("DELETE FROM entries WHERE key = ?", doomed)
        return len(doomed)

    def _disable(self) -> None:
        """Damage found in use: this process stops using the file (the next opens anew)."""
        with Store._opening:
            Store._opened[(os.getpid(), self.path)] = None


def _move_aside(path: Path) -> bool:
    try:
        os.replace(path, path.with_name(f"{path.name}.damaged"))
    except OSError:
        return False
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(OSError):
            os.unlink(f"{path}{suffix}")
    return True


def _make_dir(folder: Path) -> None:
    if folder.is_dir():
        return
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (
        (".gitignore", "# made by hil's plan cache (hil.plan_cache)\n*\n"),
        ("CACHEDIR.TAG", "Signature: 8a477f597d28d172789f06886806bc55\n# hil plan cache\n"),
    ):
        marker = folder / name
        if not marker.exists():
            with contextlib.suppress(OSError):
                marker.write_text(text, encoding="utf-8")
