"""hil's YAML loader takes shortcuts for speed (issue 8): plain scalars' tags are
remembered per text, scalars skip PyYAML's construct_object, mappings without merge
keys skip flattening. Each must read a document exactly as PyYAML's safe loader does."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from hil import yamlio
from hil.errors import ConfigError
from hil.yamlio import load_text

# scalars whose tag PyYAML resolves by regex, with their quoted twins (always str)
_PLAIN = [
    "1", "01", "0o17", "0x1F", "0b101", "1_000", "-3", "+7", "1.5", "1e3", "1.0e+3", ".inf",
    "-.Inf", ".nan", "yes", "No", "on", "OFF", "true", "False", "~", "null", "Null", "",
    "2001-12-14", "2001-12-14t21:59:43.10-05:00", "1:20", "x", "2 s", "ev.BODY_Status.LockFL",
    "${ target_kmh }", "<<",
]  # fmt: skip
_TOKENS = st.sampled_from(_PLAIN).flatmap(
    lambda v: st.sampled_from([v, f"'{v}'", f'"{v}"']) if v else st.just(v)
)


def _document(values: list[str]) -> str:
    return "".join(f"k{i}: {v}\n" for i, v in enumerate(values))


def _load_both(text: str) -> tuple[object, object]:
    """PyYAML's safe loader and hil's on the same text; an error is its type."""
    try:
        expected: object = yaml.safe_load(text)
    except yaml.YAMLError:
        expected = yaml.YAMLError
    try:
        got: object = load_text(text, "f.yaml")[0]
    except ConfigError:
        got = yaml.YAMLError
    return expected, got


@given(st.lists(_TOKENS, min_size=1, max_size=12))
def test_scalars_load_as_pyyaml_loads_them(values: list[str]) -> None:
    text = _document(values)
    expected, got = _load_both(text)
    assert got == expected or _both_nan(got, expected), text
    # a second time, every tag now remembered, reads the same
    assert _load_both(text) == (expected, got) or _both_nan(got, expected)


def _both_nan(a: object, b: object) -> bool:
    if not (isinstance(a, dict) and isinstance(b, dict)) or a.keys() != b.keys():
        return False
    return all(x == y or (x != x and y != y) for x, y in zip(a.values(), b.values(), strict=True))


def test_a_quoted_scalar_stays_a_string_after_its_plain_twin() -> None:
    assert load_text("a: 1\nb: yes\n", "f.yaml")[0] == {"a": 1, "b": True}
    assert load_text("a: '1'\nb: \"yes\"\n", "f.yaml")[0] == {"a": "1", "b": "yes"}


def test_merge_keys_are_still_flattened() -> None:
    text = "base: &b {x: 1, y: 2}\nmore: {<<: *b, z: 4}\nlist: {<<: [*b], w: 0}\n"
    data, locs = load_text(text, "f.yaml")
    assert data == yaml.safe_load(text)
    assert data["more"] == {"x": 1, "y": 2, "z": 4}
    assert locs.find(("more", "z"), key=True) == (2, 16)
    with pytest.raises(ConfigError, match="f.yaml:1:1: invalid merge"):
        load_text("<<: 1\n", "f.yaml")


def test_the_remembered_tags_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlio, "_RESOLVED_MAX", 4)
    monkeypatch.setattr(yamlio._Loader, "_resolved", {})
    values = [str(i) for i in range(10)] + ["yes", "x"]
    data, _ = load_text(_document(values), "f.yaml")
    assert data == {f"k{i}": i for i in range(10)} | {"k10": True, "k11": "x"}
    assert 0 < len(yamlio._Loader._resolved) <= 4
