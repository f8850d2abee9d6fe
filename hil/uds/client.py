"""The bench side of UDS: a udsoncan ``Client`` over the bench's ``CanTransport``.

The transport's reader thread owns ``bus.recv`` and captures every frame; a
capture listener hands the diagnostic response frames to an ISO-TP link
(``hil.uds.link``) and requests go out through ``transport.send``, so
nothing is stolen from the capture and every diagnostic frame is in the
``.asc`` evidence too. Each request/response is also kept as an
``Exchange`` (times are capture timestamps) and written as
``<name>.uds.jsonl``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import can
from udsoncan.BaseService import BaseService
from udsoncan.client import Client
from udsoncan.common.DidCodec import DidCodec
from udsoncan.configs import default_client_config
from udsoncan.connections import BaseConnection
from udsoncan.exceptions import (
    InvalidResponseException,
    NegativeResponseException,
    TimeoutException,
    UnexpectedResponseException,
)

from hil.errors import DeviceTimeout, ProtocolError
from hil.transports.can import CanTransport
from hil.transports.capture import RX, Record
from hil.uds import protocol as p
from hil.uds.link import IsoTpLink

T = TypeVar("T")
KeyFn = Callable[[bytes, int], bytes]


# udsoncan logs every negative response at ERROR; here an NRC is an observation
QUIET_LOGGER = "hil.uds.udsoncan"
# udsoncan names its logger "UdsClient[<logger_name>]"
logging.getLogger(f"UdsClient[{QUIET_LOGGER}]").setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class Exchange:
    """One request and its final response (``None``: suppressed or timed out)."""

    t: float  # capture time of the response's last frame (or when waiting gave up)
    t_request: float  # capture time of the request's first frame
    service: str
    sid: int
    request: str  # hex
    response: str | None  # hex
    nrc: int | None  # 0 positive, else the NRC; None: no response
    nrc_name: str
    pending: int = 0  # 0x78 "response pending" answers before the final one
    error: str | None = None

    def response_bytes(self) -> bytes:
        return bytes.fromhex(self.response) if self.response else b""


class _RawCodec(DidCodec):
    """DID data as raw bytes, reading the rest of the response (one DID per request)."""

    def decode(self, did_payload: bytes) -> Any:
        return bytes(did_payload)

    def __len__(self) -> int:
        raise DidCodec.ReadAllRemainingData


class CaptureConnection(BaseConnection):
    """A udsoncan connection on a ``CanTransport``'s capture (no ``bus.recv``)."""

    def __init__(self, transport: CanTransport, *, request_id: int, response_id: int) -> None:
        super().__init__(transport.name)
        self.transport = transport
        self.link = IsoTpLink(
            f"{transport.name}-tester", txid=request_id, rxid=response_id, send=self._tx
        )
        self.response_id = response_id
        self.last_rx_t = 0.0
        self.first_tx_t: float | None = None
        self.pending = 0  # 0x78 answers to the current request
        self._want_tx_t = False
        self._opened = False

    def _tx(self, msg: can.Message) -> None:
        sent = self.transport.send(msg)
        if self._want_tx_t:
            self._want_tx_t, self.first_tx_t = False, float(sent.timestamp)

    def _on_record(self, rec: Record[Any]) -> None:
        # on the transport's reader thread: one compare, then a queue put
        if rec.direction == RX and rec.data.arbitration_id == self.response_id:
            self.last_rx_t = rec.t
            self.link.feed(rec.data)

    def open(self) -> CaptureConnection:
        if not self._opened:
            self.transport.capture.add_listener(self._on_record)
            self.link.start()
            self._opened = True
        return self

    def close(self) -> None:
        if self._opened:
            self._opened = False
            with contextlib.suppress(ValueError):
                self.transport.capture.remove_listener(self._on_record)
            self.link.stop()

    def is_open(self) -> bool:
        return self._opened

    def specific_send(self, payload: bytes, timeout: float | None = None) -> None:
        self.first_tx_t, self._want_tx_t, self.pending = None, True, 0
        self.link.send(payload)

    def specific_wait_frame(self, timeout: float | None = None) -> bytes | None:
        data = self.link.recv(timeout if timeout is not None else p.P2_STAR_S)
        if data is None:
            raise TimeoutException(f"no ISO-TP response within {timeout} s")  # type: ignore[no-untyped-call]
        if len(data) >= 3 and data[0] == 0x7F and data[2] == p.RESPONSE_PENDING:
            self.pending += 1
        return data

    def empty_rxqueue(self) -> None:
        self.link.layer.stop_receiving()
        self.link.layer.clear_rx_queue()


