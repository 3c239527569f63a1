"""The live netinfo's facts about a running configuration (a network asks
for shaping, a network is OVS's), carried from one configuration to the
next by identity of the networks' attributes (``superd.monitor_report``)."""

from __future__ import annotations

from superd.monitor_report import _NetworkFacts

SHAPED = {"nic": "eth0", "hostQos": {"out": {"ls": {"m2": 1000}}}}
PLAIN = {"nic": "eth1"}
OVS = {"nic": "eth2", "switch": "ovs"}


def host(**extra: dict) -> dict:
    return {f"bn{i}": {"bridged": True} for i in range(100)} | extra


def test_a_shaped_network_added_then_removed_is_seen_both_ways() -> None:
    facts, before = _NetworkFacts(), host(plain=PLAIN)
    assert facts.update(before) == (False, False)
    assert facts.update(before | {"shaped": SHAPED}) == (True, False)
    assert facts.update(dict(before)) == (False, False)


def test_a_network_edited_in_place_of_its_attributes_is_judged_again() -> None:
    facts = _NetworkFacts()
    facts.update(host(net=SHAPED))
    assert facts.update(host(net=PLAIN)) == (False, False)
    assert facts.update(host(net=OVS)) == (False, True)


def test_a_shaped_network_without_nic_or_bond_shapes_nothing() -> None:
    assert _NetworkFacts().update(host(net={"hostQos": SHAPED["hostQos"]})) == (False, False)
