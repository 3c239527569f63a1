"""The live netinfo's marked devices, kept from one state to the next by the
ifindexes each touched (superd.monitor_report.ReportCache.owned)."""

from __future__ import annotations

from superd.monitor_report import ReportCache
from superd.netstate import NetState


def _link(index: int, name: str, marked: bool) -> dict:
    return {"index": index, "name": name, "alias": "netreload" if marked else None}


class Cache(ReportCache):
    def __init__(self) -> None:
        self._init_reports()

    def state(self, version: int, links: list[dict], touched: set[int] | None) -> NetState:
        state = NetState(version, {x["index"]: x for x in links}, {}, {},
                         touched=None if touched is None else frozenset(touched))  # fmt: skip
        self._touched(state)
        return state


def test_owned_follows_the_touched_devices() -> None:
    cache = Cache()
    links = [_link(i, f"br{i}", marked=i % 2 == 0) for i in range(2, 12)]
    first = cache.state(1, links, None)
    assert cache.owned(first) == (["br10", "br2", "br4", "br6", "br8"],
                                  frozenset({"br10", "br2", "br4", "br6", "br8"}))  # fmt: skip
    links = [x for x in links if x["index"] != 4] + [_link(12, "br12", True), _link(3, "zz", True)]
    second = cache.state(2, links, {4, 12, 3})
    assert cache.owned(second)[0] == ["br10", "br12", "br2", "br6", "br8", "zz"]


def test_a_device_changed_but_not_named_as_touched_is_not_looked_at() -> None:
    """The proof that the update does not walk the host: a change the
    state does not name stays unseen until a state without that knowledge."""
    cache = Cache()
    cache.owned(cache.state(1, [_link(2, "br2", True)], None))
    unnamed = cache.state(2, [_link(2, "br2", False)], set())
    assert cache.owned(unnamed)[0] == ["br2"]
    unknown = cache.state(3, [_link(2, "br2", False)], None)
    assert cache.owned(unknown)[0] == []
