"""pydantic errors as hil errors: the first problem at its ``file:line:col``,
worded for a person (unknown keys with a "did you mean", missing keys named
in their mapping), using the positions ``hil.yamlio.Locations`` keeps."""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import pydantic

from hil.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from hil.yamlio import Locations

Key = str | int | float | bool
Path_ = tuple[Key, ...]
M = TypeVar("M", bound=pydantic.BaseModel)


def validate(model: type[M], data: Any, locs: Locations, cls: type[ConfigError]) -> M:
    """Validate with pydantic; the first error becomes ``cls`` at its file:line."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as err:
        raise pydantic_error(err, locs, cls, model=model) from err


def pydantic_error(
    err: pydantic.ValidationError,
    locs: Locations,
    cls: type[ConfigError],
    prefix: Path_ = (),
    model: Any = None,
) -> ConfigError:
    first = err.errors(include_url=False)[0]
    loc = (*prefix, *_clean_loc(first["loc"], locs, prefix))
    dotted = ".".join(str(p) for p in loc) or "(top level)"
    kind = first["type"]
    if kind == "extra_forbidden":
        message = f"unknown key {loc[-1]!r}"
        allowed = _keys_at(model, loc[len(prefix) : -1]) if model is not None else None
        if allowed:
            message += "; " + did_you_mean(str(loc[-1]), allowed)
        line, col = locs.find(loc, key=True)
        return cls(message, file=locs.file, line=line, column=col, path=dotted)
    if kind == "missing" and loc:
        where = ".".join(str(p) for p in loc[:-1]) or "the top level"
        line, col = locs.find(loc[:-1])
        return cls(
            f"missing required key {loc[-1]!r} in {where}",
            file=locs.file,
            line=line,
            column=col,
            path=dotted,
        )
    message = f"{dotted}: {first['msg']}"
    if (
        kind not in ("missing",)
        and "input" in first
        and not isinstance(first["input"], dict | list)
    ):
        message += f" (got {first['input']!r})"
    line, col = locs.find(loc)
    return cls(message, file=locs.file, line=line, column=col, path=dotted)


def _clean_loc(loc: Sequence[Any], locs: Locations, prefix: Path_) -> Path_:
    """pydantic puts union members and validators (``float``, ``function-…``) into
    locations; keep only the parts that are keys or indexes of the document."""
    out: list[Key] = []
    for part in loc:
        here = (*prefix, *out, part)
        if here in locs.marks or (isinstance(part, str) and here in locs.key_marks):
            out.append(part)
    # a key the document does not have (a missing one) still names the problem
    if loc and isinstance(loc[-1], str) and (not out or out[-1] != loc[-1]):
        last = loc[-1]
        if not last.startswith(("function-", "tagged-union[")) and last not in _TYPE_TAGS:
            out.append(last)
    return tuple(out)


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "none", "literal_error"})


def _keys_at(model: Any, path: Path_) -> list[str] | None:
    """The keys a pydantic model accepts at ``path`` (for a "did you mean")."""
    candidates: list[Any] = [model]
    for part in (*path, None):
        models = [m for c in candidates for m in _models(c)]
        if part is None:
            keys = [f.alias or name for m in models for name, f in m.model_fields.items()]
            return keys or None
        nxt: list[Any] = []
        for c in candidates:
            for t in _flatten(c):
                origin = typing.get_origin(t)
                args = typing.get_args(t)
                if isinstance(part, int) and origin in (list, tuple) and args:
                    nxt.append(args[0])
                elif isinstance(part, str) and origin is dict and len(args) == 2:
                    nxt.append(args[1])
        for m in models:
            if isinstance(part, str):
                for name, f in m.model_fields.items():
                    if part in (name, f.alias):
                        nxt.append(f.annotation)
        candidates = nxt
    return None


def _flatten(tp: Any) -> list[Any]:
    """Unwrap Annotated/Optional/Union into the plain types they allow."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _flatten(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for a in typing.get_args(tp) for t in _flatten(a)]
    return [tp]


def _models(tp: Any) -> list[type[pydantic.BaseModel]]:
    return [t for t in _flatten(tp) if isinstance(t, type) and issubclass(t, pydantic.BaseModel)]
