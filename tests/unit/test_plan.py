"""Plan computation: ordering, minimal change, default route hand-over, wire form."""

from __future__ import annotations

import json

import pytest

from shared.errors import ErrorCode, NetError
from shared.netmodel.plan import OPERATIONS, Plan, plan_setup_networks
from shared.netmodel.snapshot import RunningConfig


def ops(plan: Plan) -> list[tuple[str, str]]:
    return [(op["op"], op.get("name") or op.get("device")) for op in plan.operations]


def running_with(host, networks, bondings=None) -> RunningConfig:
    """The running configuration after a successful apply of a request."""
    plan = plan_setup_networks(networks, bondings or {}, {}, host, RunningConfig())
    return RunningConfig.from_dict(plan.running)


def test_operations_follow_the_documented_order(host) -> None:
    running = running_with(
        host,
        {"old": {"bonding": "bond1"}, "keep": {"nic": "veth_1"}},
        {"bond1": {"nics": ["veth_0"]}},
    )
    plan = plan_setup_networks(
        {
            "old": {"remove": True},
            "keep": {"nic": "veth_1", "mtu": 9000},
            "new": {"bonding": "bond2", "vlan": 4},
        },
        {"bond1": {"remove": True}, "bond2": {"nics": ["veth_2"]}},
        {},
        host,
        running,
    )
    kinds = [op["op"] for op in plan.operations]
    assert kinds == sorted(kinds, key=OPERATIONS.index)
    assert ops(plan)[:3] == [
        ("remove_network", "keep"),
        ("remove_network", "old"),
        ("remove_bond", "bond1"),
    ]
    assert ops(plan)[-2:] == [("add_network", "keep"), ("add_network", "new")]


def test_edit_is_removal_followed_by_addition(host) -> None:
    running = running_with(host, {"n": {"nic": "veth_0"}})
    plan = plan_setup_networks({"n": {"nic": "veth_0", "stp": True}}, {}, {}, host, running)
    assert ops(plan) == [("remove_network", "n"), ("add_network", "n")]


def test_unchanged_reapply_plans_nothing(host) -> None:
    request = {"n": {"nic": "veth_0", "vlan": 3, "ipaddr": "10.0.0.1", "prefix": 24}}
    running = running_with(host, request, {})
    plan = plan_setup_networks(request, {}, {}, host, running)
    assert plan.is_empty


def test_blockingdhcp_alone_is_not_a_change(host) -> None:
    running = running_with(host, {"n": {"nic": "veth_0", "bootproto": "dhcp"}})
    request = {"n": {"nic": "veth_0", "bootproto": "dhcp", "blockingdhcp": True}}
    assert plan_setup_networks(request, {}, {}, host, running).is_empty


def test_blockingdhcp_is_never_in_the_running_configuration(host) -> None:
    request = {"n": {"nic": "veth_0", "bootproto": "dhcp", "blockingdhcp": True}}
    plan = plan_setup_networks(request, {}, {}, host, RunningConfig())
    assert "blockingdhcp" not in plan.running["networks"]["n"]
    assert plan.operations[0]["blockingdhcp"] is True


def test_previous_default_route_holder_is_resent_without_it(host) -> None:
    running = running_with(
        host,
        {"mgmt": {"nic": "veth_0", "ipaddr": "10.0.0.2", "prefix": 24,
                  "gateway": "10.0.0.1", "defaultRoute": True}},
    )  # fmt: skip
    plan = plan_setup_networks(
        {"pub": {"nic": "veth_1", "bootproto": "dhcp", "defaultRoute": True}},
        {},
        {},
        host,
        running,
    )
    assert ("add_network", "mgmt") in ops(plan)
    assert plan.running["networks"]["mgmt"]["defaultRoute"] is False
    assert plan.running["networks"]["mgmt"]["nameservers"] == []


def test_removed_network_leaves_running_configuration(host) -> None:
    running = running_with(host, {"a": {"nic": "veth_0"}, "b": {"nic": "veth_1"}})
    plan = plan_setup_networks({"a": {"remove": True}}, {}, {}, host, running)
    assert sorted(plan.running["networks"]) == ["b"]


