"""The fast path of hil's YAML loader (``hil.yaml_fast``) keeps only the positions of
list items and their members and locates the rest from the text when an error asks.
It must read every document as the located builder does: the same data, the same
positions, the same errors; and loading and resolving a valid plan must not need
the full index (that is the point of the fast path)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from hil.bench.loader import load_bench
from hil.errors import ConfigError
from hil.plan.loader import load_plan
from hil.plan.resolve import resolve_plan
from hil.yamlio import Locations, _load_text, load_text

Located = tuple[tuple[Any, ...], bool]
ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(
    p for folder in ("testplans", "benches", "devices") for p in (ROOT / folder).rglob("*.yaml")
)


def _same(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN (``.nan`` is a valid YAML float)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _paths(
    data: Any, path: tuple[Any, ...] = (), in_list: bool = False, member: bool = False
) -> list[Located]:
    """Every path of ``data``, and whether it is a list item or a member of one."""
    out = [(path, in_list or member)]
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*path, k), member=in_list)
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*path, i), in_list=True)
    return out


def _check_equivalent(text: str) -> None:
    """Fast and located builders agree on ``text``: data, every position, errors."""
    try:
        want, full = _load_text(text, "f.yaml", fast=False)
    except ConfigError as err:
        expected = str(err)
    else:
        expected = ""
    if expected:
        with pytest.raises(ConfigError) as got:
            load_text(text, "f.yaml")
        assert str(got.value) == expected
        return
    data, lazy = load_text(text, "f.yaml")
    assert _same(data, want), text
    located = _paths(want)
    paths = [p for p, _ in located]
    # list items and their members: answered by the fast path alone, before anything else
    items = [p for p, item in located if item]
    fast = not lazy.complete  # the located builder built what the fast path found unusual
    for path in items:
        assert lazy.find(path) == full.find(path), (text, path)
    assert lazy.complete is not fast  # asking for those did not need the full index
    for path in paths:  # and after the full index was built from the text
        assert lazy.find(path) == full.find(path), (text, path)
        assert lazy.find(path, key=True) == full.find(path, key=True), (text, path)
    assert lazy.marks == full.marks and lazy.key_marks == full.key_marks
    assert lazy.quoted == full.quoted


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_file_reads_the_same(path: Path) -> None:
    _check_equivalent(path.read_text(encoding="utf-8"))


_SCALARS = st.one_of(
    st.sampled_from(["yes", "~", "1_000", "0x1F", "2001-12-14", "<<", "<key>", "", "1e3"]),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=8),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
)
_DATA = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_SCALARS, inner, max_size=4),
    max_leaves=25,
)


@given(_DATA, st.booleans())
def test_generated_documents_read_the_same(data: Any, flow: bool) -> None:
    _check_equivalent(yaml.safe_dump(data, default_flow_style=flow, allow_unicode=True))


_PLAN_TEXTS = [p.read_text(encoding="utf-8") for p in SHIPPED if "testplans" in p.parts]
_EDITS = st.sampled_from(
    ["", " ", "\n", ":", "- ", "&a ", "*a", "!!str ", "<<: {}\n", "'", "{", "\t"]
)


@given(st.sampled_from(_PLAN_TEXTS), st.floats(0, 1), st.integers(0, 3), _EDITS)
def test_edited_plans_read_and_fail_the_same(
    text: str, where: float, cut: int, insert: str
) -> None:
    """A shipped plan with a few characters cut or typed in: often broken, often not."""
    at = int(where * len(text))
    _check_equivalent(text[:at] + insert + text[at + cut :])


# documents the fast path leaves to the located builder, and malformed ones
@pytest.mark.parametrize(
    "text",
    [
        "base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n",
        "a: 1\na: 2\n",
        "steps:\n  - id: a\n    id: b\n",
        "a: !!python/object:os.system x\n",
        "a: !!binary aGVsbG8=\n",
        "? [1, 2]\n: x\n",
        "list:\n  - <key>: 1\n    b: 2\n",
        "- : b\n",
        "a: 2001-13-45\n",  # the date's constructor raises ValueError: an error at 1:4
        "a: [1, 2\n",
        "a: &x [1, *x]\n",
        "x: " + "[" * 70 + "]" * 70 + "\n",
        "x: " + "[{a: " * 32 + "1" + "}]" * 32 + "\n",  # 65 levels of lists and mappings
        "x: " + "[{a: " * 31 + "{}" + "}]" * 31 + "\n",  # an empty mapping at the limit
        "x: " + "{a: " * 66 + "1" + "}" * 66 + "\n",
        "laughs: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
        + "".join(f"l{i}: &a{i} [{', '.join(['*a' if i == 0 else f'*a{i - 1}'] * 10)}]\n"
                  for i in range(5)),
    ],
)  # fmt: skip
def test_unusual_documents_read_and_fail_the_same(text: str) -> None:
    _check_equivalent(text)


def test_a_valid_plan_loads_and_resolves_without_the_full_index() -> None:
    bench = load_bench(ROOT / "benches" / "emulated.yaml")
    definitions, capabilities = bench.definitions(), bench.capabilities()
    for path in sorted((ROOT / "testplans").rglob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        doc = yaml.safe_load(text)
        if not isinstance(doc, dict) or "steps" not in doc:
            continue  # catalogues and exploration files, not plans
        loaded = load_plan(path)
        for instance in loaded.instances():
            resolved = resolve_plan(instance, definitions, capabilities)
            full = _load_text(text, str(path), fast=False)[1]
            for step in resolved.steps:
                assert step.line == full.find(("steps", step.index))[0]
        assert not loaded.locations.complete, path


def test_an_error_after_a_fast_load_is_located_exactly() -> None:
    text = "spec: 1\nsteps:\n  - id: a\n    wait: {duration: 1 s}\n"
    _, lazy = load_text(text, "f.yaml")
    assert not lazy.complete
    assert lazy.find(("steps", 0, "wait", "duration")) == (4, 22)  # built on demand
    assert lazy.complete
    assert lazy.find(("steps", 0, "wait"), key=True) == (4, 5)
    assert Locations("command line").find(("x",)) == (None, None)
