"""UDS diagnostics (ISO 14229) over ISO-TP (ISO 15765-2), with udsoncan and can-isotp.

``UdsEcu`` holds an ECU's rules, ``UdsServer`` serves them from an emulator's
bus, ``UdsClient`` talks to any ECU through the bench's ``CanTransport``.
"""

from hil.uds.client import Exchange, UdsClient
from hil.uds.ecu import Did, EcuOptions, Nrc, Routine, UdsEcu
from hil.uds.protocol import DtcStore, compute_key, nrc_name
from hil.uds.server import UdsServer

__all__ = [
    "Did",
    "DtcStore",
    "EcuOptions",
    "Exchange",
    "Nrc",
    "Routine",
    "UdsClient",
    "UdsEcu",
    "UdsServer",
    "compute_key",
    "nrc_name",
]
