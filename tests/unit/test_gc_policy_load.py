"""The collector pause around plan loading: off inside, restored after, nests, respects
a caller that already turned it off, and is restored when the load raises."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from hil import yamlio
from hil.errors import PlanError
from hil.gc_policy import gc_paused
from hil.plan import loader


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


def test_off_inside_and_restored_after() -> None:
    gc.enable()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():  # nested: still off, and the inner exit does not turn it on
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_caller_who_turned_it_off_keeps_it_off() -> None:
    gc.disable()
    with gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_restored_when_the_block_raises() -> None:
    gc.enable()
    with pytest.raises(ValueError), gc_paused():
        raise ValueError("boom")
    assert gc.isenabled()


def test_load_plan_pauses_and_restores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []
    real = yamlio.load_text

    def spy(text: str, file: str, cls: type[PlanError]) -> object:
        seen.append(gc.isenabled())
        return real(text, file, cls)

    monkeypatch.setattr(yamlio, "load_text", spy)  # through hil.plan_cache
    bad = tmp_path / "bad.yaml"
    bad.write_text("spec: 1\nid: [unclosed\n", encoding="utf-8")
    gc.enable()
    with pytest.raises(PlanError):
        loader.load_plan(bad)
    assert seen == [False]  # the file was parsed with the collector off
    assert gc.isenabled()  # and it is back on although the load failed
