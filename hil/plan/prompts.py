"""Operator prompts: answered at the terminal, or from an answers file when unattended."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from hil.errors import PlanError
from hil.plan.model import Prompt
from hil.yamlio import load_file

YES = {"y", "yes", "true", "1", "ok", "done"}
NO = {"n", "no", "false", "0"}


class Prompter(Protocol):
    def ask(self, step_id: str, prompt: Prompt) -> Any: ...


def interpret(prompt: Prompt, raw: Any, step_id: str) -> Any:
    """Turn an answer (typed or from a file) into the prompt's kind; ValueError if it cannot."""
    if prompt.kind == "instruction":
        return True
    if prompt.kind == "confirm":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in YES:
            return True
        if text in NO:
            return False
        raise ValueError(f"prompt {step_id!r} asks yes or no, got {raw!r}")
    if prompt.kind == "number":
        if isinstance(raw, bool):
            raise ValueError(f"prompt {step_id!r} asks a number, got {raw!r}")
        try:
            return float(raw)
        except (TypeError, ValueError):
            raise ValueError(f"prompt {step_id!r} asks a number, got {raw!r}") from None
    if prompt.kind == "choice":
        assert prompt.choices is not None
        text = str(raw).strip()
        if text not in prompt.choices:
            raise ValueError(f"prompt {step_id!r} asks one of {prompt.choices}, got {raw!r}")
        return text
    return str(raw)


class AnswersFile:
    """Answers keyed by step id, from a YAML mapping (``step-id: answer``)."""

    def __init__(self, path: Path) -> None:
        data, self._locs = load_file(path, PlanError)
        if not isinstance(data, Mapping):
            raise PlanError(
                "an answers file is a mapping of step id → answer", file=str(path), line=1
            )
        self.path = path
        self.answers: Mapping[str, Any] = data

    def ask(self, step_id: str, prompt: Prompt) -> Any:
        if step_id not in self.answers:
            if prompt.kind == "instruction":
                return True
            raise PlanError(
                f"no answer for prompt {step_id!r} ({prompt.message!r}) in the answers file",
                file=str(self.path),
            )
        try:
            return interpret(prompt, self.answers[step_id], step_id)
        except ValueError as err:
            line, col = self._locs.find((step_id,))
            raise PlanError(str(err), file=str(self.path), line=line, column=col) from None


class Terminal:
    """Asks on the terminal; re-asks until the answer fits the prompt's kind."""

    def __init__(
        self,
        read: Callable[[str], str] = input,
        write: Callable[[str], object] = print,
        tries: int = 5,
    ) -> None:
        self.read = read
        self.write = write
        self.tries = tries

    def ask(self, step_id: str, prompt: Prompt) -> Any:
        hint = {
            "confirm": " [y/n]",
            "number": " [number]",
            "choice": f" [{'/'.join(prompt.choices or [])}]",
            "instruction": " [press Enter when done]",
            "text": "",
        }[prompt.kind]
        for _ in range(self.tries):
            raw = self.read(f"\n[hil] {step_id}: {prompt.message}{hint} ")
            try:
                return interpret(prompt, raw, step_id)
            except ValueError as err:
                self.write(f"[hil] {err}")
        raise PlanError(f"prompt {step_id!r}: no usable answer after {self.tries} tries")
