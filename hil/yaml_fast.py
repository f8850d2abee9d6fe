"""The common case of turning a composed YAML document into Python data, fast.

``hil.yamlio``'s located builder keeps the line and column of every value
(a tuple path and two dict entries per node) so that any error can name its
``file:line:col``. A valid file needs almost none of that: of all the
positions, loading and resolving a plan reads only those of list items and of
their members (a step's line for the report, an invariant's ``always``). So a
well-formed document is built here with only those positions, and the rest
are found when an error asks for them (``Locations`` re-reads the text).

Anything out of the ordinary (a merge key, a tag, a duplicate key, a
non-scalar key, too deep, too many values, a value its constructor refuses)
raises ``Unusual``, and the located builder, which is the reference, builds
the document again and reports exactly what it always did. The same data and
the same positions come out of both (``tests/unit/test_yaml_lazy_locations.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import yaml

Key = str | int | float | bool
Path_ = tuple[Key, ...]
Mark = tuple[int, int]

_STR_TAG = "tag:yaml.org,2002:str"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
# the located builder flattens these ("<<" merges); here they are out of the ordinary
_FLATTEN_KEY_TAGS = frozenset({"tag:yaml.org,2002:merge", "tag:yaml.org,2002:value"})
_KEY_SLOT = "<key>"  # the located builder's path segment for a mapping's keys
_Scalar = yaml.ScalarNode


class Unusual(Exception):
    """The document needs the located builder (to build it or to word its error)."""


class FastBuilder:
    """Data from a composed node tree, with the positions of list items and their members."""

    def __init__(
        self,
        loader: yaml.SafeLoader,
        constructors: Mapping[str, Callable[[Any, yaml.Node], Any]],
        max_nodes: int,
        max_depth: int,
    ) -> None:
        self.loader = loader
        self.constructors = constructors
        self.max_nodes = max_nodes
        self.max_depth = max_depth
        self.count = 0
        # whether JSON gives the data back as it is (hil.plan_cache stores only such):
        # no dates, no keys other than strings
        self.json_exact = True
        self.items: dict[Path_, Mark] = {}

    def build(self, node: yaml.Node, path: Path_) -> Any:
        """``node`` at ``path``; its own position is the caller's to record."""
        self.count += 1
        if self.count > self.max_nodes or len(path) > self.max_depth:
            raise Unusual
        kind = type(node)
        if kind is _Scalar:
            return node.value if node.tag == _STR_TAG else self._scalar(node)
        if kind is yaml.MappingNode:
            return self._mapping(node, path)
        if kind is not yaml.SequenceNode or node.tag != _SEQ_TAG:
            raise Unusual
        items = self.items
        out = []
        for i, item in enumerate(node.value):
            here = (*path, i)
            mark = item.start_mark
            items[here] = (mark.line + 1, mark.column + 1)
            if type(item) is yaml.MappingNode and len(here) <= self.max_depth:
                self.count += 1  # a step: counted here, its members checked in _mapping
                out.append(self._mapping(item, here))
            else:
                out.append(self.build(item, here))
        return out

    def _scalar(self, node: yaml.Node) -> Any:
        tag = node.tag
        if tag == _STR_TAG:
            return node.value
        constructor = self.constructors.get(tag)
        if constructor is None:  # "<<" out of place, or a tag hil does not allow
            raise Unusual
        if tag == _TIMESTAMP_TAG:
            self.json_exact = False
        try:
            return constructor(self.loader, node)
        except (yaml.YAMLError, ValueError) as err:  # ValueError: a date such as 2001-13-45
            raise Unusual from err

    def _mapping(self, node: yaml.Node, path: Path_) -> dict[Any, Any]:
        if node.tag != _MAP_TAG:
            raise Unusual
        # the members of a list item are located now (an invariant's "always")
        record = bool(path) and type(path[-1]) is int
        depth = len(path) + 1
        if depth > self.max_depth:
            raise Unusual
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            # a key and, when it is a scalar, its value: counted here, built inline
            if type(key_node) is not _Scalar:
                raise Unusual
            tag = key_node.tag
            if tag == _STR_TAG:
                key = key_node.value
                if key == _KEY_SLOT:
                    raise Unusual  # its position would share a slot with the keys' own
            elif tag in _FLATTEN_KEY_TAGS:
                raise Unusual
            else:
                key = self._scalar(key_node)
                self.json_exact = False
                if key is None or not isinstance(key, str | int | bool | float):
                    raise Unusual  # the located builder says which key is not a scalar
            if key in out:
                raise Unusual  # the located builder says where the first one was
            self.count += 1
            if record:
                here = (*path, key)
                mark = value_node.start_mark
                self.items[here] = (mark.line + 1, mark.column + 1)
                out[key] = self.build(value_node, here)
            elif type(value_node) is _Scalar:
                self.count += 1
                out[key] = (
                    value_node.value if value_node.tag == _STR_TAG else self._scalar(value_node)
                )
            elif type(value_node) is yaml.MappingNode:
                self.count += 1  # its depth is this mapping's members': checked above
                out[key] = self._mapping(value_node, (*path, key))
            else:
                out[key] = self.build(value_node, (*path, key))
        if self.count > self.max_nodes:
            raise Unusual
        return out
