"""The car's UDS server (``hil.uds``): its DIDs, routines and trouble codes.

DTCs are 3-byte codes (ISO 14229 / SAE J2012): the SAE code's two bytes and a
failure-type byte, e.g. P0AA6-00 → 0x0AA600, U0422-82 → 0xC42282.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import can

from hil.uds import protocol as uds
from hil.uds.ecu import Did, EcuOptions, Nrc, Routine, UdsEcu
from hil.uds.server import UdsServer

DTC_LOCKCMD_CHECKSUM = 0xC42283  # U0422-83: invalid data from BCM, protection value wrong
DTC_LOCKCMD_COUNTER = 0xC42282  # U0422-82: alive/sequence counter incorrect
DTC_ISOLATION = 0x0AA600  # P0AA6-00: HV system isolation fault
DTC_CELL_OVERTEMP = 0x0A7E00  # P0A7E-00: battery pack over-temperature
DTC_CELL_OVERVOLTAGE = 0x1A1000  # P1A10-00: cell over-voltage (manufacturer code)
DTC_BMS_TIMEOUT = 0xC11187  # U0111-87: lost communication with the BMS, missing message
DTC_DESCRIPTIONS: Mapping[int, str] = {
    DTC_LOCKCMD_CHECKSUM: "BODY_LockCmd dropped: wrong checksum",
    DTC_LOCKCMD_COUNTER: "BODY_LockCmd dropped: repeated or stale counter",
    DTC_ISOLATION: "HV isolation below 100 Ohm/V",
    DTC_CELL_OVERTEMP: "cell over-temperature shutdown",
    DTC_CELL_OVERVOLTAGE: "cell over-voltage",
    DTC_BMS_TIMEOUT: "BMS_Status missing (battery frame timeout)",
}
DTCS = tuple(DTC_DESCRIPTIONS)

DEFAULT_VIN = "HILEV000000000001"
DID_SOC, DID_PROTECTED = 0xD001, 0xD0FF
RID_LOCK_TEST, RID_INSULATION = 0x0201, 0x0301
INSULATION_TEST_S = 0.2


class Car(Protocol):
    """What the diagnostics need of the car."""

    def soc_percent(self) -> float: ...
    def isolation_kohm(self) -> float: ...
    def uds_allowed(self, sid: int) -> bool: ...
    def on_reset(self, kind: int) -> None: ...


def uds_server(
    name: str,
    car: Car,
    settings: Mapping[str, Any],
    *,
    firmware: str,
    ids: tuple[int, int],
    defects: frozenset[str],
    send: Callable[[can.Message], None],
) -> UdsServer:
    """The car's diagnostics on ``ids`` (request, response)."""
    s = settings
    options = EcuOptions(
        s3_s=float(s.get("uds_s3_s", uds.S3_S)),
        lockout_s=float(s.get("uds_lockout_s", uds.LOCKOUT_S)),
        secret=int(s.get("uds_secret", uds.DEFAULT_SECRET)),
        lockout="no_security_lockout" not in defects,
        s3="s3_never_expires" not in defects,
        conditions=car.uds_allowed,
        on_reset=car.on_reset,
    )
    ecu = UdsEcu(options)
    vin = str(s.get("vin", DEFAULT_VIN))
    serial = int(s.get("serial", 20261125))
    for did, text in (
        (uds.DID_SOFTWARE_VERSION, firmware),
        (uds.DID_SERIAL_NUMBER, f"{serial:010d}"),
        (uds.DID_VIN, vin),
        (0xF193, str(int(s.get("hw_revision", 3)))),
    ):
        ecu.add_did(Did(did, _constant(text.encode("ascii"))))
    ecu.add_did(Did(DID_SOC, lambda: round(car.soc_percent() * 10).to_bytes(2, "big")))
    ecu.add_did(Did(DID_PROTECTED, lambda: b"\x5a", security=True))
    ecu.add_routine(Routine(RID_LOCK_TEST, start=_lock_test, results=lambda _: b"\x02"))

    def insulation_test(option: bytes) -> bytes:
        kohm = min(0xFFFF, max(0, round(car.isolation_kohm())))
        return b"\x00" + kohm.to_bytes(2, "big")  # completed, resistance in kOhm

    ecu.add_routine(
        Routine(RID_INSULATION, start=insulation_test, security=True, duration_s=INSULATION_TEST_S)
    )
    request_id, response_id = ids
    return UdsServer(name, ecu, send=send, request_id=request_id, response_id=response_id)


def _lock_test(option: bytes) -> bytes:
    if option not in (b"", b"\x00"):
        raise Nrc(uds.OUT_OF_RANGE)
    return b"\x01"  # running


def _constant(data: bytes) -> Callable[[], bytes]:
    return lambda: data
