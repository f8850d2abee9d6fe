"""The common case of turning YAML text into Python data, fast.

``hil.yamlio``'s located builder keeps the line and column of every value
(a tuple path and two dict entries per node) so that any error can name its
``file:line:col``. A valid file needs almost none of that: of all the
positions, loading and resolving a plan reads only those of list items and of
their members (a step's line for the report, an invariant's ``always``). So a
well-formed document is built here with only those positions, and the rest
are found when an error asks for them (``Locations`` re-reads the text).

It is built in one pass over libyaml's parse events rather than from composed
nodes: composing makes a node per value and calls back into Python three
times for each (to resolve its tag, and around it for path resolvers the safe
loader does not have), which cost more than the build itself. An event carries
the same start mark as the node composed from it.

Anything out of the ordinary (an anchor or alias, a tag, a merge key, a
duplicate key, a non-scalar key, too deep, too many values, a value its
constructor refuses, a parse error) raises ``Unusual`` and the located
builder, which is the reference, builds the document again from the text and
reports exactly what it always did. The same data and the same positions come
out of both (``tests/unit/test_yaml_lazy_locations.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import yaml

Key = str | int | float | bool
Path_ = tuple[Key, ...]
Mark = tuple[int, int]

_STR_TAG = "tag:yaml.org,2002:str"
# the located builder flattens these ("<<" merges); here they are out of the ordinary
_FLATTEN_KEY_TAGS = frozenset({"tag:yaml.org,2002:merge", "tag:yaml.org,2002:value"})
_KEY_SLOT = "<key>"  # the located builder's path segment for a mapping's keys
_KEY_TYPES = (str, int, float, bool)
_Scalar = yaml.ScalarEvent
_MappingStart = yaml.MappingStartEvent
_SequenceStart = yaml.SequenceStartEvent
_MappingEnd = yaml.MappingEndEvent
_SequenceEnd = yaml.SequenceEndEvent


class Unusual(Exception):
    """The document needs the located builder (to build it or to word its error)."""


class FastBuilder:
    """Data from the loader's events, with the positions of list items and their members."""

    def __init__(
        self,
        loader: yaml.SafeLoader,
        constructors: Mapping[str, Callable[[Any, yaml.Node], Any]],
        tags: Mapping[str, str],
        max_nodes: int,
        max_depth: int,
    ) -> None:
        """``tags``: the loader's remembered tags of plain scalars, by text (a miss asks
        ``loader.resolve``, which remembers it), so a repeated key costs one lookup."""
        self.loader: Any = loader  # PyYAML's resolve and constructors are untyped
        self.next_event: Callable[[], Any] = loader.get_event  # libyaml's events, unstubbed
        self.constructors = constructors
        self.tags = tags
        self.max_nodes = max_nodes
        self.max_depth = max_depth
        self.count = 0  # values and keys, as the located builder counts its nodes
        self.items: dict[Path_, Mark] = {}

    def document(self) -> Any:
        """The stream's single document; anything else (none, several) is ``Unusual``."""
        next_event = self.next_event
        try:
            if type(next_event()) is not yaml.StreamStartEvent:
                raise Unusual
            if type(next_event()) is not yaml.DocumentStartEvent:
                raise Unusual  # an empty file: the located builder says so
            data = self.value(next_event(), ())
            if type(next_event()) is not yaml.DocumentEndEvent:
                raise Unusual
            if type(next_event()) is not yaml.StreamEndEvent:
                raise Unusual  # a second document
        except yaml.YAMLError as err:  # malformed: worded by the located builder
            raise Unusual from err
        return data

    def value(self, event: Any, path: Path_) -> Any:
        """The value that starts with ``event``, at ``path``; its position is the caller's."""
        self.count += 1
        if self.count > self.max_nodes or len(path) > self.max_depth:
            raise Unusual
        kind = type(event)
        if kind is _Scalar:
            return self.scalar(event)
        if kind is _MappingStart:
            return self.mapping(event, path)
        if kind is _SequenceStart:
            return self.sequence(event, path)
        raise Unusual  # an alias

    def scalar(self, event: Any) -> Any:
        if event.anchor is not None or event.tag is not None:
            raise Unusual
        text: str = event.value
        if not event.implicit[0]:  # quoted or a block scalar: a string, as composed
            return text
        loader = self.loader
        tag = self.tags.get(text) or loader.resolve(yaml.ScalarNode, text, event.implicit)
        if tag == _STR_TAG:
            return text
        constructor = self.constructors.get(tag)
        if constructor is None or tag in _FLATTEN_KEY_TAGS:
            raise Unusual  # "<<" or "=": a merge, or out of place
        node = yaml.ScalarNode(tag, text, event.start_mark, event.end_mark, event.style)
        try:
            return constructor(loader, node)
        except (yaml.YAMLError, ValueError) as err:  # ValueError: a date such as 2001-13-45
            raise Unusual from err

    def sequence(self, event: Any, path: Path_) -> list[Any]:
        if event.anchor is not None or event.tag is not None:
            raise Unusual
        next_event, items, value = self.next_event, self.items, self.value
        out: list[Any] = []
        while True:
            item = next_event()
            if type(item) is _SequenceEnd:
                return out
            here = (*path, len(out))
            mark = item.start_mark
            items[here] = (mark.line + 1, mark.column + 1)
            out.append(value(item, here))

    def mapping(self, event: Any, path: Path_) -> dict[Any, Any]:
        if event.anchor is not None or event.tag is not None:
            raise Unusual
        if len(path) + 1 > self.max_depth:  # its keys' and members' depth
            raise Unusual
        # the members of a list item are located now (an invariant's "always")
        record = bool(path) and type(path[-1]) is int
        next_event, scalar, value, items = self.next_event, self.scalar, self.value, self.items
        out: dict[Any, Any] = {}
        while True:
            key_event = next_event()
            kind = type(key_event)
            if kind is _MappingEnd:
                break
            if kind is not _Scalar:
                raise Unusual  # the located builder says which key is not a scalar
            key = scalar(key_event)
            if type(key) not in _KEY_TYPES or key == _KEY_SLOT or key in out:
                # not a plain key, one whose position would share the keys' own slot,
                # or a duplicate: the located builder says which and where
                raise Unusual
            self.count += 1
            member = next_event()
            if record:
                here = (*path, key)
                mark = member.start_mark
                items[here] = (mark.line + 1, mark.column + 1)
                out[key] = value(member, here)
            elif type(member) is _Scalar:  # counted and built inline: most members
                self.count += 1
                out[key] = scalar(member)
            else:
                out[key] = value(member, (*path, key))
        if self.count > self.max_nodes:
            raise Unusual
        return out
