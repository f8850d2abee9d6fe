"""An emulated phone: the test-harness app on a pty, its hub link and its radio.

The bench drives a phone through a harness app connected over USB serial;
the harness speaks MIoT serial like an appliance MCU (the bench plays the
module), so the emulated phone is a ``MiotMcuEmulator``. What the person
does with the phone is physics, imposed through bench inputs: its
``distance`` to the car's driver door (m), a ``relay`` attack (thieves relay
its BLE link from far away: the link looks near, the real distance stays),
whether its digital key is ``paired``, and whether the person is ``at_home``.

Two peers, both from the bench's ``links`` (``links: {hub: hub, car: ev}``):

* **hub**: the app talks to the home hub over TCP with the hub's JSON-lines
  protocol (``hil/hublink.py``, role ``phone``): app actions become hub
  commands, the person's presence (bench input ``at_home``) is told to the
  hub, and hub notifications update ``notifications.*`` and raise
  ``notification-received``, so the bench sees them on the phone's serial
  link. The address is the emulated hub's published ``api`` endpoint, a real
  hub's ``settings.api``, or this phone's own ``settings.hub_api``.
* **car**: the radio between phone and car is physics, not a protocol. At
  open the phone registers itself with the linked car emulator's digital key
  module (``emulator.digital_key.attach(phone)``), which then reads
  ``distance_m``, ``relayed`` and ``key_paired`` whenever it ranges. A real
  car needs a real phone: an emulated phone cannot reach it, and the phone's
  inputs on a real phone need real actuators (a bench error otherwise).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

from hil import hublink
from hil.bench.links import LinkedDevice, Links
from hil.errors import DeviceLost, EmulatorError, HilError
from hil.miot.codec import encode_value
from hil.miot.mcu import ActionRefused, MiotMcuEmulator
from hil.miot.spec import MiotSpec

log = logging.getLogger(__name__)

PAIRED = "key.paired"
KEY_ID = "key.key-id"
LAST_COMMAND = "app.last-command"
LAST_RESULT = "app.last-result"
HUB_CONNECTED = "app.hub-connected"
CATEGORY = "notifications.last-category"
TEXT = "notifications.last-text"
DEVICE = "notifications.last-device"
COUNT = "notifications.count"
RECEIVED = "notifications.notification-received"
AT_HOME = "presence.at-home"

REFUSED = -4004  # the protocol's "internal error": the hub did not do it
HUB_UNREACHABLE = -1  # app.last-result when the hub never answered
# encoded lengths that keep a report line (all four strings together) under 512 bytes
MAX_TEXT_BYTES = 160
MAX_WORD_BYTES = 60

PRESENCE_TIMEOUT_S = 1.0  # one attempt to tell the hub; retried while it differs
# app action → the hub command it sends (the hub's commands: devices/hub/README.md)
APP_COMMANDS: Mapping[str, Mapping[str, Any]] = {
    "app.good-morning": hublink.command("scene", {"scene": "good_morning"}),
}


@runtime_checkable
class KeyReader(Protocol):
    """What a car offers a phone's radio: its digital key module."""

    def attach(self, phone: Any) -> None: ...

    def detach(self, phone: Any) -> None: ...


