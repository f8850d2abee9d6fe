"""Capture.since: what a reader has yet to see, in order, also after eviction."""

from __future__ import annotations

from hil.transports.capture import TX, Capture


def filled(maxlen: int, count: int) -> Capture[int]:
    capture: Capture[int] = Capture("test", maxlen)
    for i in range(count):
        capture.append(float(i), TX, i)
    return capture


def test_since_gives_the_new_records_oldest_first() -> None:
    capture = filled(10, 6)
    records, seq = capture.since(3)
    assert [r.data for r in records] == [3, 4, 5]
    assert seq == 6
    assert capture.since(6) == ([], 6)


def test_since_after_eviction_gives_what_is_still_kept() -> None:
    capture = filled(5, 8)  # 0, 1 and 2 were evicted
    assert [r.data for r in capture.since(6)[0]] == [6, 7]
    assert [r.data for r in capture.since(0)[0]] == [3, 4, 5, 6, 7]
    assert capture.dropped == 3
