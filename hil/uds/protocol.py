"""UDS facts both sides share: ids, timing, sessions, NRC names, the key algorithm, DTCs.

Numbers come from the domain file (ISO 14229 over ISO 15765-2): P2 50 ms,
P2* 5000 ms, S3 5000 ms, request 0x7E0 / response 0x7E8 on 11-bit ids.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from udsoncan.Response import Response

from hil.errors import ConfigError

REQUEST_ID = 0x7E0
RESPONSE_ID = 0x7E8
P2_S = 0.050  # server answers (or sends 0x78) within this
P2_STAR_S = 5.0  # after a 0x78 "response pending"
# ISO 14229-2: a client waits P2server + ΔP2 (the network's and the bench's latency).
# The ECU's own P2 is judged on capture timestamps; the client only must not give up
# on an answer a loaded CI machine delivers a few tens of ms late.
P2_CLIENT_MARGIN_S = 0.45  # P2 client 0.5 s
S3_S = 5.0  # a non-default session falls back to default without a request this long
LOCKOUT_S = 10.0  # security access refused (0x37) after too many wrong keys
MAX_ATTEMPTS = 3  # the third wrong key answers 0x36 and starts the lockout

DEFAULT, EXTENDED = 0x01, 0x03
SESSIONS: Mapping[str, int] = {"DEFAULT": DEFAULT, "EXTENDED": EXTENDED}
SESSION_NAMES: Mapping[int, str] = {v: k for k, v in SESSIONS.items()}

# DIDs every server answers
DID_ACTIVE_SESSION = 0xF186
DID_SOFTWARE_VERSION = 0xF189
DID_SERIAL_NUMBER = 0xF18C
DID_VIN = 0xF190
# identification DIDs whose data is ASCII text (ISO 14229-1 annex C)
ASCII_DIDS = frozenset(
    {0xF187, 0xF188, 0xF189, 0xF18A, 0xF18C, 0xF190, 0xF191, 0xF192, 0xF193, 0xF194, 0xF195}
)

# NRCs this server uses (names as udsoncan spells them)
SERVICE_NOT_SUPPORTED = 0x11
SUBFUNCTION_NOT_SUPPORTED = 0x12
BAD_LENGTH = 0x13
CONDITIONS_NOT_CORRECT = 0x22
SEQUENCE_ERROR = 0x24
OUT_OF_RANGE = 0x31
ACCESS_DENIED = 0x33
INVALID_KEY = 0x35
ATTEMPTS_EXCEEDED = 0x36
DELAY_NOT_EXPIRED = 0x37
RESPONSE_PENDING = 0x78
NOT_IN_SESSION = 0x7F

SEED_LEN = KEY_LEN = 4
DEFAULT_SECRET = 0x5EC2_E7A1

# DTC status bits (ISO 14229-1 D.2)
TEST_FAILED = 0x01
TEST_FAILED_THIS_CYCLE = 0x02
PENDING = 0x04
CONFIRMED = 0x08
STATUS_AVAILABILITY = 0xFF


def nrc_name(code: int) -> str:
    """``0x35`` → ``"InvalidKey"`` (udsoncan's names)."""
    return str(Response.Code.get_name(code)) or f"NRC 0x{code:02X}"


def compute_key(seed: bytes, level: int, secret: int = DEFAULT_SECRET) -> bytes:
    """The documented seed/key algorithm (a bench stand-in for an OEM secret).

    ``key = rotl32(seed XOR secret, 3) + level  (mod 2**32)``, big-endian,
    seed and key 4 bytes each. ``level`` is the odd request-seed level.
    """
    value = int.from_bytes(seed, "big") ^ (secret & 0xFFFF_FFFF)
    value = ((value << 3) | (value >> 29)) & 0xFFFF_FFFF
    return ((value + level) & 0xFFFF_FFFF).to_bytes(KEY_LEN, "big")


def can_id(settings: Mapping[str, Any], key: str, default: int) -> int:
    """An 11-bit CAN id from settings (int, or a string like ``"0x7E0"``)."""
    raw = settings.get(key, default)
    try:
        value = int(raw, 0) if isinstance(raw, str) else int(raw)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"settings.{key} must be a CAN id like 0x7E0, got {raw!r}") from err
    if not 0 <= value <= 0x7FF:
        raise ConfigError(f"settings.{key} must be an 11-bit CAN id (0..0x7FF), got 0x{value:X}")
    return value


class DtcStore:
    """Diagnostic trouble codes (3-byte code → status byte), thread-safe.

    Device behaviour sets codes from faults (``set``); 0x19 reads and 0x14
    clears them.
    """

    def __init__(self) -> None:
        self._codes: dict[int, int] = {}
        self._lock = threading.Lock()

    def set(
        self, code: int, status: int = TEST_FAILED | TEST_FAILED_THIS_CYCLE | CONFIRMED
    ) -> None:
        """Record a fault: ``status`` bits are OR-ed into the code's status."""
        if not 0 <= code <= 0xFFFFFF:
            raise ValueError(f"a DTC is 3 bytes, got 0x{code:X}")
        with self._lock:
            self._codes[code] = self._codes.get(code, 0) | (status & 0xFF)

    def clear(self, group: int = 0xFFFFFF) -> bool:
        """Clear every code (``0xFFFFFF``) or one code; False if there is no such group."""
        with self._lock:
            if group == 0xFFFFFF:
                self._codes.clear()
                return True
            return self._codes.pop(group, None) is not None

    def known(self, group: int) -> bool:
        with self._lock:
            return group == 0xFFFFFF or group in self._codes

    def matching(self, mask: int) -> list[tuple[int, int]]:
        """``(code, status)`` of every code whose status shares a bit with ``mask``."""
        with self._lock:
            return sorted(
                (code, status & STATUS_AVAILABILITY)
                for code, status in self._codes.items()
                if status & mask & STATUS_AVAILABILITY
            )

    def __len__(self) -> int:
        with self._lock:
            return len(self._codes)
