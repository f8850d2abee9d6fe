"""``read_file`` reads a file once for both the plan's digest and its text: the text is
what ``Path.read_text`` gives (universal newlines), the bytes are the file's own, and a
byte that is not UTF-8 is an error at its line and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.errors import PlanError
from hil.yamlio import read_file


@pytest.mark.parametrize(
    "raw",
    [
        b"spec: 1\nid: a\n",
        b"spec: 1\r\nid: a\r\n",  # Windows
        b"spec: 1\rid: a\r",  # old Mac
        b"a: |\r\n  one\r\n  two\n\rb: 'x\r\n y'\n",  # mixed, inside scalars too
        "title: caf\u00e9 \u2013 \U0001f50c\n".encode(),
    ],
)
def test_text_and_bytes_are_what_read_text_and_read_bytes_give(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "p.yaml"
    path.write_bytes(raw)
    got_raw, got_text = read_file(path, PlanError)
    assert got_raw == raw
    assert got_text == path.read_text(encoding="utf-8")


def test_a_byte_that_is_not_utf8_is_located(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_bytes(b"spec: 1\ntitle: caf\xe9\n")
    with pytest.raises(PlanError) as err:
        read_file(path, PlanError)
    assert (err.value.line, err.value.column) == (2, 11)
    assert "not UTF-8 text" in str(err.value) and "0xe9" in str(err.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="file not found"):
        read_file(tmp_path / "nope.yaml", PlanError)