class UdsClient:
    """UDS requests that return plain data; NRCs raise ``ProtocolError`` (``.nrc``)."""

    def __init__(
        self,
        name: str,
        transport: CanTransport,
        *,
        request_id: int = p.REQUEST_ID,
        response_id: int = p.RESPONSE_ID,
        p2_s: float = p.P2_S + p.P2_CLIENT_MARGIN_S,
        p2_star_s: float = p.P2_STAR_S,
        key_fn: KeyFn | None = None,
    ) -> None:
        self.name = name
        self.key_fn: KeyFn = key_fn or (lambda seed, level: p.compute_key(seed, level))
        self.exchanges: list[Exchange] = []
        self.last_seed: dict[int, bytes] = {}  # level → the last seed the ECU gave
        self._lock = threading.Lock()  # guards exchanges
        self._busy = threading.RLock()  # one request at a time: udsoncan is not thread-safe
        self.conn = CaptureConnection(transport, request_id=request_id, response_id=response_id)
        config: Any = dict(default_client_config)
        config.update(
            p2_timeout=p2_s,
            p2_star_timeout=p2_star_s,
            # bounded even if a server answers 0x78 forever
            request_timeout=2 * p2_star_s + 1.0,
            # the server's P2 (0x10's answer) has no ΔP2: keep the client's own
            use_server_timing=False,
            data_identifiers={"default": _RawCodec()},
            # a negative response is an observation (uds.last_nrc), not an error to print:
            # udsoncan logs each one at ERROR level to its own logger, which we keep quiet
            logger_name=QUIET_LOGGER,
        )
        self.p2_s, self.p2_star_s = p2_s, p2_star_s
        self.client = Client(self.conn, config)
        self.client.open()

    def close(self) -> None:
        self.client.close()

    # -- one exchange ---------------------------------------------------------

    def _call(self, sid: int, fn: Callable[[], T], request: bytes) -> T:
        with self._busy:
            return self._exchange(sid, fn, request)

    def _exchange(self, sid: int, fn: Callable[[], T], request: bytes) -> T:
        service = _service_name(sid)
        t0 = time.time()
        try:
            result = fn()
        except NegativeResponseException as err:
            code = int(err.response.code or 0)
            self._record(sid, service, request, err.response.original_payload, code, t0)
            raise ProtocolError(
                f"{service} (0x{sid:02X}) refused: NRC 0x{code:02X} {p.nrc_name(code)}",
                device=self.name,
                nrc=code,
                nrc_name=p.nrc_name(code),
                service=service,
            ) from err
        except TimeoutException as err:
            self._record(sid, service, request, None, None, t0, error="timeout")
            raise DeviceTimeout(
                f"{service} (0x{sid:02X}): no response ({err})", device=self.name, service=service
            ) from err
        except (InvalidResponseException, UnexpectedResponseException) as err:
            raw = err.response.original_payload
            self._record(sid, service, request, raw, None, t0, error=str(err))
            raise ProtocolError(
                f"{service} (0x{sid:02X}): bad response: {err}", device=self.name, service=service
            ) from err
        last = self.client.last_response
        spr = getattr(self.client.suppress_positive_response, "enabled", False) or (
            len(request) > 1 and request[1] & 0x80 and sid in (0x10, 0x11, 0x27, 0x31, 0x3E)
        )
        raw = None if spr or last is None else last.original_payload
        self._record(sid, service, request, raw, 0 if raw is not None else None, t0)
        return result

    def _record(
        self,
        sid: int,
        service: str,
        request: bytes,
        response: bytes | None,
        nrc: int | None,
        t0: float,
        *,
        error: str | None = None,
    ) -> None:
        conn = self.conn
        t_req = conn.first_tx_t if conn.first_tx_t is not None else t0
        t = conn.last_rx_t if response is not None and conn.last_rx_t >= t_req else time.time()
        ex = Exchange(
            t=t,
            t_request=t_req,
            service=service,
            sid=sid,
            request=request.hex(),
            response=None if response is None else bytes(response).hex(),
            nrc=nrc,
            nrc_name="" if not nrc else p.nrc_name(nrc),
            pending=conn.pending,
            error=error,
        )
        with self._lock:
            self.exchanges.append(ex)

    def history(self, since: float = float("-inf")) -> list[Exchange]:
        with self._lock:
            return [e for e in self.exchanges if e.t >= since]

    def write_jsonl(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as fh:
            for ex in self.history():
                fh.write(json.dumps(asdict(ex)) + "\n")
        return path

    # -- services -------------------------------------------------------------

    def session(self, session: int) -> int:
        """0x10: enter ``session`` (1 default, 3 extended); returns the echo."""
        r = self._call(0x10, lambda: self.client.change_session(session), bytes([0x10, session]))
        return int(r.service_data.session_echo) if r is not None else session

    def reset(self, kind: int = 1) -> int:
        """0x11: ECU reset (1 hard, 2 key off/on, 3 soft)."""
        r = self._call(0x11, lambda: self.client.ecu_reset(kind), bytes([0x11, kind]))
        return int(r.service_data.reset_type_echo) if r is not None else kind

    def read_did(self, did: int) -> bytes | str:
        """0x22: one DID; identification DIDs (F189, F18C, F190…) come back as text."""
        req = bytes([0x22]) + did.to_bytes(2, "big")
        r = self._call(0x22, lambda: self.client.read_data_by_identifier(did), req)
        data = bytes(r.service_data.values[did]) if r is not None else b""
        return data.decode("ascii", errors="replace") if did in p.ASCII_DIDS else data

    def read_dtcs(self, mask: int = 0xFF) -> list[tuple[int, int]]:
        """0x19 02: ``(code, status)`` of the DTCs matching ``mask``."""
        req = bytes([0x19, 0x02, mask])
        r = self._call(0x19, lambda: self.client.get_dtc_by_status_mask(mask), req)
        dtcs = r.service_data.dtcs if r is not None else []
        return [(int(d.id), int(d.status.get_byte_as_int())) for d in dtcs]

    def clear_dtcs(self, group: int = 0xFFFFFF) -> None:
        """0x14: clear all DTCs (``0xFFFFFF``) or one group."""
        req = bytes([0x14]) + group.to_bytes(3, "big")
        self._call(0x14, lambda: self.client.clear_dtc(group), req)

    def request_seed(self, level: int = 1) -> bytes:
        """0x27 odd: the seed for ``level`` (all zeros: already unlocked)."""
        r = self._call(0x27, lambda: self.client.request_seed(level), bytes([0x27, level]))
        seed = bytes(r.service_data.seed) if r is not None else b""
        self.last_seed[level] = seed
        return seed

    def send_key(self, level: int, key: bytes) -> None:
        """0x27 even: the key for ``level`` (the odd request-seed level)."""
        req = bytes([0x27, level + 1]) + key
        self._call(0x27, lambda: self.client.send_key(level + 1, key), req)

    def security_access(self, level: int = 1, key: bytes | KeyFn | None = None) -> None:
        """Seed, then the key: ``key`` bytes, ``key(seed, level)``, or ``self.key_fn``."""
        seed = self.request_seed(level)
        if not any(seed):
            return  # already unlocked
        if key is None:
            key = self.key_fn
        self.send_key(level, key(seed, level) if callable(key) else key)

    def routine(self, control: int, rid: int, data: bytes = b"") -> bytes:
        """0x31: start (1) / stop (2) / results (3) of routine ``rid``; the status record."""
        req = bytes([0x31, control]) + rid.to_bytes(2, "big") + data
        r = self._call(0x31, lambda: self.client.routine_control(rid, control, data or None), req)
        return bytes(r.service_data.routine_status_record or b"") if r is not None else b""

    def tester_present(self, *, suppress: bool = False) -> None:
        """0x3E: keep the session alive; ``suppress`` sets the suppress-positive bit."""
        if suppress:
            with self.client.suppress_positive_response:
                self._call(0x3E, self.client.tester_present, bytes([0x3E, 0x80]))
        else:
            self._call(0x3E, self.client.tester_present, bytes([0x3E, 0x00]))

    def raw(self, payload: bytes) -> bytes:
        """Send any request as is (malformed or unknown ones too); the positive response.

        Bypasses udsoncan's request building and response checks, keeps P2/P2*.
        """
        with self._busy:
            return self._raw(payload)

    def _raw(self, payload: bytes) -> bytes:
        sid = payload[0]
        service = _service_name(sid)
        t0 = time.time()
        self.conn.empty_rxqueue()
        self.conn.send(payload)
        timeout = self.p2_s
        while True:
            try:
                response = self.conn.wait_frame(timeout=timeout, exception=True)
            except TimeoutException as err:
                self._record(sid, service, payload, None, None, t0, error="timeout")
                raise DeviceTimeout(
                    f"{service} (0x{sid:02X}): no response within {timeout:g} s",
                    device=self.name,
                    service=service,
                ) from err
            assert response is not None
            if len(response) >= 3 and response[0] == 0x7F and response[2] == p.RESPONSE_PENDING:
                timeout = self.p2_star_s
                continue
            break
        if len(response) >= 3 and response[0] == 0x7F:
            code = response[2]
            self._record(sid, service, payload, response, code, t0)
            raise ProtocolError(
                f"{service} (0x{sid:02X}) refused: NRC 0x{code:02X} {p.nrc_name(code)}",
                device=self.name,
                nrc=code,
                nrc_name=p.nrc_name(code),
                service=service,
            )
        self._record(sid, service, payload, response, 0, t0)
        return response


def _service_name(sid: int) -> str:
    service = BaseService.from_request_id(sid)
    return service.get_name() if service is not None else f"Service0x{sid:02X}"
