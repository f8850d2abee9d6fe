"""What the fast YAML path (``hil.yaml_fast``) leaves to the located builder (anchors,
tags, directives, several documents, an empty one, parse errors, the value limit)
reads and fails exactly as the located builder alone reads it."""

from __future__ import annotations

import pytest
import yaml

from hil import yamlio
from hil.errors import ConfigError
from hil.yamlio import _load_text, load_text


def _outcome(text: str, *, fast: bool) -> object:
    try:
        return _load_text(text, "f.yaml", fast=fast)[0]
    except ConfigError as err:
        return str(err)


@pytest.mark.parametrize(
    "text",
    [
        "",  # no document: "file is empty"
        "# only a comment\n",
        "a: 1\n---\nb: 2\n",  # a second document
        "--- 1\n--- 2\n",
        "%YAML 1.1\n---\na: 1\n",  # a directive, then an ordinary document
        "%TAG !e! tag:example.com,2000:\n---\na: !e!x 1\n",
        "a: ! 1\n",  # the non-specific tag: the composer resolves it as quoted
        "a: !!str 1\n",
        "!!map {a: 1}\n",
        "a: !!seq [1]\n",
        "a: &x 1\nb: *x\n",
        "&top {a: 1}\n",
        "a: [&i 1, *i]\n",
        "=: 1\n",  # "=" resolves to the value tag
        "a: =\n",
        "<<: {a: 1}\n",
        "a: [1, 2\n",  # a parse error
        "a: 'x\n",
        "\ta: 1\n",
    ],
)  # fmt: skip
def test_what_the_composer_handled_reads_as_the_located_builder_reads_it(text: str) -> None:
    assert _outcome(text, fast=True) == _outcome(text, fast=False)


def test_an_ordinary_document_takes_the_fast_path_with_its_item_positions() -> None:
    text = "spec: 1\nsteps:\n  - id: a\n    wait: {duration: 1 s}\n  - 'quoted'\nn: [1, yes, ~]\n"
    data, locs = load_text(text, "f.yaml")
    assert data == yaml.safe_load(text)
    assert not locs.complete  # the fast path built it
    assert locs.find(("steps", 0)) == (3, 5)
    assert locs.find(("steps", 0, "wait")) == (4, 11)
    assert locs.find(("steps", 1)) == (5, 5)
    assert locs.find(("n", 2)) == (6, 13)
    assert not locs.complete  # list items and their members needed no full index


@pytest.mark.parametrize(
    ("limit", "text"),
    [
        (5, "a: [1, 2, 3, 4, 5, 6]\n"),  # values in a list
        (5, "a: 1\nb: 2\nc: 3\n"),  # keys count as the located builder counts them
        (5, "- {a: 1, b: 2, c: 3}\n"),  # members of a list item
    ],
)
def test_the_value_limit_is_the_located_builders(
    monkeypatch: pytest.MonkeyPatch, limit: int, text: str
) -> None:
    monkeypatch.setattr(yamlio, "MAX_NODES", limit)
    with pytest.raises(ConfigError, match="expands to more than 5 values") as err:
        load_text(text, "f.yaml")
    assert str(err.value) == _outcome(text, fast=False)


def test_a_document_at_the_value_limit_still_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlio, "MAX_NODES", 7)  # the top mapping, 3 keys, 3 values
    data, locs = load_text("a: 1\nb: 2\nc: 3\n", "f.yaml")
    assert data == {"a": 1, "b": 2, "c": 3}
    assert not locs.complete
