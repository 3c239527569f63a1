"""netinfo deltas (``shared.netinfo_delta``): superd sends frontd what
changed since the answer frontd holds, frontd patches what it holds."""

from __future__ import annotations

import copy
import tracemalloc

import orjson
import pytest

from frontd.api import HostApi
from shared import netinfo_delta as delta


def report(*bridges: str, nameservers: tuple[str, ...] = ("192.0.2.53",)) -> dict:
    return {
        "bridges": {b: {"mtu": "1500", "ports": []} for b in bridges},
        "networks": {b: {"iface": b, "bridged": True} for b in bridges},
        "nics": {"veth_0": {"mtu": "1500"}},
        "nameservers": list(nameservers),
    }


def test_patching_the_diff_gives_the_newer_document() -> None:
    old, new = report("a", "b", "c"), report("a", "c", "d", nameservers=("192.0.2.1",))
    new["bridges"]["a"] = {"mtu": "9000", "ports": []}
    assert delta.patch(old, delta.diff(old, new)) == new


def test_the_diff_of_one_change_holds_that_change_only() -> None:
    old = report(*(f"bn{i}" for i in range(1000)))
    new = {**old, "bridges": {**old["bridges"], "bn1000": {"mtu": "1500", "ports": []}}}
    assert delta.diff(old, new) == {
        "sections": {"bridges": {"set": {"bn1000": {"mtu": "1500", "ports": []}}, "gone": []}}
    }


def test_patching_leaves_the_older_document_as_it_was() -> None:
    old, new = report("a", "b"), report("b", "c")
    kept = copy.deepcopy(old)
    delta.patch(old, delta.diff(old, new))
    assert old == kept


def test_keys_that_come_and_go_are_sent_whole() -> None:
    old, new = {"a": 1, "networks": {}}, {"networks": {}, "b": [1, 2]}
    assert delta.patch(old, delta.diff(old, new)) == new


def test_names_delta_round_trips() -> None:
    names = delta.diff_names(["a", "b"], ["b", "c"])
    assert delta.patch_name_set(["a", "b"], names) == {"b", "c"}


class DeltaSuperd:
    """superd's netinfo as a caller taking deltas sees it: the whole host
    first, then what changed since the answer named by ``known``."""

    def __init__(self) -> None:
        self.state = ("t1", report("a"), {"networks": {}, "bonds": {}}, ["a"])
        self.sent: tuple | None = None
        self.answers: list[dict] = []

    def call(self, verb: str, args: dict | None = None, timeout: float = 0) -> dict:
        assert verb == "netinfo"
        args = args or {}
        token, caps, running, owned = self.state
        if args.get("known") == token:
            answer: dict = {"token": token, "unchanged": True}
        elif args.get("delta") and self.sent is not None and args.get("known") == self.sent[0]:
            answer = delta.answer(self.sent, self.state)
        else:
            answer = {"token": token, "caps": caps, "running": running, "owned": owned}
        self.sent = self.state
        self.answers.append(answer)
        return copy.deepcopy(answer)


def test_frontd_holds_the_host_from_superds_deltas() -> None:
    superd = DeltaSuperd()
    api = HostApi(superd)
    assert api.get_capabilities()["bridges"] == report("a")["bridges"]
    running = {"networks": {"b": {"bridged": True}}, "bonds": {}}
    superd.state = ("t2", report("a", "b"), running, ["a", "b"])
    caps, held_running = api._netinfo()
    assert "delta" in superd.answers[-1]
    assert caps == report("a", "b") and held_running == running
    assert api._held_netinfo().owned == {"a", "b"}


def test_running_diff_with_the_stores_hint_compares_only_the_names_written() -> None:
    old = {"networks": {"a": {"mtu": 1500}, "b": {"mtu": 1500}}, "bonds": {}}
    new = {"networks": {"a": {"mtu": 9000}, "b": {"mtu": 9000}, "c": {}}, "bonds": {}}
    sent = ("t1", {}, old, frozenset({"x"}))
    now = ("t2", {}, new, frozenset({"x", "y"}))
    out = delta.answer(sent, now, None, {"networks": {"a", "c"}, "bonds": set()})["delta"]
    # b is not named: the store says it was not written (its entry is not compared)
    assert out["running"] == {"sections": {"networks": {"set": {"a": {"mtu": 9000}, "c": {}},
                                                        "gone": []}}}
    assert out["owned"] == {"add": ["y"], "remove": []}


