"""CAN fuzzing: frames derived from the DBC, sent as the tester node on the bench's bus.

For every message the device receives: signals in range, at their DBC
limits and out of range (raw values the signal's bits hold but its range
forbids), frames of the wrong length, E2E-protected frames with a repeated
or stale counter or a bad checksum (``hil.cannode.e2e``: the profile the
bench's driver declares); frames on the device's own ids and on ids the DBC
does not know; and, when the device speaks UDS, requests of the wrong length
and for unknown services. The probe: a fresh frame of the device's fastest
cyclic message, and a UDS TesterPresent answer where it has diagnostics.
The oracle adds the protocol's NRCs (0x13 for a wrong length, 0x11 for an
unknown service) and the safety envelope: invalid input never unlocks a door
or starts closing the main contactors.
"""

from __future__ import annotations

import time
from typing import Any

import can
from hypothesis import strategies as st

from hil.cannode.e2e import COUNTER_MODULO, E2EProfile
from hil.errors import DeviceTimeout
from hil.explore.fuzz.can_frames import ENVELOPE, Frame, Guard, can_examples, encode_raw
from hil.explore.fuzz.engine import Example, FuzzTarget, Outcome
from hil.explore.fuzz.session import DeviceUnderFuzz
from hil.transports.capture import RX

OBSERVE_S = 1.2  # listening this long shows every message of a cycle up to 1 s
UDS_TRIES = 3


