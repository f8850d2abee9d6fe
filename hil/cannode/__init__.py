"""A generic CAN node: DBC → definition, E2E protection, driver and emulator base.

Any cantools database becomes a device: its signals are observable as
``"Message.Signal"``, the messages the bench's nodes send are its stimuli.
Device types (``devices/ev``) add convenience and behaviour on top.
"""

from hil.cannode.definition import can_definition
from hil.cannode.driver import CanNodeDriver
from hil.cannode.e2e import E2EProfile, E2EReceiver, E2ESender, crc8_j1850
from hil.cannode.emulator import CanNodeEmulator

__all__ = [
    "CanNodeDriver",
    "CanNodeEmulator",
    "E2EProfile",
    "E2EReceiver",
    "E2ESender",
    "can_definition",
    "crc8_j1850",
]
