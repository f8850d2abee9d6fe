"""Strict YAML for every file hil reads: safe tags only, no duplicate keys,
bounded size and expansion, and a line for every value.

Documents are composed into PyYAML nodes and converted by hand, so each
value's position is kept in a ``Locations`` index that turns a pydantic
error location (``("steps", 3, "expect", "within")``) into ``file:line:col``.
A well-formed document is converted by ``hil.yaml_fast``, which keeps only
the positions a valid plan uses (list items and their members); the full
index is built from the text, by the located builder here, when an error
asks for a position, so messages are the same either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from hil.errors import ConfigError
from hil.yaml_fast import FastBuilder, Unusual
from hil.yaml_validate import pydantic_error as pydantic_error  # re-exported
from hil.yaml_validate import validate as validate  # re-exported

MAX_BYTES = 2 * 1024 * 1024  # plans and benches are small; a 50 MB file is a mistake
MAX_NODES = 200_000  # bounds alias expansion ("billion laughs")
MAX_DEPTH = 64

Key = str | int | float | bool
Path_ = tuple[Key, ...]


class Locations:
    """1-based line and column of every mapping value and list item.

    A document loaded by the fast path (``hil.yaml_fast``) comes with the
    positions of list items and their members only, and its text: the full
    index is built from the text the first time anything else is asked (an
    error message), by the located builder, so it is the same index either way.
    """

    def __init__(
        self,
        file: str,
        marks: dict[Path_, tuple[int, int]] | None = None,
        key_marks: dict[Path_, tuple[int, int]] | None = None,
        quoted: set[Path_] | None = None,
        *,
        text: str | None = None,
        items: dict[Path_, tuple[int, int]] | None = None,
        json_exact: bool = False,
    ) -> None:
        self.file = file
        self._marks = {} if marks is None else marks
        self._key_marks = {} if key_marks is None else key_marks
        self._quoted = set() if quoted is None else quoted  # scalars written in quotes
        self._text = text  # set while only ``_items`` is known
        self._items = {} if items is None else items
        self.json_exact = json_exact  # the fast path's data is what JSON would give back

    def __repr__(self) -> str:
        return f"Locations({self.file!r})"

    def _located(self) -> Locations:
        if self._text is not None:
            full = _load_text(self._text, self.file, fast=False)[1]
            self._marks, self._key_marks, self._quoted = full._marks, full._key_marks, full._quoted
            self._text = None
        return self

    @property
    def complete(self) -> bool:
        """Whether the full index is built (a fast-path load before any error)."""
        return self._text is None

    @property
    def fast_items(self) -> dict[Path_, tuple[int, int]] | None:
        """The positions the fast path kept, while they are all there is (``None`` once
        the full index is built, or when the located builder built the document)."""
        return self._items if self._text is not None else None

    @property
    def marks(self) -> dict[Path_, tuple[int, int]]:
        return self._located()._marks

    @property
    def key_marks(self) -> dict[Path_, tuple[int, int]]:
        return self._located()._key_marks

    @property
    def quoted(self) -> set[Path_]:
        return self._located()._quoted

    def find(self, loc: Sequence[Key], *, key: bool = False) -> tuple[int | None, int | None]:
        """The position of ``loc`` or of its nearest ancestor that has one."""
        path = tuple(loc)
        if self._text is not None and not key and path in self._items:
            return self._items[path]  # what the full index holds for it too
        key_marks, marks = self.key_marks, self.marks
        while True:
            table = key_marks if key and path in key_marks else marks
            if path in table:
                return table[path]
            if not path:
                return None, None
            path = path[:-1]

    def error(self, cls: type[ConfigError], loc: Sequence[Key], message: str) -> ConfigError:
        line, col = self.find(loc)
        return cls(message, file=self.file, line=line, column=col)


_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
_SCALAR_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "timestamp", "merge")
)
_STR_TAG = "tag:yaml.org,2002:str"
_QUOTES = ("'", '"')
# libyaml's parser (same marks, several times faster) where PyYAML was built with it
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_FLATTEN_KEY_TAGS = frozenset({"tag:yaml.org,2002:merge", "tag:yaml.org,2002:value"})
_ScalarNode = yaml.ScalarNode
_COLLECTION_TAGS: dict[type[yaml.Node], str] = {
    yaml.MappingNode: "tag:yaml.org,2002:map",
    yaml.SequenceNode: "tag:yaml.org,2002:seq",
}
_RESOLVED_MAX = 8192  # distinct short plain scalars remembered (keys, units, ids, numbers)
_RESOLVED_LEN = 64  # longer ones (titles, descriptions) rarely repeat


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """The safe loader, remembering how plain scalars resolve.

    PyYAML resolves the tag of every plain scalar by trying its implicit
    resolvers' regexes; a plan repeats the same keys and values (``signal``,
    ``within``, ``"2 s"``) hundreds of times. Without path resolvers (the safe
    loader has none) the tag of a plain scalar depends on its text alone, so the
    answer is kept per text.
    """

    _resolved: dict[str, str] = {}

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> Any:
        # libyaml's composer calls this for every untagged node. Without path resolvers
        # PyYAML's answer for a collection, or a quoted scalar, is its kind's default tag
        if kind is not _ScalarNode:
            return _COLLECTION_TAGS[kind]
        if not implicit[0]:
            return _STR_TAG
        tag = self._resolved.get(value)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(value) <= _RESOLVED_LEN:
                resolved = self._resolved
                if len(resolved) >= _RESOLVED_MAX:
                    resolved.clear()
                resolved[value] = tag
        return tag

    # the composer calls these around every node; with no path resolvers (asserted
    # below) PyYAML's versions only find that out and return
    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None


# the cache above is only right while no resolver depends on the node's path
assert not _Loader.yaml_path_resolvers


# a scalar's constructor called directly: construct_object's bookkeeping (alias
# cache, recursion guard) is for collections, and collections are built here
_SCALAR_CONSTRUCTORS = {
    tag: c for tag, c in _Loader.yaml_constructors.items() if tag in _SCALAR_TAGS
}


class _Builder:
    def __init__(self, file: str, loader: yaml.SafeLoader, locs: Locations) -> None:
        self.file = file
        self.loader = loader
        self.locs = locs
        self.count = 0
        self.constructors = _SCALAR_CONSTRUCTORS

    def fail(self, node: yaml.Node, message: str) -> ConfigError:
        mark = node.start_mark
        return ConfigError(message, file=self.file, line=mark.line + 1, column=mark.column + 1)

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(
                node,
                f"document expands to more than {MAX_NODES} values "
                "(nested aliases? a 'billion laughs' document is refused)",
            )
        if len(path) > MAX_DEPTH:
            raise self.fail(node, f"nesting deeper than {MAX_DEPTH} levels")
        marks = self.locs.marks
        if path not in marks:  # the first sight wins (a merged key seen again)
            mark = node.start_mark
            marks[path] = (mark.line + 1, mark.column + 1)
        tag = node.tag
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            if tag not in _PLAIN_TAGS:
                # collections are built here, not by PyYAML's constructor, so the tag
                # check it would make has to be made here: no !!python/object & co.
                raise self.fail(node, f"tag {tag!r} is not allowed; hil files are plain YAML data")
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        if tag not in _SCALAR_TAGS:
            raise self.fail(node, f"tag {tag!r} is not allowed; hil files are plain YAML data")
        if getattr(node, "style", None) in _QUOTES:
            self.locs.quoted.add(path)
        if tag == _STR_TAG:
            return node.value  # what construct_yaml_str returns for a scalar
        constructor = self.constructors.get(tag)
        try:
            if constructor is None:  # "<<" out of place: PyYAML's own error says so
                return self.loader.construct_object(node, deep=True)
            return constructor(self.loader, node)
        except (yaml.YAMLError, ValueError) as err:  # ValueError: a date such as 2001-13-45
            raise self.fail(node, f"invalid value: {_problem(err)}") from err

    def _mapping(self, node: yaml.MappingNode, path: Path_) -> dict[Any, Any]:
        if not _FLATTEN_KEY_TAGS.isdisjoint([k.tag for k, _ in node.value]):
            try:
                self.loader.flatten_mapping(node)  # resolves "<<" merge keys
            except yaml.YAMLError as err:
                raise self.fail(node, f"invalid merge: {_problem(err)}") from err
        out: dict[Any, Any] = {}
        key_path = (*path, "<key>")  # every key of this mapping shares it
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(key_node, "mapping keys must be plain scalars")
            key = self.build(key_node, key_path)
            if not isinstance(key, str | int | bool | float) or key is None:
                raise self.fail(key_node, f"mapping key {key!r} is not a plain scalar")
            if key in out:
                first = self.locs.key_marks.get((*path, key))
                where = f" (first at line {first[0]})" if first else ""
                raise self.fail(key_node, f"duplicate key {key!r}{where}")
            self.locs.key_marks[(*path, key)] = (
                key_node.start_mark.line + 1,
                key_node.start_mark.column + 1,
            )
            out[key] = self.build(value_node, (*path, key))
        return out


def _reader_error(err: yaml.reader.ReaderError, text: str, file: str) -> ConfigError:
    # reader errors carry no mark, only a character offset in the text
    before = text[: err.position]
    line, column = before.count("\n") + 1, err.position - (before.rfind("\n") + 1) + 1
    char = err.character if isinstance(err.character, str) else chr(err.character)
    return ConfigError(
        f"malformed YAML: character U+{ord(char):04X} is not allowed in YAML text "
        "(a control character? retype or delete it)",
        file=file,
        line=line,
        column=column,
    )


def _problem(err: yaml.YAMLError | ValueError) -> str:
    problem = getattr(err, "problem", None) or str(err)
    return str(problem).strip()


def load_text(text: str, file: str, cls: type[ConfigError] = ConfigError) -> tuple[Any, Locations]:
    """Parse one YAML document from ``text``; errors are ``cls`` naming ``file``."""
    try:
        return _load_text(text, file)
    except ConfigError as err:
        if type(err) is cls:
            raise
        raise cls(err.reason, file=err.file, line=err.line, column=err.column) from err


def _load_text(text: str, file: str, *, fast: bool = True) -> tuple[Any, Locations]:
    """``fast``: build with the positions of list items only (``hil.yaml_fast``) and
    locate the rest when asked; anything unusual is built by the located builder."""
    if len(text.encode("utf-8", errors="replace")) > MAX_BYTES:
        raise ConfigError(f"file is larger than {MAX_BYTES // 1024} KiB; refused", file=file)
    locs = Locations(file)
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as err:  # the pure-Python reader checks characters up front
        raise _reader_error(err, text, file) from err
    try:
        node = loader.get_single_node()
        if node is None:
            raise ConfigError("file is empty", file=file, line=1)
        if fast:
            quick = FastBuilder(loader, _SCALAR_CONSTRUCTORS, MAX_NODES, MAX_DEPTH)
            try:
                data = quick.build(node, ())
            except Unusual:
                pass
            else:
                return data, Locations(
                    file, text=text, items=quick.items, json_exact=quick.json_exact
                )
        data = _Builder(file, loader, locs).build(node, ())
    except yaml.reader.ReaderError as err:
        raise _reader_error(err, text, file) from err
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark else None
        col = mark.column + 1 if mark else None
        message = f"malformed YAML: {_problem(err)}"
        if err.context and err.context_mark and err.context_mark is not mark:
            message += f" ({err.context} that began at line {err.context_mark.line + 1})"
        if "block end" in message or "block mapping" in message or "indentation" in message:
            message += "; check the indentation of this line and the one above"
        raise ConfigError(message, file=file, line=line, column=col) from err
    except yaml.YAMLError as err:
        raise ConfigError(f"malformed YAML: {_problem(err)}", file=file) from err
    except RecursionError as err:
        raise ConfigError(f"nesting deeper than {MAX_DEPTH} levels", file=file) from err
    finally:
        loader.dispose()
    return data, locs


def load_file(path: Path, cls: type[ConfigError] = ConfigError) -> tuple[Any, Locations]:
    """Read and parse ``path`` with every guard above; errors are ``cls``."""
    return load_text(read_file(path, cls)[1], str(path), cls)


def read_file(path: Path, cls: type[ConfigError] = ConfigError) -> tuple[bytes, str]:
    """The bytes of ``path`` (for a digest) and its UTF-8 text, newlines as ``read_text``
    gives them; a missing, unreadable, oversized or non-UTF-8 file is ``cls``."""
    file = str(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError as err:
        raise cls("file not found", file=file) from err
    except OSError as err:
        raise cls(f"cannot read file: {err.strerror}", file=file) from err
    if size > MAX_BYTES:
        raise cls(
            f"file is {size // 1024} KiB, larger than the {MAX_BYTES // 1024} KiB allowed; refused",
            file=file,
        )
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        before = raw[: err.start]
        line = before.count(b"\n") + 1
        column = err.start - (before.rfind(b"\n") + 1) + 1
        raise cls(
            f"not UTF-8 text: {err.reason} (byte 0x{err.object[err.start]:02x}); "
            "save the file as UTF-8",
            file=file,
            line=line,
            column=column,
        ) from err
    except OSError as err:
        raise cls(f"cannot read file: {err.strerror}", file=file) from err
    if "\r" in text:  # universal newlines, as read_text would read them
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return raw, text


def check_spec(
    data: Any, locs: Locations, supported: int, cls: type[ConfigError], what: str
) -> None:
    """Every hil YAML file starts with ``spec: N``; say which side to upgrade."""
    if not isinstance(data, Mapping):
        raise locs.error(cls, (), f"a {what} must be a mapping with 'spec: {supported}' at the top")
    spec = data.get("spec")
    if spec is None:
        raise locs.error(cls, (), f"missing 'spec: {supported}' at the top of the {what}")
    if not isinstance(spec, int) or isinstance(spec, bool):
        raise locs.error(cls, ("spec",), f"'spec' must be an integer, got {spec!r}")
    if spec > supported:
        raise locs.error(
            cls,
            ("spec",),
            f"{what} uses spec {spec} but this hil reads spec {supported}; upgrade hil",
        )
    if spec < 1:
        raise locs.error(cls, ("spec",), f"spec must be >= 1, got {spec}")