def test_bond_edit_planned_when_options_change(host) -> None:
    running = running_with(host, {}, {"bond1": {"nics": ["veth_0"], "options": "mode=1"}})
    plan = plan_setup_networks(
        {}, {"bond1": {"nics": ["veth_0", "veth_1"], "options": "mode=1"}}, {}, host, running
    )
    assert ops(plan) == [("edit_bond", "bond1")]


def test_plan_round_trips_through_json(host) -> None:
    plan = plan_setup_networks(
        {"n": {"bonding": "bond1", "vlan": 9, "mtu": 9000, "bootproto": "dhcp",
               "blockingdhcp": True}},
        {"bond1": {"nics": ["veth_0", "veth_1"], "options": "mode=4 miimon=100"}},
        {"connectivityTimeout": 10},
        host,
        RunningConfig(),
    )  # fmt: skip
    wire = json.loads(json.dumps(plan.to_dict()))
    assert Plan.from_dict(wire) == plan


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda p: p.update(version=2), ErrorCode.BAD_PARAMS),
        (lambda p: p["operations"].append({"op": "exec", "name": "x"}), ErrorCode.BAD_PARAMS),
        (
            lambda p: p["operations"].append({"op": "add_network", "name": "../etc", "attrs": {}}),
            ErrorCode.BAD_PARAMS,
        ),
        (
            lambda p: p["operations"].append({"op": "remove_bond", "name": "eth0", "attrs": {}}),
            ErrorCode.BAD_BONDING,
        ),
        (
            lambda p: p["operations"].append({"op": "set_mtu", "device": "a/b", "mtu": 1500}),
            ErrorCode.BAD_NIC,
        ),
        (lambda p: p["operations"][0]["attrs"].update(vlan=5000), ErrorCode.BAD_VLAN),
        (lambda p: p["operations"][0]["attrs"].update(mtu="1500"), ErrorCode.BAD_PARAMS),
    ],
)
def test_plan_from_wire_rejects_what_frontd_never_sends(host, mutate, code) -> None:
    plan = plan_setup_networks({"n": {"nic": "veth_0"}}, {}, {}, host, RunningConfig())
    wire = json.loads(json.dumps(plan.to_dict()))
    mutate(wire)
    with pytest.raises(NetError) as info:
        Plan.from_dict(wire)
    assert info.value.code == code


def test_plan_sent_without_running_leaves_out_the_hosts_networks(host) -> None:
    running = running_with(host, {"a": {"nic": "veth_0", "vlan": 1}})
    plan = plan_setup_networks({"b": {"nic": "veth_0", "vlan": 2}}, {}, {}, host, running)
    wire = json.loads(json.dumps(plan.to_dict(running=False)))
    assert "running" not in wire
    received = Plan.from_dict(wire)
    assert received.running is None
    assert received.operations == plan.operations


def test_plan_received_without_running_completed_with_the_derived_one(host) -> None:
    plan = plan_setup_networks({"n": {"nic": "veth_0", "mtu": 9000}}, {}, {}, host, RunningConfig())
    received = Plan.from_dict(json.loads(json.dumps(plan.to_dict(running=False))))
    assert received.with_running(plan.running) == plan


def test_plan_completed_with_its_running_keeps_what_superd_knows_of_its_shaping(host) -> None:
    plan = plan_setup_networks({"n": {"nic": "veth_0", "mtu": 9000}}, {}, {}, host, RunningConfig())
    received = Plan.from_dict(json.loads(json.dumps(plan.to_dict(running=False))))
    assert received.with_shapes(True).with_running(plan.running).shapes is True


def test_plan_received_without_running_checks_its_mtus_on_the_derived_one(host) -> None:
    plan = plan_setup_networks({"n": {"nic": "veth_0", "mtu": 9000}}, {}, {}, host, RunningConfig())
    wire = json.loads(json.dumps(plan.to_dict(running=False)))
    wire["operations"] = [
        {**op, "mtu": 8000} if op["op"] == "set_mtu" else op for op in wire["operations"]
    ]
    received = Plan.from_dict(wire)
    with pytest.raises(NetError) as info:
        received.with_running(plan.running)
    assert info.value.code == ErrorCode.BAD_PARAMS
    assert "what its networks need" in info.value.message
