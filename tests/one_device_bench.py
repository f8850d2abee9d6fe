"""A stand-in for ``hil.bench.Bench`` with one CAN device ``ev``: what
``Timeline`` and ``InvariantWatch`` ask of a bench (``get`` and each device's
transport), so tests can feed them hand-made frames in a chosen order."""

from __future__ import annotations

from typing import Any


class OneDeviceBench:
    def __init__(self, device: Any) -> None:
        self.device = device
        self.definitions = {"ev": type("D", (), {"transport": "can"})()}

    def get(self, name: str) -> Any:
        return self.device
