"""The files Allure reads beside the results: environment.properties and categories.json.

Written once, by the controller process at the end of the session (pytest-xdist
workers must not clobber each other), from what the run record knows.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Mapping
from pathlib import Path

import hil
from hil.bench.loader import LoadedBench
from hil.secrets import redact

# (name, the category word the plan items put in their failure message, status)
CATEGORIES = (
    ("Safety violation", "safety violation", "failed"),
    ("Deadline missed", "deadline missed", "failed"),
    ("Measurement out of limits", "measurement out of limits", "failed"),
    ("Invalid measurement conditions", "invalid measurement conditions", "failed"),
    ("Expectation not met", "expectation not met", "failed"),
    ("Operator answer", "operator", "failed"),
    ("Device not responding", "device not responding", "broken"),
    ("Plan timeout (watchdog)", "plan timeout", "broken"),
    ("Plan error", "plan error", "broken"),
)


def categories() -> list[dict[str, object]]:
    return [
        {
            "name": name,
            "matchedStatuses": [status],
            "messageRegex": rf"(?s).*\[{word}\].*",
        }
        for name, word, status in CATEGORIES
    ]


def git_commit(where: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def environment(
    bench: LoadedBench, identities: Mapping[str, Mapping[str, str]], root: Path
) -> dict[str, str]:
    """What a reader of the report needs to know about where it was produced."""
    env = {
        "hil.version": hil.__version__,
        "git.commit": git_commit(root),
        "bench.id": bench.id,
        "bench.file": str(bench.path),
        "bench.sha256": bench.sha256,
        "bench.time_scale": f"{bench.config.time_scale:g}",
    }
    for name, definition in sorted(bench.definitions().items()):
        device = bench.config.devices[name]
        env[f"device.{name}.type"] = device.type + (" (emulated)" if device.emulated else "")
        if device.defects:
            env[f"device.{name}.defects"] = ",".join(device.defects)
        for key, value in sorted(identities.get(name, {}).items()):
            env[f"device.{name}.{key}"] = value
        for path in definition.files:
            digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            env[f"device.{name}.definition.{Path(path).name}.sha256"] = digest
    return env


def write(
    alluredir: Path, bench: LoadedBench, identities: Mapping[str, Mapping[str, str]], root: Path
) -> None:
    alluredir.mkdir(parents=True, exist_ok=True)
    lines = [f"{k}={_escape(redact(v))}" for k, v in environment(bench, identities, root).items()]
    (alluredir / "environment.properties").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (alluredir / "categories.json").write_text(
        json.dumps(categories(), indent=1) + "\n", encoding="utf-8"
    )


def _escape(value: str) -> str:
    # .properties: backslashes, and line breaks would start a new key
    return value.replace("\\", "\\\\").replace("\n", "\\n")
