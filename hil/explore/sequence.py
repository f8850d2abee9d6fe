"""A drawn sequence as an ordinary plan document, and its YAML text.

The same document is what each example runs (written, then read back by the
normal plan loader) and what a found violation is emitted as, so the plan a
lab engineer commits is exactly the sequence that failed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from hil.explore.loader import SETTLE_STEP, LoadedExplore

EXPLORED_TAGS = ("regression", "explored")
_PLAN_KEYS = (
    "spec",
    "id",
    "title",
    "description",
    "version",
    "requirements",
    "severity",
    "tags",
    "owner",
    "devices",
    "require",
    "invariants",
    "setup",
    "steps",
    "teardown",
)


def duration_text(seconds: float) -> str:
    return f"{seconds * 1000:g} ms" if seconds < 1 else f"{seconds:g} s"


def stimulus_step(n: int, body: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": f"s{n}", **body}


def wait_step(n: int, seconds: float) -> dict[str, Any]:
    # real time: the emulators' physics and the devices' reactions are not scaled
    return {"id": f"s{n}-wait", "wait": {"duration": duration_text(seconds), "scaled": False}}


def plan_document(
    explore: LoadedExplore, steps: Sequence[Mapping[str, Any]], settle: float
) -> dict[str, Any]:
    """The plan: the explore file's metadata, invariants, setup and teardown, with ``steps``."""
    data = explore.data
    body = [
        *steps,
        {"id": SETTLE_STEP, "wait": {"duration": duration_text(settle), "scaled": False}},
    ]
    digest = hashlib.sha256(yaml.safe_dump(body, sort_keys=True).encode()).hexdigest()[:8]
    tags = [*EXPLORED_TAGS, *(t for t in data.get("tags", []) if t not in EXPLORED_TAGS)]
    doc: dict[str, Any] = {
        **{k: data[k] for k in _PLAN_KEYS if k in data},
        "id": f"{explore.id}-{digest}",
        "title": f"{explore.file.title} (explored sequence {digest})",
        "description": (
            f"A sequence of {sum(1 for s in steps if 'wait' not in s)} stimuli found by "
            f"exploring {explore.path.name}; it reproduces the violation named in the "
            "comment above. Commit it as a regression plan."
        ),
        "tags": tags,
        "steps": body,
    }
    return {k: doc[k] for k in _PLAN_KEYS if k in doc}


def render(doc: Mapping[str, Any], header: Sequence[str] = ()) -> str:
    """YAML text of ``doc`` with ``header`` as comment lines on top."""
    text = yaml.safe_dump(dict(doc), sort_keys=False, allow_unicode=True, width=100)
    return with_header(text, header)


def with_header(text: str, header: Sequence[str]) -> str:
    """``text`` with comment lines on top (comments only: the plan is unchanged)."""
    # a reason may quote a multi-line invariant: each header entry stays one comment line
    return "".join("# " + " ".join(h.split()) + "\n" for h in header) + text
