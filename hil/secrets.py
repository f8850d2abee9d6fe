"""Secrets in bench files: referenced, never written down, never reported.

A bench file names a secret by reference — ``${ENV:HUB_API_TOKEN}`` — and
the value comes from the environment when the bench is loaded. Every value
resolved this way is remembered for the life of the process, and every
writer of reports (plan records, Allure attachments, transcripts, logs)
passes its text through ``redact``, so the value itself never reaches a
report, whichever path it travelled (a setting echoed by a device, an
exception message, a log line).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable
from typing import Any

REFERENCE = re.compile(r"\$\{ENV:([A-Za-z_][A-Za-z0-9_]*)\}")
MASK = "***"
MIN_LENGTH = 4  # shorter values would mask innocent text everywhere; refuse them

_lock = threading.Lock()
_secrets: set[str] = set()


class SecretError(ValueError):
    """A reference that cannot be resolved (the caller adds file and line)."""


def register(value: str) -> None:
    if len(value) < MIN_LENGTH:
        raise SecretError(f"a secret must be at least {MIN_LENGTH} characters long")
    with _lock:
        _secrets.add(value)


def resolve(text: str, environ: dict[str, str] | None = None) -> str:
    """Replace every ``${ENV:NAME}`` in ``text``; each value becomes a secret."""
    env = os.environ if environ is None else environ

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise SecretError(f"environment variable {name} is not set (referenced as {match[0]})")
        value = env[name]
        register(value)
        return value

    return REFERENCE.sub(substitute, text)


def resolve_tree(data: Any, where: Callable[[tuple[Any, ...], str], Exception]) -> Any:
    """Resolve references in every string of a parsed YAML tree.

    ``where(path, message)`` builds the located error for a failed reference.
    """

    def walk(node: Any, path: tuple[Any, ...]) -> Any:
        if isinstance(node, str) and "${ENV:" in node:
            try:
                return resolve(node)
            except SecretError as err:
                raise where(path, str(err)) from err
        if isinstance(node, dict):
            return {k: walk(v, (*path, k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, (*path, i)) for i, v in enumerate(node)]
        return node

    return walk(data, ())


def redact(text: str) -> str:
    """``text`` with every known secret replaced by ``***``."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)  # longest first: no partial leaks
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_bytes(data: bytes) -> bytes:
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        data = data.replace(secret.encode(), MASK.encode())
    return data


def known() -> bool:
    with _lock:
        return bool(_secrets)


_factory_installed = False


def install_log_redaction() -> None:
    """Mask secrets in every log record from now on, whichever handler takes it.

    A record factory (rather than a handler filter) also covers handlers that
    are added later, such as pytest's per-test log capture.
    """
    global _factory_installed
    with _lock:
        if _factory_installed:
            return
        _factory_installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if known():
            record.msg = redact(record.getMessage())
            record.args = None
        return record

    logging.setLogRecordFactory(factory)