class PhoneEmulator(MiotMcuEmulator):
    """The harness app of the person's phone, on a pty.

    Settings: ``key_id`` ("DK-HIL-0001"), ``paired`` (true), ``distance_m``
    (20: away from the car), ``hub_api`` ("HOST:PORT", when no hub is
    linked), ``hub_timeout_s`` (2, at most 2: how long an app command waits
    for the hub, so the harness answers within the protocol's 4 s RPC limit),
    ``poll_period_s``. The presence is
    unknown (not told to the hub) until the bench sets ``at_home``.
    """

    DEFECTS: ClassVar[Mapping[str, str]] = {}
    OWN_LOOP = True  # an app command waits for the hub on the MCU's loop: not the shared one
    INPUTS: ClassVar[Mapping[str, str]] = {
        "distance": "m",
        "relay": "",
        "paired": "",
        "at_home": "",
    }

    def __init__(
        self,
        name: str,
        spec: MiotSpec,
        *,
        defects: Iterable[str] = (),
        time_scale: float = 1.0,
        settings: Mapping[str, Any] | None = None,
        links: Links | None = None,
    ) -> None:
        super().__init__(name, spec, defects=defects, time_scale=time_scale, settings=settings)
        s = self.settings
        self.hub_timeout_s = float(s.get("hub_timeout_s", 2.0))
        if not 0 < self.hub_timeout_s <= 2.0:
            raise EmulatorError(
                "settings.hub_timeout_s must be in (0, 2] s (an app command must be answered "
                f"within the MIoT 4 s RPC limit), got {self.hub_timeout_s:g}",
                device=name,
            )
        self._distance = _distance(s.get("distance_m", 20.0), name)
        self._relayed = False
        self._at_home: bool | None = None  # unknown until the bench says
        self._presence_changed = threading.Event()
        self._car = _car(links or {}, name)
        self._hub: hublink.HubLinkClient | None = None
        address = _hub_address(links or {}, s, name)
        if address is not None:
            self._hub = hublink.HubLinkClient(
                address, role="phone", device=name, model=spec.model, on_notify=self._notified
            )
        self.presence_told: list[bool] = []  # what the hub accepted, for tests
        self.notifications: list[dict[str, Any]] = []  # every one received, for tests
        self.update(KEY_ID, str(s.get("key_id", "DK-HIL-0001")))
        self.update(PAIRED, bool(s.get("paired", True)))

    # ----- the radio, as the car's digital key module reads it

    @property
    def distance_m(self) -> float:
        """The real distance from the phone to the car's driver door."""
        with self._lock:
            return self._distance

    @property
    def relayed(self) -> bool:
        """Its BLE link to the car is relayed (a relay attack is on)."""
        with self._lock:
            return self._relayed

    @property
    def key_paired(self) -> bool:
        """It holds a digital key credential the car issued."""
        return self.value(PAIRED) is True

    @property
    def hub_connected(self) -> bool:
        return self._hub is not None and self._hub.connected.is_set()

    def state(self) -> dict[str, Any]:
        out = super().state()
        with self._lock:
            out.update(
                distance_m=self._distance,
                relayed=self._relayed,
                hub=None if self._hub is None else f"{self._hub.host}:{self._hub.port}",
                hub_connected=self.hub_connected,
                hub_connects=0 if self._hub is None else self._hub.connects,
                at_home=self._at_home,
                car=self._car is not None,
                notifications=len(self.notifications),
            )
        return out

    # ----- lifecycle

    def _start(self) -> None:
        super()._start()
        if self._car is not None:
            self._car.attach(self)
        hub = self._hub
        if hub is not None:
            hub.open()  # connects on its own thread: open() never waits for the hub
            self.spawn(lambda: self._tell_presence(hub), "presence")

    def _stop(self) -> None:
        if self._car is not None:
            self._car.detach(self)
        if self._hub is not None:
            self._hub.close()
        super()._stop()

    # ----- bench inputs

    def _apply_input(self, name: str, value: float) -> None:
        with self._lock:
            if name == "distance":
                self._distance = _distance(value, self.name)
            elif name == "relay":
                self._relayed = value >= 0.5
            elif name == "paired":
                self.update(PAIRED, value >= 0.5)
            else:
                self._at_home = value >= 0.5
                self.update(AT_HOME, self._at_home)
                self._presence_changed.set()

    def _tick(self, now: float) -> None:
        hub = self._hub
        if hub is not None:
            self.update(HUB_CONNECTED, hub.connected.is_set())  # reported on change only

    def _tell_presence(self, hub: hublink.HubLinkClient) -> None:
        """Worker: tell the hub where the person is, again after each reconnect."""
        told: tuple[int, bool] | None = None  # (hub connection, presence) the hub accepted
        while not self.stopping.is_set():
            self._presence_changed.wait(0.1)
            self._presence_changed.clear()
            with self._lock:
                home = self._at_home
            if home is None or not hub.connected.is_set() or told == (hub.connects, home):
                continue
            call = hublink.command("presence", {"home": home})
            try:
                result = hub.request(call, PRESENCE_TIMEOUT_S)
            except HilError as err:
                log.info("%s: presence not told to the hub yet: %s", self.name, err)
                continue
            if result.get("code") == 0:
                told = (hub.connects, home)
                self.presence_told.append(home)
            else:
                log.warning("%s: hub refused presence %s: %s", self.name, home, result)

    # ----- the app

    def _on_action(self, name: str, args: Mapping[str, Any]) -> Mapping[str, Any]:
        call = APP_COMMANDS.get(name)
        if call is None:
            raise ActionRefused(-4003)
        self.update(LAST_COMMAND, name.partition(".")[2])
        if self._hub is None:
            self.update(LAST_RESULT, HUB_UNREACHABLE)
            raise ActionRefused(REFUSED)
        # answered on the MCU thread within hub_timeout_s (twice that at worst, should the
        # link drop in the middle of the command: still within the 4 s RPC limit)
        deadline = time.monotonic() + self.hub_timeout_s
        try:
            if not self._hub.connected.wait(self.hub_timeout_s):
                raise DeviceLost("the hub is not reachable", device=self.name)
            result = self._hub.request(call, max(deadline - time.monotonic(), 0.05))
        except HilError as err:
            log.info("%s: %s: %s", self.name, name, err)
            self.update(LAST_RESULT, HUB_UNREACHABLE)
            raise ActionRefused(REFUSED) from None
        code = result.get("code")
        code = code if isinstance(code, int) and not isinstance(code, bool) else HUB_UNREACHABLE
        self.update(LAST_RESULT, max(-9999, min(9999, code)))
        if code != 0:
            log.info("%s: hub refused %s: %s", self.name, name, result.get("message"))
            raise ActionRefused(REFUSED)
        return {}

    def _notified(self, note: Mapping[str, Any]) -> None:
        """A ``notify`` from the hub (hub client thread)."""
        category = _fit(str(note.get("category", "")), MAX_WORD_BYTES)
        text = _fit(str(note.get("text", "")), MAX_TEXT_BYTES)
        device = _fit(str(note.get("device", "")), MAX_WORD_BYTES)
        with self._lock:
            self.notifications.append(dict(note))
            self.update(CATEGORY, category)
            self.update(TEXT, text)
            self.update(DEVICE, device)
            self.update(COUNT, min(int(self.value(COUNT)) + 1, 1_000_000))
            self.emit(RECEIVED, **{"last-category": category, "last-text": text})


