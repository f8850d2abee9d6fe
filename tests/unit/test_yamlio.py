"""Strict YAML: positions, duplicate keys, unsafe tags, bombs, size."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.errors import ConfigError
from hil.yamlio import MAX_BYTES, load_file, load_text


def test_values_keep_their_line_and_column() -> None:
    data, locs = load_text("a: 1\nb:\n  - x\n  - {c: 2}\n", "f.yaml")
    assert data == {"a": 1, "b": ["x", {"c": 2}]}
    assert locs.find(("b", 1, "c")) == (4, 9)
    assert locs.find(("b", 1, "c"), key=True) == (4, 6)
    assert locs.find(("b", 7)) == (2, 1) or locs.find(("b", 7))[0] == 3


@pytest.mark.parametrize(
    ("text", "where", "words"),
    [
        ("a: 1\na: 2\n", "f.yaml:2:1", "duplicate key 'a' (first at line 1)"),
        ("a: !!python/object/apply:os.system [echo]\n", "f.yaml:1:4", "is not allowed"),
        ("a: !!python/name:os.system\n", "f.yaml:1:4", "is not allowed"),
        ("a: !!python/object:os.PathLike {x: 1}\n", "f.yaml:1:4", "is not allowed"),
        ("a: !custom x\n", "f.yaml:1:4", "tag '!custom' is not allowed"),
        ("a: 1\nb: \x1f\n", "f.yaml:2:4", "character U+001F is not allowed"),
        ("!!set {a, b}\n", "f.yaml:1:1", "is not allowed"),
        ("a: [1,\n", "f.yaml:2:1", "malformed YAML"),
        ("a: b: c\n", "f.yaml:1:5", "malformed YAML"),
        ("", "f.yaml:1", "file is empty"),
        ("? [a]\n: 1\n", "f.yaml:1:3", "mapping keys must be plain scalars"),
    ],
)
def test_bad_documents_name_file_and_line(text: str, where: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_text(text, "f.yaml")
    assert str(err.value).startswith(where + ":"), str(err.value)
    assert words in str(err.value)


def test_billion_laughs_is_refused_quickly() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    with pytest.raises(ConfigError, match="billion laughs"):
        load_text("\n".join(lines) + "\n", "bomb.yaml")


def test_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("w") as fh:
        fh.write("a: '")
        fh.write("x" * (MAX_BYTES + 10))
        fh.write("'\n")
    with pytest.raises(ConfigError, match="larger than"):
        load_file(big)


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_file(tmp_path / "nope.yaml")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00a: 1")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_file(binary)
