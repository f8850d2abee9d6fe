"""An emulated home hub: a CAN node on the home bus that reaches every peer over its transport.

* Its own node (``hub.dbc``) on the bench's channel: ``HUB_Status`` (100 ms +
  on change), ``HUB_Notify`` (per notification), ``HUB_Info``; it takes
  ``HIL_HubCtrl`` and the bench input ``charger_link``.
* **The car** (``links: {car: …}``): its own python-can bus on the car's CAN,
  from the link's resolved settings (on the emulated bench: the car's
  virtual channel with the bench's suffix), decoded with the car's DBC and
  E2E profile: ``DRIVE_Status.Gear``, ``NAV_Status.HomeDistance``.
* **The charger** (``links: {charger: …}``): its own bus on the charger's CAN:
  ``HUB_ChargeLimit`` (charger.dbc, alive counter, on change + 1 s
  heartbeat) out, ``EVSE_Status``/``EVSE_Config`` in. The hub stands back
  (``ChargerLink`` BENCH) while the bench plays its role: after
  ``HIL_HubCtrl.ChargeControl`` BENCH, or for ``yield_s`` after any
  ``HUB_ChargeLimit`` it did not send itself (a plan playing the hub);
  any ``HIL_HubCtrl`` with ChargeControl HUB hands the charger back.
* **Appliances and phones**: the hub API (``devices/hub/api.py``) on
  127.0.0.1, published as ``endpoint["api"]``; the bench's Wi-Fi modules and
  the phone connect to it.

Decisions live in ``home.py`` (rules) and ``energy.py`` (charge limit); this
module only moves data between the wires and them. Everything runs on the
node's 10 ms tick, so the rules see one consistent state.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from devices.hub.api import ApiEvent, HubApi
from devices.hub.driver import HUB_NODES, load_database
from devices.hub.energy import charge_limit, other_loads
from devices.hub.home import Call, Home, Notice, Outcome
from devices.hub.peers import CarLink, ChargerLink
from hil import hublink
from hil.bench.links import LinkedDevice
from hil.cannode.emulator import CanNodeEmulator
from hil.emulation.base import Emulator
from hil.errors import EmulatorError

log = logging.getLogger(__name__)

SCENE_CODES = {"none": 0, "welcome_home": 1, "good_morning": 2, "leaving": 3}
NOTIFY_CODES = {
    "door_alarm": 1,
    "left_home_oven_on": 2,
    "charging_paused": 3,
    "vacuum_stopped": 4,
}
LINK_OK, LINK_CUT, LINK_BENCH, LINK_SILENT = 0, 1, 2, 3
UNKNOWN = 2


@dataclass
class CallRecord:
    """One call the hub made, for tests and evidence."""

    device: str
    call: dict[str, Any]
    purpose: str
    t_sent: float
    code: int | None = None
    message: str = ""


@dataclass
class _SceneRun:
    """A phone's scene command, answered when every call of the scene has a result."""

    device: str
    ident: int
    waiting: set[int] = field(default_factory=set)
    failure: tuple[int, str] | None = None