def _distance(value: Any, device: str) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < 0:
        raise EmulatorError(
            f"distance must be a number of metres >= 0, got {value!r}", device=device
        )
    return float(value)


def _fit(text: str, limit: int) -> str:
    """``text`` shortened until its wire form (quoted, spaces escaped) fits ``limit`` bytes."""
    while text and len(encode_value(text).encode()) > limit:
        text = text[:-1]
    return text


def _linked(links: Links, role: str, device: str) -> LinkedDevice | None:
    peers = links.get(role, ())
    if len(peers) > 1:
        names = [p.name for p in peers]
        raise EmulatorError(f"a phone links to one {role}, not {names}", device=device)
    return peers[0] if peers else None


def _car(links: Links, device: str) -> KeyReader | None:
    car = _linked(links, "car", device)
    if car is None or car.emulator is None:
        return None  # no car, or a real one: only a real phone can reach it
    reader = getattr(car.emulator, "digital_key", None)
    if not isinstance(reader, KeyReader):
        raise EmulatorError(
            f"linked car {car.name!r} ({car.type}) has no digital key module to pair with",
            device=device,
        )
    return reader


def _hub_address(links: Links, settings: Mapping[str, Any], device: str) -> str | None:
    hub = _linked(links, "hub", device)
    if hub is not None:
        text = hub.endpoint.get("api") or hub.settings.get("api")
        where = f"linked hub {hub.name!r}"
        if text is None:
            raise EmulatorError(
                f"{where} publishes no 'api' endpoint and has no settings.api (HOST:PORT)",
                device=device,
            )
    else:
        text = settings.get("hub_api")
        where = "settings.hub_api"
        if text is None:
            return None
    try:
        hublink.parse_address(str(text))
    except ValueError as err:
        raise EmulatorError(f"{where}: {err}", device=device) from None
    return str(text)
