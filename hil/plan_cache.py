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

Where: ``$HIL_CACHE_DIR/plans`` if ``HIL_CACHE_DIR`` is set, else ``.hil_cache/plans``
in the working directory (the directory is made with a ``.gitignore`` of ``*`` and a
``CACHEDIR.TAG``, as pytest makes ``.pytest_cache``, so it is never committed or
backed up). Switched off with ``HIL_PLAN_CACHE=0`` (read per load, so a test or a
script can change it).

Safety: an entry is plain JSON (never pickle or marshal), written to a temporary file
and renamed into place, so a reader sees a whole entry or none, and two pytest-xdist
workers writing the same entry both write the same bytes. Each entry carries the
sha256 of its payload; an entry that is unreadable, truncated, edited or not
hil's is ignored and written again. The directory is pruned to ``MAX_CACHE_BYTES``,
the least recently used entries first (a hit refreshes its entry's time), and
entries of other loader fingerprints, never read by this one, age out first.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import yaml

from hil import yaml_fast, yamlio
from hil.errors import ConfigError

FORMAT = 1  # bump when the entry layout changes
MAX_CACHE_BYTES = 64 * 1024 * 1024  # about 10,000 plans; pruned to 3/4 of it when over
MAX_ENTRY_BYTES = 16 * 1024 * 1024  # a plan file is at most 2 MiB; anything larger is not ours
PRUNE_EVERY = 500  # writes between two looks at the directory's size (it costs a scan)
_HEADER = "hil-plan-cache"

Document = tuple[Any, dict[yamlio.Path_, tuple[int, int]]]


def enabled() -> bool:
    """Whether plan documents are cached (``HIL_PLAN_CACHE=0`` switches it off)."""
    return os.environ.get("HIL_PLAN_CACHE", "1").strip().lower() not in ("0", "no", "off", "false")


def cache_dir() -> Path:
    """``$HIL_CACHE_DIR/plans``, else ``.hil_cache/plans`` in the working directory."""
    root = os.environ.get("HIL_CACHE_DIR")
    return (Path(root) if root else Path.cwd() / ".hil_cache") / "plans"


@functools.cache
def fingerprint() -> str:
    """What the cached document depends on besides the text: the loader's own code."""
    digest = hashlib.sha256(f"{_HEADER} {FORMAT} {sys.version}".encode())
    digest.update(f"PyYAML {yaml.__version__} libyaml {yamlio._BaseLoader.__name__}".encode())
    for module in (yaml_fast, yamlio, sys.modules[__name__]):
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()[:16]


def entry_path(digest: str, folder: Path | None = None) -> Path:
    """Where the document of a file whose bytes hash to ``digest`` is kept."""
    return (folder or cache_dir()) / fingerprint() / f"{digest}.json"


def load_text(
    text: str, file: str, digest: str, cls: type[ConfigError] = ConfigError
) -> tuple[Any, yamlio.Locations]:
    """``hil.yamlio.load_text``, through the cache; ``digest`` is the sha256 of the
    file's bytes (``text`` is what ``yamlio.read_file`` made of them)."""
    if not enabled():
        return yamlio.load_text(text, file, cls)
    folder = cache_dir()
    path = entry_path(digest, folder)
    cached = read_entry(path, digest)
    if cached is not None:
        return cached[0], yamlio.Locations(file, text=text, items=cached[1])
    data, locs = yamlio.load_text(text, file, cls)  # errors are raised, never stored
    items = locs.fast_items
    if items is not None and locs.json_exact and write_entry(path, digest, data, items):
        _Pruner.after_write(folder)
    return data, locs


def read_entry(path: Path, digest: str) -> Document | None:
    """The document stored at ``path`` for ``digest``; ``None`` if absent or not whole."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_ENTRY_BYTES + 1)
    except OSError:
        return None
    if len(raw) > MAX_ENTRY_BYTES:
        return None
    header, _, payload = raw.partition(b"\n")
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
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: pruned last
    return data, items


def write_entry(
    path: Path, digest: str, data: Any, items: dict[yamlio.Path_, tuple[int, int]]
) -> bool:
    """Store the document, atomically; ``False`` if it cannot be written. The caller
    stores only data JSON gives back as it is (``Locations.json_exact``: string keys,
    no dates; JSON keeps int, float, bool and None apart)."""
    body = {"data": data, "items": [[list(p), line, col] for p, (line, col) in items.items()]}
    try:
        payload = json.dumps(
            body, ensure_ascii=False, check_circular=False, separators=(",", ":")
        ).encode("utf-8")
    except (TypeError, ValueError):  # a date after all, or a lone surrogate ("\ud800")
        return False
    head = json.dumps(
        {_HEADER: FORMAT, "sha256": digest, "check": hashlib.sha256(payload).hexdigest()}
    )
    # a name no other writer uses (another process or thread), so no random name tries
    tmp = path.parent / f".{digest[:16]}.{os.getpid()}.{threading.get_ident()}.tmp"
    for _ in range(2):
        try:
            _make_dir(path.parent)
            with tmp.open("wb") as f:
                f.write(head.encode("ascii") + b"\n" + payload)
            os.replace(tmp, path)  # atomic: readers see the old entry, or none, or this one
            return True
        except FileNotFoundError:  # the directory was removed since it was made: again
            _MADE.discard(path.parent)
        except OSError:  # a read-only checkout, say: loading works as without the cache
            break
    with contextlib.suppress(OSError):
        os.unlink(tmp)
    return False


_MADE: set[Path] = set()  # directories known to exist: no stat per write


def _make_dir(folder: Path) -> None:
    if folder in _MADE or folder.is_dir():
        _MADE.add(folder)
        return
    root = folder.parent.parent  # <cache>/plans/<fingerprint>: mark <cache> as a cache
    root.mkdir(parents=True, exist_ok=True)
    for name, text in (
        (".gitignore", "# made by hil's plan cache (hil.plan_cache)\n*\n"),
        ("CACHEDIR.TAG", "Signature: 8a477f597d28d172789f06886806bc55\n# hil plan cache\n"),
    ):
        marker = root / name
        if not marker.exists():
            with contextlib.suppress(OSError):
                marker.write_text(text, encoding="utf-8")
    folder.mkdir(parents=True, exist_ok=True)
    _MADE.add(folder)


def prune(folder: Path, limit: int = MAX_CACHE_BYTES) -> int:
    """Delete the least recently used entries of every fingerprint until the entries
    take at most 3/4 of ``limit``, if they take more than ``limit``; how many went."""
    entries = []
    for sub in _scan(folder):
        if sub.is_dir(follow_symlinks=False):
            for entry in _scan(Path(sub.path)):
                with contextlib.suppress(OSError):
                    if entry.is_file(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        entries.append((st.st_mtime, st.st_size, entry.path))
    total = sum(size for _, size, _ in entries)
    if total <= limit:
        return 0
    removed = 0
    for _, size, name in sorted(entries):
        if total <= limit * 3 // 4:
            break
        with contextlib.suppress(OSError):
            os.unlink(name)
            removed += 1
        total -= size
    return removed


def _scan(folder: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(folder) as it:
            return list(it)
    except OSError:
        return []


class _Pruner:
    """Counts this process's writes and prunes the directory every ``PRUNE_EVERY``
    (the first write included, so a long-lived cache is looked at once per run)."""

    writes = 0

    @classmethod
    def after_write(cls, folder: Path) -> None:
        if cls.writes % PRUNE_EVERY == 0:
            prune(folder)
        cls.writes += 1