class HubEmulator(CanNodeEmulator):
    """The home hub (see the module docstring and devices/hub/README.md)."""

    DEFECTS: ClassVar[Mapping[str, str]] = {
        "no_welcome_scene": "never runs the welcome-home scene when the car parks at home",
        "ignores_household_limit": "keeps the charger at its maximum whatever else draws current",
        "sheds_below_minimum": "sends charge limits below 6 A instead of pausing at 0 A",
        "no_leaving_notice": "does not tell the phone that the car left with the oven on",
        "vacuum_not_docked": "pauses a sweeping vacuum on arrival but never sends it to its dock",
        "morning_scene_incomplete": "the good-morning scene leaves out the coffee maker",
        "drops_door_alarm": "does not forward the fridge's door alarm to the phone",
    }
    INPUTS: ClassVar[Mapping[str, str]] = {"charger_link": ""}

    def __init__(
        self,
        name: str,
        *,
        interface: str,
        channel: str,
        bus_kwargs: Mapping[str, Any] | None = None,
        defects: Iterable[str] = (),
        time_scale: float = 1.0,
        settings: Mapping[str, Any] | None = None,
        links: Mapping[str, tuple[LinkedDevice, ...]] | None = None,
        wiring: Mapping[str, Emulator] | None = None,  # the generic CAN factory's; unused
    ) -> None:
        super().__init__(
            name,
            db=load_database(),
            nodes=HUB_NODES,
            interface=interface,
            channel=channel,
            bus_kwargs=bus_kwargs,
            defects=defects,
            time_scale=time_scale,
            settings=settings,
        )
        s = self.settings
        links = links or {}
        self.home = Home(s, self.defects)
        self.household_setting_a = float(s.get("household_limit_a", 32.0))
        self.household_limit_a = self.household_setting_a
        self.mains_v = float(s.get("mains_v", 230.0))
        self.yield_s = float(s.get("yield_s", 10.0))
        self.car = CarLink(name, _one(name, links, "car"))
        self.charger = ChargerLink(
            name, _one(name, links, "charger"), float(s.get("charger_max_a", 32.0))
        )
        try:
            major, minor, patch = (int(p) for p in str(s.get("firmware", "2.1.0")).split("."))
        except ValueError as err:
            raise EmulatorError("settings.firmware must look like '2.1.0'", device=name) from err
        self.set_signals(
            "HUB_Info",
            SwMajor=major,
            SwMinor=minor,
            SwPatch=patch,
            HwRevision=int(s.get("hw_revision", 1)),
            SerialNumber=int(s.get("serial", 52000417)),
        )
        self.api: HubApi | None = None
        self.calls: deque[CallRecord] = deque(maxlen=1000)
        self.notices: deque[hublink.Message] = deque(maxlen=1000)
        self._pending: dict[int, CallRecord] = {}
        self._scenes: list[_SceneRun] = []
        self._bench_controls = False  # HIL_HubCtrl.ChargeControl = BENCH
        self.notify_count = 0
        self.last_notify = 0
        self.limit_a = 0.0
        self._paused: bool | None = None

    # --- lifecycle ---------------------------------------------------------------------

    def _start(self) -> None:
        self.api = HubApi(self.name)
        try:
            self.car.open()
            self.charger.open()
            super()._start()
        except BaseException:
            self.api.stop()
            self.car.close()
            self.charger.close()
            raise
        self.api.start()
        self.endpoint["api"] = self.api.address

    def _stop(self) -> None:
        super()._stop()
        self.car.close()
        self.charger.close()
        if self.api is not None:
            self.api.stop()

    def _apply_input(self, name: str, value: float) -> None:
        with self._lock:
            self.charger.cut = value < 0.5

    # --- the 10 ms tick (worker thread, under _lock) ----------------------------------

    def on_message(self, name: str, values: Mapping[str, Any], t: float) -> None:
        if name != "HIL_HubCtrl":
            return
        limit = float(values["HouseholdLimit"])
        self.household_limit_a = limit if limit > 0 else self.household_setting_a
        self._bench_controls = bool(values["ChargeControl"])
        self.charger.foreign_until = 0.0  # the bench says who is in charge now
        if values["ResetCounters"]:
            self.notify_count = self.last_notify = 0
            self.home.scene, self.home.scene_count = "none", 0

    def tick(self, dt: float) -> None:
        now = time.monotonic()
        outcome: Outcome = []
        distance, gear = self.car.poll()
        if distance is not None or gear is not None:
            outcome += self.home.car(distance, gear)
        self.charger.poll(now, self.yield_s)
        assert self.api is not None
        while not self.api.events.empty():
            outcome += self._api_event(self.api.events.get_nowait())
        self._execute(outcome)
        self._manage_charger(now)
        self._publish()

    def _api_event(self, event: ApiEvent) -> Outcome:
        if event.kind == "hello":
            if event.role == "module":
                self.home.connected(event.device, event.model)
        elif event.kind == "bye":
            self.home.gone(event.device)
        elif event.kind == "report":
            return self.home.report(event.device, event.body)
        elif event.kind == "result":
            self._result(event.ident, event.body)
        elif event.kind == "command":
            return self._command(event)
        return []

    def _command(self, event: ApiEvent) -> Outcome:
        assert self.api is not None
        call, args = event.body, event.body.get("args", {})
        if call["kind"] == "command" and call["name"] == "scene":
            try:
                outcome = self.home.run_scene(str(args.get("scene")))
            except ValueError as err:
                self.api.answer(event.device, event.ident, hublink.result(-4006, str(err)))
                return []
            run = _SceneRun(event.device, event.ident)
            self._scenes.append(run)
            self._execute(outcome, run)
            return []
        if call["kind"] == "command" and call["name"] == "presence":
            if not isinstance(args.get("home"), bool):
                answer = hublink.result(-4006, "presence takes {'home': true|false}")
                self.api.answer(event.device, event.ident, answer)
                return []
            self.api.answer(event.device, event.ident, hublink.result(0))
            return self.home.phone(args["home"])
        problem = (
            f"the hub takes commands 'scene' and 'presence', not {call['kind']} {call['name']}"
        )
        self.api.answer(event.device, event.ident, hublink.result(-4003, problem))
        return []

    def _execute(self, outcome: Outcome, run: _SceneRun | None = None) -> None:
        """Send the calls and notices; a scene's calls are tracked for its answer."""
        assert self.api is not None
        if run is not None and not any(isinstance(i, Call) for i in outcome):
            run.failure = (-4004, "no appliance for this scene is connected")
        for item in outcome:
            if isinstance(item, Notice):
                self._notify(item)
                continue
            record = CallRecord(item.device, item.call, item.purpose, time.time())
            self.calls.append(record)
            ident = self.api.call(item.device, item.call)
            if ident is None:
                record.code, record.message = -4004, f"{item.device} is not connected"
                if run is not None and run.failure is None:
                    run.failure = (-4004, record.message)
                continue
            self._pending[ident] = record
            if run is not None:
                run.waiting.add(ident)
        if run is not None and not run.waiting:
            self._finish(run)

    def _result(self, ident: int, body: Mapping[str, Any]) -> None:
        record = self._pending.pop(ident, None)
        if record is None:
            return
        code = body.get("code")
        record.code = int(code) if isinstance(code, int) else -4004
        record.message = str(body.get("message", ""))
        if record.code not in (0, 1):
            log.info(
                "hub %s: %s %s → %s %s", self.name, record.device, record.call, code, record.message
            )
        for run in list(self._scenes):
            if ident in run.waiting:
                run.waiting.discard(ident)
                if record.code not in (0, 1) and run.failure is None:
                    run.failure = (record.code, f"{record.device}: {record.message or record.code}")
                if not run.waiting:
                    self._finish(run)

    def _finish(self, run: _SceneRun) -> None:
        assert self.api is not None
        if run in self._scenes:
            self._scenes.remove(run)
        answer = hublink.result(0) if run.failure is None else hublink.result(*run.failure)
        self.api.answer(run.device, run.ident, answer)

    def _notify(self, notice: Notice) -> None:
        assert self.api is not None
        message = hublink.notify(notice.category, notice.device, notice.text, time.time())
        self.notices.append(message["notify"])
        delivered = self.api.notify(message)
        self.notify_count = (self.notify_count + 1) % 256
        self.last_notify = NOTIFY_CODES[notice.category]
        self.set_signals(
            "HUB_Notify",
            Category=self.last_notify,
            Seq=self.notify_count,
            Delivered=min(delivered, 15),
        )
        self.send_now("HUB_Notify")

    def _manage_charger(self, now: float) -> None:
        others = other_loads((a.props for a in self.home.appliances.values()), self.mains_v)
        limit = charge_limit(self.household_limit_a, others, self.charger.max_a, self.defects)
        paused = limit == 0.0
        if paused and self._paused is False and self.charger.charging:
            self._notify(
                Notice(
                    "charging_paused",
                    self.charger.device,
                    "charging paused: the household is at its limit",
                )
            )
        self._paused = paused
        self.limit_a = limit
        if not self.charger.cut and not self._bench_controls and not self.charger.yielding(now):
            self.charger.drive(limit, now)

    def _publish(self) -> None:
        now = time.monotonic()
        others = other_loads((a.props for a in self.home.appliances.values()), self.mains_v)
        if self.charger.cut:
            link = LINK_CUT
        elif self._bench_controls or self.charger.yielding(now):
            link = LINK_BENCH
        elif not self.charger.heard(now):
            link = LINK_SILENT
        else:
            link = LINK_OK
        assert self.api is not None
        status = {
            "Occupancy": _tri(self.home.occupied),
            "CarHome": _tri(self.home.car_home),
            "Scene": SCENE_CODES[self.home.scene],
            "ChargePaused": int(bool(self._paused)),
            "HouseholdCurrent": min(self.charger.measured_a + others, 102.3),
            "HouseholdLimit": min(self.household_limit_a, 102.3),
            "ChargeLimit": min(self.limit_a, 102.3),
            "ChargerLink": link,
            "NotifyCount": self.notify_count,
            "LastNotify": self.last_notify,
            "Modules": min(len(self.home.appliances), 15),
            "Phones": min(len(self.api.connected("phone")), 15),
            "SceneCount": self.home.scene_count % 16,
        }
        status = {k: self.quantize("HUB_Status", k, v) for k, v in status.items()}
        if status != self.signals("HUB_Status"):
            self.set_signals("HUB_Status", **status)
            self.send_now("HUB_Status")

    def state(self) -> dict[str, Any]:
        """A read-only snapshot for tests."""
        with self._lock:
            return {
                "occupied": self.home.occupied,
                "car_home": self.home.car_home,
                "scene": self.home.scene,
                "appliances": {d: a.kind for d, a in self.home.appliances.items()},
                "limit_a": self.limit_a,
                "household_limit_a": self.household_limit_a,
                "charger_cut": self.charger.cut,
                "notify_count": self.notify_count,
            }


def _tri(value: bool | None) -> int:
    return UNKNOWN if value is None else int(value)


def _one(
    name: str, links: Mapping[str, tuple[LinkedDevice, ...]], role: str
) -> LinkedDevice | None:
    peers = links.get(role, ())
    if len(peers) > 1:
        raise EmulatorError(
            f"a hub links to one {role}, got {[p.name for p in peers]}", device=name
        )
    return peers[0] if peers else None
