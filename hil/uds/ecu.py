"""The ECU side of UDS as a pure state machine: request bytes in, replies out.

No I/O here (``hil.uds.server`` carries it over ISO-TP), so the rules read
in one place: sessions with the S3 fallback, security access with its
attempt counter and lockout, the DTC store, DIDs and routines a device
registers. ``udsoncan`` parses requests (``Request.from_payload``) and
builds replies (``Response.get_payload``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from udsoncan.Request import Request
from udsoncan.Response import Response

from hil.uds import protocol as p

Reply = tuple[float, bytes]  # (seconds to wait before sending, payload)


class Nrc(Exception):
    """Raised by a service (or a device's DID/routine hook) to answer negatively."""

    def __init__(self, code: int) -> None:
        super().__init__(f"NRC 0x{code:02X} {p.nrc_name(code)}")
        self.code = code


@dataclass(frozen=True)
class Did:
    """A readable data identifier; ``read`` returns its current bytes."""

    did: int
    read: Callable[[], bytes]
    sessions: frozenset[int] = frozenset({p.DEFAULT, p.EXTENDED})
    security: bool = False  # needs an unlocked security level


@dataclass(frozen=True)
class Routine:
    """A routine for 0x31: each hook gets the option record, returns the status record."""

    rid: int
    start: Callable[[bytes], bytes]
    stop: Callable[[bytes], bytes] | None = None
    results: Callable[[bytes], bytes] | None = None
    session: int = p.EXTENDED
    security: bool = False
    duration_s: float = 0.0  # > 0: answer 0x78 first, the result after this long


@dataclass
class EcuOptions:
    s3_s: float = p.S3_S
    lockout_s: float = p.LOCKOUT_S
    max_attempts: int = p.MAX_ATTEMPTS
    secret: int = p.DEFAULT_SECRET
    levels: frozenset[int] = frozenset({0x01})
    lockout: bool = True  # False: the no_security_lockout defect
    s3: bool = True  # False: the s3_never_expires defect
    # sid → True if the vehicle allows it now (e.g. no ECU reset while driving)
    conditions: Callable[[int], bool] = field(default=lambda sid: True)
    on_reset: Callable[[int], None] = field(default=lambda kind: None)


class UdsEcu:
    """Sessions, security, DTCs, DIDs and routines of one ECU; thread-safe."""

    def __init__(
        self,
        options: EcuOptions | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        seed_source: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.options = options or EcuOptions()
        self.dtcs = p.DtcStore()
        self._clock = clock
        self._seed_source = seed_source
        self._lock = threading.RLock()
        self._dids: dict[int, Did] = {}
        self._routines: dict[int, Routine] = {}
        self._started: set[int] = set()
        self.session = p.DEFAULT
        self.unlocked: int | None = None
        self._seed: tuple[int, bytes] | None = None
        self.failed_attempts = 0
        self._locked_until = 0.0
        self._last_request = clock()
        self.fallbacks = 0  # S3 expiries seen
        self.requests = 0
        self.add_did(Did(p.DID_ACTIVE_SESSION, lambda: bytes([self.session])))

    # -- registration -------------------------------------------------------

    def add_did(self, did: Did) -> None:
        with self._lock:
            self._dids[did.did] = did

    def add_routine(self, routine: Routine) -> None:
        with self._lock:
            self._routines[routine.rid] = routine

    # -- time ---------------------------------------------------------------

    def expire(self) -> None:
        """Apply S3: a non-default session without requests for S3 ends."""
        with self._lock:
            idle = self._clock() - self._last_request
            if self.options.s3 and self.session != p.DEFAULT and idle > self.options.s3_s:
                self._enter(p.DEFAULT)
                self.fallbacks += 1

    @property
    def lockout_remaining(self) -> float:
        with self._lock:
            return max(0.0, self._locked_until - self._clock())

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {
                "session": p.SESSION_NAMES.get(self.session, str(self.session)),
                "unlocked_level": self.unlocked,
                "failed_attempts": self.failed_attempts,
                "lockout_remaining_s": self.lockout_remaining,
                "s3_fallbacks": self.fallbacks,
                "requests": self.requests,
                "dtcs": self.dtcs.matching(0xFF),
            }

    # -- requests -----------------------------------------------------------

    def handle(self, payload: bytes) -> list[Reply]:
        """The replies to one request: none (suppressed), one, or 0x78 then the result."""
        if not payload:
            return []
        with self._lock:
            self.expire()  # a request after S3 meets the default session
            self._last_request = self._clock()
            self.requests += 1
            req = Request.from_payload(payload)
            service = req.service
            handler = self._handlers.get(payload[0])
            if service is None or handler is None:
                return [(0.0, bytes([0x7F, payload[0], p.SERVICE_NOT_SUPPORTED]))]
            try:
                delay, data = handler(self, payload, req)
            except Nrc as nrc:
                return [(0.0, Response(service, code=nrc.code).get_payload())]
            positive = Response(service, code=Response.Code.PositiveResponse, data=data)
            if delay > 0:
                pending = Response(service, code=p.RESPONSE_PENDING).get_payload()
                return [(0.0, pending), (delay, positive.get_payload())]
            if req.suppress_positive_response:
                return []
            return [(0.0, positive.get_payload())]

    def _enter(self, session: int) -> None:
        if not (session == p.DEFAULT and self.session == p.DEFAULT):
            self.unlocked, self._seed = None, None  # any real transition relocks
        self.session = session
        self._started.clear()

    # -- services (each returns (delay, response data) or raises Nrc) ---------

    def _session_control(self, payload: bytes, req: Request) -> tuple[float, bytes]:
        if len(payload) != 2:
            raise Nrc(p.BAD_LENGTH)
        session = req.subfunction or 0
        if session not in p.SESSION_NAMES:
            raise Nrc(p.SUBFUNCTION_NOT_SUPPORTED)
        self._enter(session)
        p2_ms, p2_star_10ms = round(p.P2_S * 1000), round(p.P2_STAR_S * 100)
        return 0.0, bytes([session]) + p2_ms.to_bytes(2, "big") + p2_star_10ms.to_bytes(2, "big")

    def _ecu_reset(self, payload: bytes, req: Request) -> tuple[float, bytes]:
        if len(payload) != 2:
            raise Nrc(p.BAD_LENGTH)
        if req.subfunction not in (1, 2, 3):  # hard, key off/on, soft
            raise Nrc(p.SUBFUNCTION_NOT_SUPPORTED)
        if not self.options.conditions(0x11):
            raise Nrc(p.CONDITIONS_NOT_CORRECT)
        self._enter(p.DEFAULT)
        self.options.on_reset(req.subfunction)
        return 0.0, bytes([req.subfunction])

    def _clear_dtcs(self, payload: bytes, req: Request) -> tuple[float, bytes]:
        if len(payload) != 4:
            raise Nrc(p.BAD_LENGTH)
        group = int.from_bytes(payload[1:4], "big")
        if not self.dtcs.known(group):
            raise Nrc(p.OUT_OF_RANGE)
        if not self.options.conditions(0x14):
            raise Nrc(p.CONDITIONS_NOT_CORRECT)
        self.dtcs.clear(group)
        return 0.0, b""

    def _read_dtcs(self, payload: bytes, req: Request) -> tuple[float, bytes]:
        if len(payload) < 2:
            raise Nrc(p.BAD_LENGTH)
        if req.subfunction != 0x02:  # only reportDTCByStatusMask
            raise Nrc(p.SUBFUNCTION_NOT_SUPPORTED)
        if len(payload) != 3:
            raise Nrc(p.BAD_LENGTH)
        out = bytearray([0x02, p.STATUS_AVAILABILITY])
        for code, status in self.dtcs.matching(payload[2]):
            out += code.to_bytes(3, "big") + bytes([status])
        return 0.0, bytes(out)

    def _read_did(self, payload: bytes, req: Request) -> tuple[float, bytes]:
        if len(payload) < 3 or (len(payload) - 1) % 2:
            raise Nrc(p.BAD_LENGTH)
        out = bytearray()
        for i in range(1, len(payload), 2):
            did = self._dids.get(int.from_bytes(payload[i : i + 2], "big"))
            if did is None or self.session not in did.sessions:
                continue  # ISO 14229: unsupported DIDs are left out; 0x31 if none is left
            if did.security and self.unlocked is None:
                raise Nrc(p.ACCESS_DENIED)
            out += payload[i : i + 2] + did.read()
        if not out:
            raise Nrc(p.OUT_OF_RANGE)
        return 0.0, bytes(out)

    def _security_access(self, payload: bytes, req: Request) -> tuple[float, bytes]:
        if len(payload) < 2:
            raise Nrc(p.BAD_LENGTH)
        if self.session != p.EXTENDED:
            raise Nrc(p.NOT_IN_SESSION)
        sub = req.subfunction or 0
        level = sub if sub % 2 else sub - 1
        if level not in self.options.levels:
            raise Nrc(p.SUBFUNCTION_NOT_SUPPORTED)
        now = self._clock()
        if sub % 2:  # request seed
            if self.options.lockout and now < self._locked_until:
                raise Nrc(p.DELAY_NOT_EXPIRED)
            if self.failed_attempts >= self.options.max_attempts:
                self.failed_attempts = 0  # the delay has expired: a fresh set of attempts
            if self.unlocked == level:
                return 0.0, bytes([sub]) + bytes(p.SEED_LEN)  # already unlocked
            seed = self._seed_source(p.SEED_LEN)
            if not any(seed):
                seed = b"\x00\x00\x00\x01"
            self._seed = (level, seed)
            return 0.0, bytes([sub]) + seed
        if len(payload) != 2 + p.KEY_LEN:
            raise Nrc(p.BAD_LENGTH)
        pending, self._seed = self._seed, None  # a seed answers one key, right or wrong
        if pending is None or pending[0] != level:
            raise Nrc(p.SEQUENCE_ERROR)
        if payload[2:] == p.compute_key(pending[1], level, self.options.secret):
            self.unlocked, self.failed_attempts = level, 0
            return 0.0, bytes([sub])
        self.failed_attempts += 1
        if self.options.lockout and self.failed_attempts >= self.options.max_attempts:
            self._locked_until = now + self.options.lockout_s
            raise Nrc(p.ATTEMPTS_EXCEEDED)
        raise Nrc(p.INVALID_KEY)

    def _routine_control(self, payload: bytes, req: Request) -> tuple[float, bytes]:
        if len(payload) < 4:
            raise Nrc(p.BAD_LENGTH)
        control = req.subfunction
        if control not in (1, 2, 3):
            raise Nrc(p.SUBFUNCTION_NOT_SUPPORTED)
        rid = int.from_bytes(payload[2:4], "big")
        routine = self._routines.get(rid)
        if routine is None or (routine.session == p.EXTENDED and self.session != p.EXTENDED):
            raise Nrc(p.OUT_OF_RANGE)
        if routine.security and self.unlocked is None:
            raise Nrc(p.ACCESS_DENIED)
        hook = {1: routine.start, 2: routine.stop, 3: routine.results}[control]
        if hook is None:
            raise Nrc(p.SUBFUNCTION_NOT_SUPPORTED)
        if control != 1 and rid not in self._started:
            raise Nrc(p.SEQUENCE_ERROR)
        if control == 1 and not self.options.conditions(0x31):
            raise Nrc(p.CONDITIONS_NOT_CORRECT)
        status = hook(payload[4:])
        if control == 1:
            self._started.add(rid)
        return (routine.duration_s if control == 1 else 0.0), bytes([control]) + payload[
            2:4
        ] + status

    def _tester_present(self, payload: bytes, req: Request) -> tuple[float, bytes]:
        if len(payload) != 2:
            raise Nrc(p.BAD_LENGTH)
        if req.subfunction != 0:
            raise Nrc(p.SUBFUNCTION_NOT_SUPPORTED)
        return 0.0, b"\x00"

    _handlers: dict[int, Callable[[UdsEcu, bytes, Request], tuple[float, bytes]]] = {
        0x10: _session_control,
        0x11: _ecu_reset,
        0x14: _clear_dtcs,
        0x19: _read_dtcs,
        0x22: _read_did,
        0x27: _security_access,
        0x31: _routine_control,
        0x3E: _tester_present,
    }
