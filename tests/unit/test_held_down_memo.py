"""The monitor's set of marked devices held down (``ReportCache.held_down``),
kept from state to state by the ifindexes each one touched.

Pure: the states are plain ``NetState`` values, published to the cache as
the monitor does (``_touched``); no kernel.
"""

from __future__ import annotations

from types import SimpleNamespace

from superd.cores import LiveNetworkSetup
from superd.monitor_report import ReportCache
from superd.netstate import NetState
from superd.repair import live_of
from superd.setup_networks import NetworkSetup

UP, DOWN = 0x1, 0x0
MARK = "netreload"


class Cache(ReportCache):
    def __init__(self) -> None:
        self._init_reports()


def link(index: int, name: str, flags: int, alias: str | None = MARK) -> dict:
    return {"index": index, "name": name, "flags": flags, "alias": alias, "mtu": 1500}


def published(cache: Cache, version: int, links: list[dict],
              touched: set[int] | None) -> NetState:  # fmt: skip
    state = NetState(version, {x["index"]: x for x in links}, {}, {},
                     touched=None if touched is None else frozenset(touched))  # fmt: skip
    cache._touched(state)
    return state


HOST = [link(1, "lo", UP, None), link(2, "eth0", DOWN, None), link(3, "br0", UP),
        link(4, "br1", DOWN), link(5, "theirs", DOWN, "other agent")]  # fmt: skip


def test_the_first_answer_holds_the_marked_devices_that_are_down() -> None:
    cache = Cache()
    assert cache.held_down(published(cache, 1, HOST, None)) == {"br1"}


def test_a_marked_device_set_down_later_is_in_the_answer() -> None:
    cache = Cache()
    cache.held_down(published(cache, 1, HOST, None))
    after = [*HOST[:2], link(3, "br0", DOWN), *HOST[3:]]
    assert cache.held_down(published(cache, 2, after, {3})) == {"br0", "br1"}


def test_a_device_set_up_or_deleted_leaves_the_answer() -> None:
    cache = Cache()
    cache.held_down(published(cache, 1, [*HOST, link(6, "br2", DOWN)], None))
    after = [*HOST[:3], link(4, "br1", UP), HOST[4]]  # br1 up, br2 gone
    assert cache.held_down(published(cache, 2, after, {4, 6})) == frozenset()


def test_a_device_marked_while_down_enters_the_answer() -> None:
    cache = Cache()
    cache.held_down(published(cache, 1, [*HOST, link(6, "br2", DOWN, None)], None))
    after = [*HOST, link(6, "br2", DOWN)]
    assert cache.held_down(published(cache, 2, after, {6})) == {"br1", "br2"}


def test_states_between_two_answers_are_all_accounted_for() -> None:
    cache = Cache()
    cache.held_down(published(cache, 1, HOST, None))
    published(cache, 2, [*HOST[:2], link(3, "br0", DOWN), *HOST[3:]], {3})
    last = [*HOST[:2], link(3, "br0", DOWN), link(4, "br1", UP), HOST[4]]
    assert cache.held_down(published(cache, 3, last, {4})) == {"br0"}


def test_after_a_full_dump_every_link_is_looked_at_again() -> None:
    # a resync's state does not know what it touched: the walk, not the memo
    cache = Cache()
    cache.held_down(published(cache, 1, HOST, None))
    after = [*HOST[:2], link(3, "br0", DOWN), *HOST[3:]]
    assert cache.held_down(published(cache, 2, after, None)) == {"br0", "br1"}


def test_the_rebuild_asks_the_monitor_the_daemons_core_reads() -> None:
    # superd's writer core (LiveNetworkSetup) is answered by its monitor; a
    # plain core (oneshot) reads the kernel: repair.live_of tells them apart
    live = object()
    plain = NetworkSetup(None, None, None, lambda: frozenset())  # type: ignore[arg-type]
    core = SimpleNamespace(persistence=None, configurators=None, read_caps=None)
    assert live_of(LiveNetworkSetup(core, live)) is live  # type: ignore[arg-type]
    assert live_of(plain) is None
