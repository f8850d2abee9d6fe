"""The bench side of the MIoT link: the driver plays the Wi-Fi module.

The appliance MCU drives the conversation (it polls with ``get_down``), so all
happens where the transport reads (a local port: the shared selector loop, so
nothing here blocks): boot lines are acked, each poll is answered with the next
queued downlink, reports are acked and recorded. Callers of ``get``/``set``/
``action`` queue a downlink and wait — at most the platform's 4 s RPC
timeout — for the MCU's ``result``.
"""

from __future__ import annotations

import bisect
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from hil.bench.definition import DeviceDefinition
from hil.bench.driver import Sample
from hil.bench.registry import DriverContext
from hil.errors import (
    ConfigError,
    DeviceLost,
    DeviceTimeout,
    ProtocolError,
)
from hil.miot.codec import Bare, Line, LineError, Value, decode_line, encode_line, is_int
from hil.miot.rpc import (
    RPC_TIMEOUT_S,
    Expect,
    Request,
    meaning,
    parse_get_result,
)
from hil.miot.spec import MiotSpec
from hil.miot.uplink import ModuleUplink
from hil.transports.serial import SerialTransport

__all__ = ["RPC_TIMEOUT_S", "MiotModuleDriver"]  # the RPC limit is part of this module's API

log = logging.getLogger(__name__)

MAX_OBSERVATIONS = 100_000  # per signal; older ones are dropped first