class CanFuzzTarget(FuzzTarget):
    """A CAN node on the bench's bus, its DBC and E2E profile from the bench's driver."""

    protocol = "can"

    def __init__(self, dut: DeviceUnderFuzz, *, probe_timeout: float = 2.0) -> None:
        self.dut = dut
        self.device = dut.name
        self.probe_timeout = probe_timeout
        driver = dut.driver
        self.db = driver.db
        self.e2e: E2EProfile | None = driver.e2e
        self.uds = bool(getattr(driver, "has_uds", False))
        seen = self._observe(OBSERVE_S)
        messages = [m for m in self.db.messages if not m.is_container]
        self.own = [m for m in messages if m.frame_id in seen]
        self.receives = [m for m in messages if m.frame_id not in seen]
        cyclic = [m for m in self.own if m.cycle_time]
        if not cyclic:
            raise DeviceTimeout(
                f"no cyclic message of the DBC seen within {OBSERVE_S:g} s: nothing to probe",
                device=self.device,
            )
        self.heartbeat = min(cyclic, key=lambda m: m.cycle_time)
        self.guards = self._guards()
        self._counters: dict[str, int] = {}
        self._sent: Frame | None = None
        self._t_sent = 0.0
        self._before: dict[tuple[str, str], int | None] = {}
        self._uds_answer: str = ""
        self._uds_ok: bool | None = None
        self._prime()

    def _guards(self) -> list[tuple[Guard, Any, str]]:
        """(guard, message, signal) for each envelope signal this DBC has."""
        names = {m.name for m in self.db.messages}
        out = []
        for guard in ENVELOPE:
            if guard.message in names:
                message = self.db.get_message_by_name(guard.message)
                out += [
                    (guard, message, s.name)
                    for s in message.signals
                    if guard.signal.fullmatch(s.name)
                ]
        return out

    def _observe(self, seconds: float) -> set[int]:
        start = time.time()
        time.sleep(seconds)
        return {
            r.data.arbitration_id
            for r in self.dut.transport.capture.records()
            if r.direction == RX and r.t >= start
        }

    def _prime(self) -> None:
        """Give each protected message's receiver a reference counter, with all signals 0
        (no request); a stale counter is judged against it."""
        self._counters.clear()
        if self.e2e is None:
            return
        for m in self.receives:
            if m.name in self.e2e:
                zeros = {s.name: 0 for s in m.signals}
                self._put(
                    Frame(m.frame_id, encode_raw(m, zeros), m.is_extended_frame, m.name, "next")
                )

    def examples(self) -> dict[str, st.SearchStrategy[Example]]:
        return can_examples(self.db, self.receives, self.own, self.e2e, self.uds)

    def shown(self, example: Example) -> str:
        return self._sent.text() if self._sent is not None else example.wire

    # -- sending

    def _complete(self, frame: Frame) -> Frame:
        """Fill counter and checksum of an E2E-protected frame as ``frame.counter`` says."""
        spec = self.e2e.get(frame.message) if self.e2e and frame.message else None
        if spec is None or frame.counter == "none":
            return frame
        name = spec.message
        message = self.db.get_message_by_name(name)
        last = self._counters.get(name)
        if last is None:
            counter = 0
        elif frame.counter == "repeat":
            counter = last
        elif frame.counter.startswith("stale"):
            counter = (last - int(frame.counter[5:])) % COUNTER_MODULO
        else:  # the next counter; a bad checksum is the only fault of its frame
            counter = (last + 1) % COUNTER_MODULO
        raw = dict(message.decode_simple(frame.data, False, False))
        raw[spec.counter] = counter
        data = bytearray(encode_raw(message, {k: int(v) for k, v in raw.items()}))
        data[spec.checksum_byte] = spec.checksum_of(data)
        if frame.counter.startswith("badsum"):
            data[spec.checksum_byte] ^= int(frame.counter[6:])
        elif frame.counter == "next" or last is None:
            self._counters[name] = counter  # the receiver accepts it: its new reference
        return Frame(frame.frame_id, bytes(data), frame.extended, frame.message, frame.counter)

    def _put(self, frame: Frame) -> None:
        frame = self._complete(frame)
        self._sent = frame
        msg = can.Message(
            arbitration_id=frame.frame_id, is_extended_id=frame.extended, data=frame.data
        )
        self._t_sent = self.dut.transport.send(msg).timestamp

    def _arm(self) -> None:
        """Put each guarded signal where a violation can show (see ``Guard.arm``)."""
        names = {m.name: m for m in self.receives}
        for guard, message, signal in self.guards:
            if guard.arm is None or guard.arm[0] not in names:
                continue
            if self._guarded().get((guard.message, signal)) in guard.before:
                continue
            request = names[guard.arm[0]]
            raw = {s.name: int(guard.arm[1].get(s.name, 0)) for s in request.signals}
            self._put(
                Frame(request.frame_id, encode_raw(request, raw), False, request.name, "next")
            )
            self._fresh(message.frame_id, self._t_sent, 3 * (message.cycle_time or 100) / 1000)

    def send(self, example: Example) -> None:
        frame = example.data
        assert isinstance(frame, Frame)
        if example.invalid and frame.uds is None:
            self._arm()
        self._before = self._guarded()
        self._uds_answer, self._uds_ok = "", None
        if frame.uds is None:
            self._put(frame)
            return
        self._sent = frame
        self._t_sent = time.time()
        # a request the ECU refuses changes nothing, so one a loaded bench saw go
        # unanswered within P2 is sent again (the client drops late answers first)
        for _ in range(UDS_TRIES):
            try:
                response = self.dut.driver.uds.raw(frame.uds)
                self._uds_answer = f"positive response {response.hex().upper()}"
                self._uds_ok = False
                return
            except Exception as err:  # an NRC is a ProtocolError with .nrc; a timeout has none
                nrc = getattr(err, "fields", {}).get("nrc")
                self._uds_answer = f"NRC 0x{nrc:02X}" if nrc is not None else f"no answer ({err})"
                self._uds_ok = nrc == frame.expect_nrc
                if nrc is not None:
                    return

    # -- oracle

    def _fresh(self, frame_id: int, since: float, timeout: float) -> Any:
        capture = self.dut.transport.capture
        deadline = time.monotonic() + timeout
        while True:
            seq = capture.seq
            for rec in reversed(capture.records(frame_id)):
                if rec.t <= since:
                    break
                if rec.direction == RX:
                    return rec.data
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            capture.wait_beyond(seq, min(remaining, 0.05))

    def probe(self) -> str | None:
        timeout = max(self.probe_timeout, 5 * self.heartbeat.cycle_time / 1000)
        if self._fresh(self.heartbeat.frame_id, self._t_sent, timeout) is None:
            return f"no {self.heartbeat.name} frame within {timeout:g} s"
        if self.uds:
            # P2 is 50 ms on the ECU's side but a loaded bench can miss one: alive is
            # answering one of a few tries, dead is answering none
            why = ""
            for _ in range(UDS_TRIES):
                try:
                    self.dut.driver.uds.tester_present()
                    return None
                except Exception as err:  # no answer, or an NRC to a request every ECU serves
                    why = str(err)
            return f"UDS TesterPresent failed {UDS_TRIES} times: {why}"
        return None

    def _guarded(self, since: float | None = None) -> dict[tuple[str, str], int | None]:
        out: dict[tuple[str, str], int | None] = {}
        for guard, message, signal in self.guards:
            if since is None:
                rec = next(
                    (
                        r
                        for r in reversed(self.dut.transport.capture.records(message.frame_id))
                        if r.direction == RX
                    ),
                    None,
                )
                data = rec.data if rec is not None else None
            else:
                data = self._fresh(message.frame_id, since, 3 * (message.cycle_time or 100) / 1000)
            try:
                out[(guard.message, signal)] = (
                    int(message.decode_simple(data.data, False, False)[signal])
                    if data is not None
                    else None
                )
            except Exception:  # a frame the DBC cannot decode says nothing about the signal
                out[(guard.message, signal)] = None
        return out

    def judge(self, example: Example) -> Outcome:
        if self._uds_ok is not None:
            frame = example.data
            assert isinstance(frame, Frame)
            return Outcome(
                f"{self._uds_answer} (expected NRC 0x{frame.expect_nrc:02X})", error_ok=self._uds_ok
            )
        if not example.invalid:
            return Outcome("")
        after = self._guarded(since=self._t_sent)
        for guard, _message, signal in self.guards:
            old, new = self._before.get((guard.message, signal)), after.get((guard.message, signal))
            if old in guard.before and new in guard.after:
                return Outcome("", safety=f"{guard.message}.{signal} {old} → {new}: {guard.what}")
        return Outcome("")

    def restart(self) -> None:
        self.dut.restart()
        self._prime()
