"""The hub's CAN links to its peers: the car's bus and the charger's bus.

Each opens its *own* python-can bus from the peer's ``LinkedDevice``
transport settings (what the bench opened: on the emulated bench the peer's
virtual channel with the bench's suffix; in a lab, the real interface), and
decodes with the *peer's* DBC and E2E profile, as a real controller on that
bus would. Frames failing E2E checks are dropped. Both are drained without
blocking from the hub's 10 ms tick.
"""

from __future__ import annotations

import logging
from typing import Any

import can

from devices.charger import driver as charger_dbc
from devices.ev import driver as ev_dbc
from hil.bench.links import LinkedDevice
from hil.cannode.driver import Database
from hil.cannode.e2e import E2EProfile, encode
from hil.errors import EmulatorError

log = logging.getLogger(__name__)

HEARTBEAT_S = 1.0  # HUB_ChargeLimit's cycle in charger.dbc
SILENT_S = 1.0  # no EVSE_Status (100 ms cycle) for this long: the charger is not heard
PILOT_C = 2
MAX_DRAIN = 500  # frames per tick and bus: a flood cannot starve the tick


class _PeerBus:
    """One python-can bus on a peer's CAN, filtered to the frames the hub reads."""

    def __init__(
        self, hub: str, peer: LinkedDevice | None, db: Database, e2e: E2EProfile, names: list[str]
    ) -> None:
        self.hub = hub
        self.peer = peer
        self.db = db
        self._receiver = e2e.receiver()
        self._e2e = e2e
        wanted = [db.get_message_by_name(n) for n in names]
        self._messages = {m.frame_id: m for m in wanted}
        self.bus: can.BusABC | None = None
        self.rejected = 0

    @property
    def device(self) -> str:
        return self.peer.name if self.peer is not None else "?"

    def open(self) -> None:
        if self.peer is None:
            return
        t = self.peer.transport
        kwargs: dict[str, Any] = dict(t.get("options") or {})
        for key in ("bitrate", "fd"):
            if t.get(key) is not None:
                kwargs[key] = t[key]
        filters: list[can.typechecking.CanFilter] = [
            {"can_id": i, "can_mask": 0x7FF} for i in self._messages
        ]
        try:
            self.bus = can.Bus(
                interface=t["interface"], channel=t["channel"], can_filters=filters, **kwargs
            )
        except (can.CanError, OSError, ValueError, ImportError, KeyError) as err:
            raise EmulatorError(
                f"cannot open {self.peer.name}'s CAN ({t.get('interface')!r} "
                f"{t.get('channel')!r}): {err}",
                device=self.hub,
            ) from err

    def close(self) -> None:
        if self.bus is not None:
            self.bus.shutdown()
            self.bus = None

    def drain(self) -> list[tuple[str, dict[str, Any]]]:
        """Every frame waiting on the bus, decoded and E2E-checked, oldest first."""
        out: list[tuple[str, dict[str, Any]]] = []
        if self.bus is None:
            return out
        for _ in range(MAX_DRAIN):
            frame = self.bus.recv(timeout=0)
            if frame is None:
                break
            message = self._messages.get(frame.arbitration_id)
            if message is None:
                continue
            try:
                decoded: Any = message.decode(bytes(frame.data), decode_choices=False)
                values: dict[str, Any] = dict(decoded)
            except Exception:  # a truncated or foreign frame: a real controller drops it
                self.rejected += 1
                continue
            spec = self._e2e.by_frame_id(message.frame_id)
            if spec is not None and self._receiver.verify(
                spec.frame_id, frame.data, int(values[spec.counter])
            ):
                self.rejected += 1
                continue
            out.append((message.name, values))
        return out


class CarLink(_PeerBus):
    """The car's bus: gear (DRIVE_Status) and distance from home (NAV_Status)."""

    def __init__(self, hub: str, peer: LinkedDevice | None) -> None:
        super().__init__(
            hub, peer, ev_dbc.load_database(), ev_dbc.e2e_profile(), ["DRIVE_Status", "NAV_Status"]
        )

    def poll(self) -> tuple[float | None, int | None]:
        """The newest (distance m, gear) seen since the last poll; ``None`` where nothing came."""
        distance: float | None = None
        gear: int | None = None
        for name, values in self.drain():
            if name == "NAV_Status":
                raw = values["HomeDistance"]
                distance = None if raw >= ev_dbc.HOME_DISTANCE_NA else float(raw)
            else:
                gear = int(values["Gear"])
        return distance, gear


class ChargerLink(_PeerBus):
    """The charger's bus: HUB_ChargeLimit out, EVSE_Status and EVSE_Config in."""

    def __init__(self, hub: str, peer: LinkedDevice | None, max_a: float) -> None:
        super().__init__(
            hub,
            peer,
            charger_dbc.load_database(),
            charger_dbc.e2e_profile(),
            ["EVSE_Status", "EVSE_Config", charger_dbc.LIMIT],
        )
        self.max_a = max_a  # until the wallbox declares its own (EVSE_Config.MaxCurrent)
        self.cut = False  # the bench pulled the cable
        self.measured_a = 0.0
        self.charging = False
        self.foreign_until = 0.0
        self._heard: float | None = None
        self._alive = 0
        self._sent: float | None = None
        self._next_beat = 0.0
        self._limit_message = self.db.get_message_by_name(charger_dbc.LIMIT)

    def poll(self, now: float, yield_s: float) -> None:
        frames = self.drain()
        if self.cut:  # a pulled cable hears nothing
            self.charging, self._sent = False, None
            return
        for name, values in frames:
            if name == "EVSE_Status":
                self._heard = now
                self.measured_a = float(values["MeasuredCurrent"])
                self.charging = int(values["PilotState"]) == PILOT_C
            elif name == "EVSE_Config":
                self.max_a = float(values["MaxCurrent"]) or self.max_a
            else:  # a HUB_ChargeLimit this hub did not send: the bench plays the hub
                self.foreign_until = now + yield_s
                self._sent = None

    def yielding(self, now: float) -> bool:
        return now < self.foreign_until

    def heard(self, now: float) -> bool:
        return self._heard is not None and now - self._heard < SILENT_S

    def drive(self, limit_a: float, now: float) -> None:
        """Send the limit on change and as the 1 s heartbeat, with a fresh alive counter."""
        if self.bus is None or (limit_a == self._sent and now < self._next_beat):
            return
        self._alive = (self._alive + 1) % charger_dbc.HEARTBEAT_MODULO
        values = {"CurrentLimit": limit_a, charger_dbc.HEARTBEAT: self._alive}
        frame = can.Message(
            arbitration_id=self._limit_message.frame_id,
            is_extended_id=False,
            data=encode(self._limit_message, values),
        )
        try:
            self.bus.send(frame)
        except can.CanError as err:
            log.warning("hub %s: cannot send %s: %s", self.hub, charger_dbc.LIMIT, err)
            return
        self._sent, self._next_beat = limit_a, now + HEARTBEAT_S
