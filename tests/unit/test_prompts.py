"""Operator prompts: terminal answers are re-asked until they fit; answer files are located."""

from __future__ import annotations

from pathlib import Path

import pytest

from hil.errors import PlanError
from hil.plan.model import Prompt
from hil.plan.prompts import AnswersFile, Terminal


def test_terminal_reasks_until_the_answer_fits() -> None:
    typed = iter(["maybe", "3,5", "n"])
    said: list[str] = []
    asked: list[str] = []

    def read(question: str) -> str:
        asked.append(question)
        return next(typed)

    term = Terminal(read=read, write=said.append)
    assert term.ask("door", Prompt(message="Is the door closed?")) is False
    assert asked[0].endswith("door: Is the door closed? [y/n] ")
    assert said == [
        "[hil] prompt 'door' asks yes or no, got 'maybe'",
        "[hil] prompt 'door' asks yes or no, got '3,5'",
    ]


def test_terminal_number_and_choice() -> None:
    term = Terminal(read=lambda q: "230.5")
    assert term.ask("v", Prompt(message="Supply voltage?", kind="number")) == 230.5
    pick = Terminal(read=lambda q: "eco")
    prompt = Prompt(message="Mode?", kind="choice", choices=["eco", "boost"])
    assert pick.ask("m", prompt) == "eco"


def test_terminal_gives_up_after_bounded_tries() -> None:
    term = Terminal(read=lambda q: "?", write=lambda s: None, tries=2)
    with pytest.raises(PlanError, match="no usable answer after 2 tries"):
        term.ask("x", Prompt(message="ok?"))


def test_answers_file_is_read_and_located(tmp_path: Path) -> None:
    path = tmp_path / "answers.yaml"
    path.write_text("connect-load: yes\nvoltage: high\n")
    answers = AnswersFile(path)
    assert answers.ask("connect-load", Prompt(message="Connect?")) is True
    with pytest.raises(PlanError) as err:
        answers.ask("voltage", Prompt(message="Voltage?", kind="number"))
    assert str(err.value).startswith(f"{path}:2:10: prompt 'voltage' asks a number")
    with pytest.raises(PlanError, match="no answer for prompt 'other'"):
        answers.ask("other", Prompt(message="Other?"))
    # an instruction needs no answer
    assert answers.ask("other", Prompt(message="Read the label", kind="instruction")) is True
