"""The live netinfo's marked devices, kept from one state to the next by the
ifindexes each touched (superd.monitor_report.ReportCache.owned)."""

from __future__ import annotations

import random

from shared import netinfo_delta as delta
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


class NotWalked(frozenset):
    """Marked device names that may be looked up but not walked."""

    def __iter__(self):  # type: ignore[override]
        raise AssertionError("walked every marked device")


def test_the_marked_devices_delta_looks_up_only_the_names_that_moved() -> None:
    old = NotWalked(f"bn{i}" for i in range(2000))
    new = NotWalked({*(f"bn{i}" for i in range(1, 2000)), "bnX"})
    assert delta.diff_names(old, new, {"bn0", "bnX", "bn7"}) == {"add": ["bnX"], "remove": ["bn0"]}


def test_owned_changes_name_what_moved_between_any_two_answers() -> None:
    """Random marks, additions and removals: the names owned_changes gives
    between any two sets owned() gave make the delta a full comparison
    makes; a set from before a walk of every device is not known."""
    rng = random.Random(7)
    cache = Cache()
    links = {i: _link(i, f"br{i}", marked=rng.random() < 0.5) for i in range(2, 40)}
    version, sets = 1, [cache.owned(cache.state(1, list(links.values()), None))[1]]
    for _ in range(60):
        touched = set()
        for _ in range(rng.randint(0, 3)):
            index = rng.randint(2, 45)
            touched.add(index)
            if index in links and rng.random() < 0.3:
                del links[index]
            else:
                name = rng.choice([f"br{index}", f"x{index}"])
                links[index] = _link(index, name, marked=rng.random() < 0.6)
        version += 1
        names, owned = cache.owned(cache.state(version, list(links.values()), touched))
        assert owned == {x["name"] for x in links.values() if x["alias"] == "netreload"}
        assert names == sorted(owned)
        sets.append(owned)
    for old in sets[-30:]:
        for new in sets[-30:]:
            moved = cache.owned_changes(old, new)
            assert moved is not None
            assert delta.diff_names(old, new, moved) == delta.diff_names(old, new)
    walked = cache.owned(cache.state(version + 1, list(links.values()), None))[1]
    assert cache.owned_changes(sets[-1], walked) is None


def test_a_device_recreated_under_its_name_keeps_the_steps_known() -> None:
    """A marked device deleted and created again under the same name in one
    batch (a new ifindex): the marked names do not change, and owned()
    records no step from the set to itself, which would hide the step that
    made that set (owned_changes could no longer tell what moved)."""
    cache = Cache()
    first = cache.owned(cache.state(1, [_link(2, "br2", True)], None))[1]
    second = cache.owned(cache.state(2, [_link(2, "br2", True), _link(3, "br3", True)], {3}))[1]
    third = cache.owned(cache.state(3, [_link(2, "br2", True), _link(4, "br3", True)], {3, 4}))[1]
    assert third is second  # the same names: the same set
    assert cache.owned_changes(first, third) == {"br3"}


def test_a_change_of_one_mark_copies_only_what_moved_of_the_marked_devices() -> None:
    """The marked ifindexes of the next answer are layered over the last
    answer's (``shared.layered``): no copy of the host's thousands."""
    cache = Cache()
    links = [_link(i, f"bn{i}", marked=True) for i in range(2, 2002)]
    cache.owned_set(cache.state(1, links, None))
    before = cache._owned_memo
    assert before is not None
    owned = cache.owned_set(cache.state(2, [*links, _link(3000, "bnX", True)], {3000}))
    after = cache._owned_memo
    assert after is not None and after[1].shares_base(before[1])
    assert owned == before[3] | {"bnX"}
    assert cache.owned(cache.state(3, links, {3000}))[0] == sorted(before[3])
