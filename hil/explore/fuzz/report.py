"""What a fuzz run found: counts per category, error answers judged, and the finding."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

LIVENESS, ERROR_ANSWER, SAFETY = "liveness", "error-answer", "safety"


@dataclass(frozen=True)
class Finding:
    """One oracle violation, for the (shrunk) input that caused it.

    ``kind`` is ``liveness`` (the device stopped answering its probe),
    ``error-answer`` (it answered bad input other than its protocol requires)
    or ``safety`` (a safety signal moved on invalid input).
    """

    protocol: str
    device: str
    kind: str
    category: str
    input: str  # the wire form: hex for frames, the line, the SCPI text
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FuzzReport:
    """One protocol's fuzz run on one device."""

    protocol: str
    device: str
    profile: str
    seed: str  # "derandomized" or the random seed, to replay the run
    defects: tuple[str, ...] = ()
    sent: Counter[str] = field(default_factory=Counter)
    errors_answered: int = 0  # bad inputs answered as the protocol requires
    liveness_failures: int = 0  # every failing probe, shrinking included
    finding: Finding | None = None
    flaky: bool = False  # the shrunk input did not fail again on replay

    @property
    def examples(self) -> int:
        return sum(self.sent.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "device": self.device,
            "profile": self.profile,
            "seed": self.seed,
            "defects": list(self.defects),
            "examples": self.examples,
            "sent": dict(sorted(self.sent.items())),
            "errors_answered": self.errors_answered,
            "liveness_failures": self.liveness_failures,
            "finding": self.finding.to_dict() if self.finding else None,
            "flaky": self.flaky,
        }

    def summary(self) -> str:
        """A few lines for the terminal."""
        sent = ", ".join(f"{k} {v}" for k, v in sorted(self.sent.items()))
        lines = [
            f"{self.protocol} fuzz of {self.device} (profile {self.profile}, seed {self.seed}): "
            f"{self.examples} examples ({sent})",
            f"  bad inputs answered as the protocol requires: {self.errors_answered}; "
            f"liveness failures: {self.liveness_failures}",
        ]
        if self.finding is None:
            lines.append("  no finding")
        else:
            f = self.finding
            lines.append(f"  FINDING ({f.kind}, {f.category}): {f.reason}")
            lines.append(f"  minimal input: {f.input}")
            if self.flaky:
                lines.append("  (the minimal input did not fail again on replay: flaky)")
        return "\n".join(lines)

    def write(self, directory: Path) -> Path:
        """``<device>-<protocol>.json`` in ``directory``; returns its path."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.device}-{self.protocol}.json"
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path
