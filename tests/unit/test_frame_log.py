"""``FrameLog``: lazy decode of one frame id, bounded even when nobody reads it."""

from __future__ import annotations

import can
import cantools.database

from hil.cannode.frame_log import FrameLog
from hil.transports.capture import RX, Record

DBC = """VERSION ""

NS_ :

BS_:

BU_: ECU

BO_ 512 Status: 8 ECU
 SG_ Count : 0|16@1+ (1,0) [0|65535] "" Vector__XXX
"""


def status_log(history: int) -> FrameLog:
    db = cantools.database.load_string(DBC, database_format="dbc")
    assert isinstance(db, cantools.database.can.Database)
    return FrameLog(db.get_message_by_name("Status"), history)


def record(n: int) -> Record[can.Message]:
    msg = can.Message(arbitration_id=512, is_extended_id=False, data=n.to_bytes(8, "little"))
    return Record(float(n), RX, msg)


def test_an_unread_message_keeps_only_its_history_pending() -> None:
    log = status_log(history=5)
    for n in range(1000):
        log.pending.append(record(n))  # what the capture listener does, never decoded
    assert len(log.pending) == 5
    assert log.update(None, None, history=5) == 0
    assert log.ts == [995.0, 996.0, 997.0, 998.0, 999.0]
    assert [v["Count"] for v in log.values] == [995, 996, 997, 998, 999]
    assert not log.pending


def test_seeded_frames_come_first_and_once() -> None:
    log = status_log(history=100)
    seeded = [record(n) for n in range(3)]
    log.pending.append(seeded[2])  # the listener delivered the newest one too
    log.pending.append(record(3))
    log.seed(seeded, until=float("inf"))
    assert log.update(None, None, history=100) == 0
    assert log.ts == [0.0, 1.0, 2.0, 3.0]