class MiotModuleDriver:
    """Drives a MIoT appliance over serial by playing its Wi-Fi module."""

    def __init__(
        self,
        name: str,
        transport: SerialTransport,
        definition: DeviceDefinition,
        spec: MiotSpec,
        *,
        rpc_timeout: float = RPC_TIMEOUT_S,
    ) -> None:
        self.name = name
        self.definition = definition
        self.spec = spec
        self.transport = transport
        self.rpc_timeout = rpc_timeout
        self._cond = threading.Condition()
        self._queue: deque[Request] = deque()  # waiting for a get_down
        self._inflight: deque[Request] = deque()  # sent, waiting for result/error
        self._obs: dict[str, list[Sample]] = {}
        self._model: str | None = None
        self._mcu_version: str | None = None
        self.last_poll: float | None = None  # capture time of the newest get_down
        self._closed = False
        self.uplink: ModuleUplink | None = None  # the relay to a linked hub, if any
        self._by_ids = {
            (s.siid, p.piid): (f"{s.name}.{p.name}", p) for s, p in spec.iter_properties()
        }
        self._events = {(s.siid, e.eiid): f"{s.name}.{e.name}" for s, e in spec.iter_events()}
        # boot lines that came before we were attached still say who the device is
        for rec in transport.capture.records():
            if rec.direction == "rx":
                self._remember_boot(rec.data)
        transport.on_line = self._on_line

    @classmethod
    def from_context(cls, ctx: DriverContext, spec: MiotSpec) -> Self:
        if not isinstance(ctx.transport, SerialTransport):
            raise ConfigError(
                f"device {ctx.name!r} speaks MIoT serial; its transport must be serial, "
                f"not {type(ctx.transport).__name__}"
            )
        driver = cls(ctx.name, ctx.transport, ctx.definition, spec)
        # a real module forwards to the hub; so does the bench's, when linked to one
        driver.uplink = ModuleUplink.for_links(driver, ctx.links)
        if driver.uplink is not None:
            driver.uplink.open()
        return driver

    # ----- the module's side of the conversation (reader thread)

    def _on_line(self, t: float, text: str) -> None:
        try:
            self._handle(t, text)
        except Exception:  # the reader thread must survive any one bad line
            log.exception("%s: cannot handle line %r", self.name, text)

    def _handle(self, t: float, text: str) -> None:
        try:
            line = decode_line(text)
        except LineError:
            self.transport.write_line("error")
            return
        cmd, args = line.command, line.args
        if cmd in ("model", "mcu_version"):
            valid = self._remember_boot(text)
            self.transport.write_line("ok" if valid else "error")
            if cmd == "mcu_version":
                # "0001" would decode as the integer 1: keep the word itself
                self._resolve_version(t, Line(cmd, (Bare(text.partition(" ")[2]),)))
        elif cmd == "get_down":
            self._answer_poll(t)
        elif cmd == "properties_changed":
            # recorded before the ack: whoever sees the ack also sees the observation
            ok = len(args) > 0 and len(args) % 3 == 0
            if ok:
                self._observe_changes(t, args)
            self.transport.write_line("ok" if ok else "error")
        elif cmd == "event_occured":
            ok = len(args) >= 2 and len(args) % 2 == 0 and is_int(args[0]) and is_int(args[1])
            event = self._events.get((int(args[0]), int(args[1]))) if ok else None
            if event is not None:
                self._add(event, Sample(t, True))
                if self.uplink is not None:
                    self.uplink.event(event, self._event_args(int(args[0]), args[2:]), t)
            self.transport.write_line("ok" if ok else "error")
        elif cmd in ("result", "error"):
            self._resolve(t, line)
        else:
            self.transport.write_line("error")

    def _remember_boot(self, text: str) -> bool:
        cmd, _, rest = text.partition(" ")
        with self._cond:
            if cmd == "model":
                self._model = rest
                valid = 0 < len(rest) <= 23 and " " not in rest
            elif cmd == "mcu_version":
                self._mcu_version = rest
                valid = re.fullmatch(r"[0-9]{4}", rest) is not None
            else:
                return False
            self._cond.notify_all()
        return valid

    def _answer_poll(self, t: float) -> None:
        with self._cond:
            self.last_poll = t
            request = self._queue.popleft() if self._queue else None
            if request is not None and request.expect != "none":
                self._inflight.append(request)
        if request is None:
            self.transport.write_line("down none")
            return
        t_sent = self.transport.write_line(request.text)
        with self._cond:
            request.t_sent = t_sent
            if request.expect == "none":
                request.done.set()
            self._cond.notify_all()

    def _resolve(self, t: float, line: Line) -> None:
        with self._cond:
            request = None
            if line.command == "error":
                request = next((r for r in self._inflight if r.expect == "result"), None)
            else:
                lead = line.args[:2]
                request = next(
                    (r for r in self._inflight if r.expect == "result" and r.match == lead), None
                )
            if request is None:
                log.info("%s: unsolicited %r", self.name, str(line))
                return
            self._inflight.remove(request)
            request.reply, request.t_reply = line, t
        # observations first, then wake the caller: whoever sees the answer sees them too
        if line.command == "result" and request.words[0] == "get_properties":
            for name, prop, code, value in parse_get_result(self._by_ids, line.args):
                if code == 0 and prop is not None:
                    self._add(name, Sample(t, prop.normalize(value)))
        elif line.command == "result" and request.words[0] == "set_properties":
            self._observe_writes(t, request.words[1:], line.args)
        request.done.set()

    def _resolve_version(self, t: float, line: Line) -> None:
        # the answer to MIIO_mcu_version_req is a fresh mcu_version line, not a result
        with self._cond:
            for request in list(self._inflight):
                if request.expect == "mcu_version" and request.t_sent is not None:
                    self._inflight.remove(request)
                    request.reply, request.t_reply = line, t
                    request.done.set()

    def _observe_writes(self, t: float, sent: Sequence[Value], args: tuple[Value, ...]) -> None:
        # result code 0 to a write means the MCU applied it: that is an observation
        # of the new value, at the time of the answer (the properties_changed
        # report may follow up to a second later, by the platform's rate rule)
        written = {(s, p): v for s, p, v in zip(sent[::3], sent[1::3], sent[2::3], strict=False)}
        for siid, piid, code in zip(args[::3], args[1::3], args[2::3], strict=False):
            known = (
                self._by_ids.get((int(siid), int(piid))) if is_int(siid) and is_int(piid) else None
            )
            if known is not None and code == 0 and (siid, piid) in written:
                value = known[1].normalize(written[(siid, piid)])
                self._add(known[0], Sample(t, value))
                if self.uplink is not None:
                    self.uplink.property_changed(known[0], value, t)

    def _observe_changes(self, t: float, args: tuple[Value, ...]) -> None:
        for siid, piid, value in zip(args[::3], args[1::3], args[2::3], strict=True):
            known = (
                self._by_ids.get((int(siid), int(piid))) if is_int(siid) and is_int(piid) else None
            )
            if known is not None:
                normalized = known[1].normalize(value)
                self._add(known[0], Sample(t, normalized))
                if self.uplink is not None:
                    self.uplink.property_changed(known[0], normalized, t)

    def _event_args(self, siid: int, args: tuple[Value, ...]) -> dict[str, Value]:
        """An event's ``piid value …`` arguments by property name (unknown ones by piid)."""
        out: dict[str, Value] = {}
        for piid, value in zip(args[::2], args[1::2], strict=False):
            prop = self.spec.prop(siid, int(piid)) if is_int(piid) else None
            out[prop.name if prop else str(piid)] = prop.normalize(value) if prop else value
        return out

    def _add(self, signal: str, sample: Sample) -> None:
        with self._cond:
            obs = self._obs.setdefault(signal, [])
            obs.append(sample)
            if len(obs) > MAX_OBSERVATIONS:
                del obs[: len(obs) - MAX_OBSERVATIONS]
            self._cond.notify_all()

    # ----- downlinks (caller's thread)

    def request(self, method: str, *args: Value, expect: Expect = "result") -> Request:
        """Queue ``down <method> <args…>`` and wait for its answer (≤ 4 s).

        Returns the request with its ``reply`` line (a ``result`` or an
        ``error``); codes are not interpreted here, so acceptance tests can
        send what a faulty module would.
        """
        self.check_link()
        words: tuple[Value, ...] = (Bare(method), *args)
        # a result starts with the siid and piid/aiid of the downlink's first item
        match = tuple(int(a) for a in args[:2] if is_int(a))
        request = Request(words, expect, match)
        encode_line("down", *words)  # refuse an oversized line before queueing it
        with self._cond:
            if self._closed:
                raise DeviceLost("driver is closed", device=self.name)
            self._queue.append(request)
        deadline = time.monotonic() + self.rpc_timeout
        while not request.done.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._abandon(request)
                raise self._timeout(request)
            request.done.wait(min(0.1, remaining))
            self.check_link()
            if self._closed:
                raise DeviceLost("driver closed while waiting", device=self.name)
        return request

    def _abandon(self, request: Request) -> None:
        with self._cond:
            for q in (self._queue, self._inflight):
                if request in q:
                    q.remove(request)

    def _timeout(self, request: Request) -> DeviceTimeout:
        if request.t_sent is None:
            why = (
                "the MCU never polled for it (no get_down yet)"
                if self.last_poll is None
                else "the MCU did not poll for it "
                f"(last get_down {time.time() - self.last_poll:.1f} s ago)"
            )
        else:
            why = "it was delivered but the MCU did not answer"
        return DeviceTimeout(
            f"no answer to {request.text!r} within {self.rpc_timeout:g} s: {why}",
            device=self.name,
            timeout=self.rpc_timeout,
        )

    def _checked(self, request: Request, what: str) -> Line:
        reply = request.reply
        assert reply is not None
        if reply.command == "error":
            code = next((a for a in reply.args if is_int(a)), None)
            raise ProtocolError(
                f"{what}: MCU answered error {reply.args!r}",
                device=self.name,
                code=code,
                meaning=meaning(int(code)) if code is not None else "no code",
            )
        return reply

    def _code_error(self, what: str, code: int) -> ProtocolError:
        return ProtocolError(
            f"{what} failed with code {code} ({meaning(code)})",
            device=self.name,
            code=code,
            meaning=meaning(code),
        )

    def _get(self, prop: str) -> Sample:
        service, spec = self.spec.property_named(prop)
        request = self.request("get_properties", service.siid, spec.piid)
        reply = self._checked(request, f"get {prop}")
        parsed = parse_get_result(self._by_ids, reply.args)
        if not parsed:
            raise ProtocolError(f"get {prop}: empty result {str(reply)!r}", device=self.name)
        _, _, code, value = parsed[0]
        if code != 0:
            raise self._code_error(f"get {prop}", code)
        assert request.t_reply is not None
        return Sample(request.t_reply, spec.normalize(value))

    def get(self, prop: str) -> Any:
        """Read property ``"service.property"`` with a real ``get_properties``."""
        return self._get(prop).value

    def _set(self, prop: str, value: Value) -> float:
        service, spec = self.spec.property_named(prop)
        request = self.request("set_properties", service.siid, spec.piid, value)
        reply = self._checked(request, f"set {prop}")
        code = reply.args[2] if len(reply.args) >= 3 and is_int(reply.args[2]) else None
        if code is None:
            raise ProtocolError(f"set {prop}: malformed result {str(reply)!r}", device=self.name)
        if code not in (0, 1):
            raise self._code_error(f"set {prop} = {value!r}", int(code))
        assert request.t_sent is not None
        return request.t_sent

    def set(self, prop: str, value: Any) -> None:
        """Write property ``"service.property"``; non-zero codes raise ``ProtocolError``."""
        self._set(prop, value)

    def _action(self, name: str, args: Mapping[str, Any]) -> tuple[float, dict[str, Value]]:
        service, action = self.spec.action_named(name)
        ins = {p.name: p for p in (service.prop(i) for i in action.in_) if p is not None}
        unknown = set(args) - set(ins)
        missing = set(ins) - set(args)
        if unknown or missing:
            raise ConfigError(
                f"action {name!r} takes {sorted(ins)}; missing {sorted(missing)}, "
                f"unknown {sorted(unknown)}"
            )
        flat: list[Value] = []
        for pname, prop in ins.items():
            flat += [prop.piid, args[pname]]
        request = self.request("action", service.siid, action.aiid, *flat)
        reply = self._checked(request, f"action {name}")
        code = reply.args[2] if len(reply.args) >= 3 and is_int(reply.args[2]) else None
        if code is None:
            raise ProtocolError(f"action {name}: malformed result {str(reply)!r}", device=self.name)
        if code not in (0, 1):
            raise self._code_error(f"action {name}", int(code))
        out: dict[str, Value] = {}
        rest = reply.args[3:]
        for piid, value in zip(rest[::2], rest[1::2], strict=False):
            out_prop = service.prop(int(piid)) if is_int(piid) else None
            if out_prop is not None:
                out[out_prop.name] = out_prop.normalize(value)
        assert request.t_sent is not None
        return request.t_sent, out

    def action(self, name: str, **args: Any) -> dict[str, Value]:
        """Call action ``"service.action"``; returns its out-properties by name."""
        return self._action(name, args)[1]

    def net_change(self, state: str) -> None:
        """Tell the MCU the network state (``cloud``, ``offline``…); no answer expected."""
        self.request("MIIO_net_change", Bare(state), expect="none")

    def request_mcu_version(self) -> str:
        """Ask the MCU to re-send ``mcu_version``; returns what it sent."""
        request = self.request("MIIO_mcu_version_req", expect="mcu_version")
        assert request.reply is not None
        return str(request.reply.args[0]) if request.reply.args else ""

    # ----- the Driver protocol

    def identity(self) -> dict[str, str]:
        """Model and MCU firmware version, as the MCU announced them at boot."""
        deadline = time.monotonic() + self.rpc_timeout
        with self._cond:
            self._cond.wait_for(
                lambda: self._model is not None and self._mcu_version is not None,
                timeout=self.rpc_timeout,
            )
            model, version = self._model, self._mcu_version
        if model is None:
            raise DeviceTimeout(
                f"no 'model' line within {self.rpc_timeout:g} s; an MCU announces its model "
                "only at boot — power-cycle the appliance with the bench attached",
                device=self.name,
            )
        if version is None and deadline > time.monotonic():
            version = self.request_mcu_version()
        return {"model": model, "firmware": version or ""}

    def _signal(self, signal: str) -> None:
        self.definition.signal(signal, self.name)

    def samples(self, signal: str, since: float) -> list[Sample]:
        self._signal(signal)
        with self._cond:
            obs = list(self._obs.get(signal, ()))
        i = bisect.bisect_left([s.t for s in obs], since)
        return obs[max(0, i - 1) :]

    def read(self, signal: str) -> Sample:
        self._signal(signal)
        if signal in self._events.values():
            with self._cond:
                obs = self._obs.get(signal)
                return obs[-1] if obs else Sample(time.time(), False)
        _, prop = self.spec.property_named(signal)
        if prop.readable:
            return self._get(signal)
        with self._cond:
            obs = self._obs.get(signal)
            if obs:
                return obs[-1]
        raise ProtocolError(f"{signal} is not readable and was never reported", device=self.name)

    def stimulate(self, stimulus: str, values: Mapping[str, Any]) -> float:
        info = self.definition.stimulus(stimulus, self.name)
        if info.kind == "property":
            if set(values) != {"value"}:
                raise ConfigError(
                    f"stimulus {stimulus!r} takes one field 'value', got {sorted(values)}"
                )
            return self._set(stimulus, values["value"])
        if info.kind == "action":
            return self._action(stimulus, values)[0]
        raise ConfigError(
            f"stimulus {stimulus!r} of {self.name} is a bench input, applied by the bench "
            "(Emulator.set_input or an actuator), not the device"
        )

    def write_evidence(self, directory: Path) -> list[Path]:
        return [self.transport.capture.write_jsonl(directory / f"{self.name}.serial.jsonl")]

    def check_link(self) -> None:
        if self.transport.lost is not None:
            raise self.transport.lost
        if not self.transport.is_open:
            raise DeviceLost("serial transport is closed", device=self.name)

    def link_doubt_until(self) -> None:
        """Never in doubt: a closed port or session is seen at once by ``check_link``,
        and a device that stops answering fails its request with a timeout."""
        return None

    def close(self) -> None:
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._queue.clear()
            self._inflight.clear()
            self._cond.notify_all()
        if self.uplink is not None:
            self.uplink.close()
        if self.transport.on_line == self._on_line:
            self.transport.on_line = None
