"""Any cantools database → a ``DeviceDefinition`` (nothing is opened).

Every signal of every message is observable as ``"Message.Signal"`` with the
value the driver reports: the *scaled number* (``decode_choices=False``), so
value-table names map to scaled numbers. Messages sent by one of the bench's
own nodes (rest-bus simulation, key, phone) are the stimuli.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cantools.database

from hil.bench.definition import DeviceDefinition, SignalInfo, StimulusInfo
from hil.cannode.e2e import FAULT_FIELD, FAULTS, E2EProfile

Database = cantools.database.can.Database
Message = cantools.database.can.Message
Signal = cantools.database.can.Signal

BENCH_NODES = ("HIL",)


def signal_name(message: Message, signal: Signal) -> str:
    return f"{message.name}.{signal.name}"


def scaled_choices(signal: Signal) -> dict[str, Any]:
    """Value-table name → the scaled number a ``decode_choices=False`` decode gives."""
    if not signal.choices:
        return {}
    return {
        str(name): signal.conversion.raw_to_scaled(raw, decode_choices=False)
        for raw, name in signal.choices.items()
    }


def initial_value(signal: Signal) -> Any:
    """The DBC initial value (scaled), else 0, kept inside the signal's range."""
    value: Any = signal.initial if signal.initial is not None else 0
    raw = getattr(value, "value", None)  # a value-table entry (NamedSignalValue): its raw value
    if raw is not None:
        value = signal.conversion.raw_to_scaled(raw, decode_choices=False)
    if signal.minimum is not None and value < signal.minimum:
        value = signal.minimum
    if signal.maximum is not None and value > signal.maximum:
        value = signal.maximum
    return value


def signal_info(message: Message, signal: Signal) -> SignalInfo:
    choices = scaled_choices(signal)
    comment = signal.comment or ""
    if signal.multiplexer_ids:
        ids = ", ".join(str(i) for i in signal.multiplexer_ids)
        comment = f"{comment} (multiplexed: {signal.multiplexer_signal} in {ids})".strip()
    return SignalInfo(
        name=signal_name(message, signal),
        kind="enum" if choices else "number",
        unit=signal.unit or None,
        minimum=signal.minimum,
        maximum=signal.maximum,
        choices=choices,
        description=comment,
    )


E2E_FAULT_INFO = SignalInfo(
    name=FAULT_FIELD,
    kind="enum",
    choices=dict(FAULTS),
    description="fault injection, not a signal: send this frame with the last counter "
    "repeated, a stale counter, or a wrong checksum (default NONE: a valid frame)",
)


def can_definition(
    db: Database,
    *,
    type_name: str,
    bench_nodes: Iterable[str] = BENCH_NODES,
    e2e: E2EProfile | None = None,
    files: tuple[Path, ...] = (),
    capabilities: frozenset[str] = frozenset(),
) -> DeviceDefinition:
    """Describe ``db`` as a device; ``bench_nodes`` are the nodes the bench plays.

    Container (AUTOSAR PDU) messages are skipped: they carry other messages,
    not signals of their own. An E2E-protected stimulus hides its counter and
    checksum (the driver fills them) and offers ``E2EFault`` instead.
    """
    nodes = frozenset(bench_nodes)
    signals: dict[str, SignalInfo] = {}
    stimuli: dict[str, StimulusInfo] = {}
    for message in db.messages:
        if message.is_container:
            continue
        for signal in message.signals:
            info = signal_info(message, signal)
            signals[info.name] = info
        if nodes.intersection(message.senders):
            hidden = e2e.protection_signals(message.name) if e2e else frozenset()
            fields = {
                s.name: signal_info(message, s) for s in message.signals if s.name not in hidden
            }
            if hidden and FAULT_FIELD not in fields:
                fields[FAULT_FIELD] = E2E_FAULT_INFO
            stimuli[message.name] = StimulusInfo(
                name=message.name,
                kind="message",
                fields=fields,
                description=message.comment or f"CAN frame 0x{message.frame_id:X}",
            )
    return DeviceDefinition(
        type_name=type_name,
        transport="can",
        signals=signals,
        stimuli=stimuli,
        capabilities=capabilities,
        files=files,
    )
