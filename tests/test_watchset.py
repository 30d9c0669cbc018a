"""The watch set's heaps keep their index on the entries: what is in which heap, and counts."""

from __future__ import annotations

import math

from monitor.core.keys import SessionKey
from monitor.watchset import Entry, WatchSet


def key(n: int) -> SessionKey:
    return SessionKey("AI" + "a" * 32, "EX" + "b" * 32, f"ES{n:032x}")


def test_heaps_follow_the_entries() -> None:
    ws = WatchSet()
    for n in range(4):
        ws.add(Entry(key(n), {}, 30.0), float(n))
    ws.park(key(1), 1.0, wake=5.0)
    assert len(ws.heap) == 4 and len(ws.parked) == 1
    assert key(1) in ws.parked and key(2) not in ws.parked
    ws.remove(key(1))
    assert len(ws.heap) == 3 and len(ws.parked) == 0 and key(1) not in ws.heap
    ws.heap.push(key(2), 9.0)  # superseded: its old time is gone
    assert [k for k, _ in ws.heap.pop_due(math.inf, 10)] == [key(0), key(3), key(2)]
    assert len(ws.heap) == 0


def test_a_replaced_entry_leaves_no_heap_entry_behind() -> None:
    ws = WatchSet()
    ws.add(Entry(key(0), {}, 30.0), 1.0)
    ws.add(Entry(key(0), {"course": "C1"}, 30.0), 2.0)
    assert len(ws.heap) == 1
    assert ws.heap.pop_due(math.inf, 10) == [(key(0), 2.0)]


def test_a_key_never_watched_is_in_no_heap() -> None:
    ws = WatchSet()
    ws.schedule(key(7), 1.0)
    ws.park(key(7), 1.0, wake=None)
    assert key(7) not in ws.heap and key(7) not in ws.parked
    assert ws.heap.discard(key(7)) is None