def test_marked_devices_patch_as_a_set_without_a_copy_when_unchanged() -> None:
    held = frozenset(f"bn{i}" for i in range(100))
    assert delta.patch_name_set(held, {"add": [], "remove": []}) is held
    patched = delta.patch_name_set(held, {"add": ["new"], "remove": ["bn0"]})
    assert patched == (held - {"bn0"}) | {"new"}
    assert "new" in patched and "bn0" not in patched and "bn1" in patched


def test_marked_devices_patch_shares_the_held_names_instead_of_copying_them() -> None:
    held = frozenset(f"bn{i}" for i in range(5000))
    once = delta.patch_name_set(held, {"add": ["bn5000"], "remove": []})
    twice = delta.patch_name_set(once, {"add": [], "remove": ["bn5000", "bn7"]})
    tracemalloc.start()
    try:
        delta.patch_name_set(twice, {"add": ["bn5001"], "remove": ["bn8"]})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024  # the change's names; a frozenset of 5,000 is ~256 KiB
    assert twice == held - {"bn7"} and len(twice) == 4999


def test_a_names_delta_holds_lists_of_names() -> None:
    with pytest.raises(ValueError):
        delta.patch_name_set(frozenset(), {"add": [1], "remove": []})
    with pytest.raises(ValueError):
        delta.patch_name_set(frozenset(), {"add": "bn0", "remove": []})


def test_the_planners_snapshot_takes_a_held_set_of_marked_devices_as_it_is() -> None:
    from shared.netmodel.snapshot import NetinfoSnapshot

    held = frozenset(f"bn{i}" for i in range(100))
    assert NetinfoSnapshot.from_caps({}, held).owned is held
    assert NetinfoSnapshot.from_caps({}, ["a", "b"]).owned == {"a", "b"}


def test_the_planner_reads_the_held_running_configuration_without_copying_it() -> None:
    from frontd.api import _running

    superd = DeltaSuperd()
    superd.state = ("t1", report("a"), {"networks": {"a": {"bridged": True}}, "bonds": {}}, ["a"])
    held = HostApi(superd)._held_netinfo()
    running = _running(held)
    assert running.networks is held.running["networks"]  # not a copy per request
    assert running.bonds is held.running["bonds"]


def test_a_layered_patch_costs_the_change_not_the_section() -> None:
    held = report(*(f"bn{i}" for i in range(5000)))
    change = {"sections": {"bridges": {"set": {"bn5000": {"mtu": "1500", "ports": []}},
                                       "gone": ["bn7"]}}}  # fmt: skip
    tracemalloc.start()
    try:
        patched = delta.patch(held, change, layered=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024  # a copy of the 5,000 bridges is ~150 KiB
    expected = {**held["bridges"], "bn5000": {"mtu": "1500", "ports": []}}
    del expected["bn7"]
    assert patched["bridges"] == expected and list(patched["bridges"]) == list(expected)
    assert "bn7" in held["bridges"] and "bn5000" not in held["bridges"]  # held: as it was


def test_frontd_patched_many_times_answers_the_hosts_report_exactly() -> None:
    superd = DeltaSuperd()
    api = HostApi(superd)
    api.get_network_capabilities()
    names = ["a"]
    for step in range(200):  # past the overlay's share: folded along the way
        names = names + [f"n{step}"] if step % 3 else names[1:] + [f"n{step}"]
        superd.state = (f"t{step + 2}", report(*names), {"networks": {}, "bonds": {}}, names)
        caps = api.get_network_capabilities()
        assert "delta" in superd.answers[-1]
        assert bytes(caps) == orjson.dumps({**report(*names), "netConfigDirty": "False"})
    assert api.get_capabilities()["bridges"] == report(*names)["bridges"]
