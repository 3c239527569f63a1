"""Plans from the wire that frontd would never compute (``shared.netmodel.plan_checks``).

Each refusal names the rule it breaks; each legitimate plan frontd computes
(including the ones superd's repair builds) still round-trips. The functional
twin, against a running superd, is ``tests/functional/test_superd_hostile.py``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

import pytest

from shared.errors import ErrorCode, NetError
from shared.netmodel.names import validate_nic_name
from shared.netmodel.plan import Plan, plan_setup_networks
from shared.netmodel.plan_checks import check_plan_devices
from shared.netmodel.snapshot import NetinfoSnapshot, RunningConfig


def wire(plan: Plan) -> dict:
    return json.loads(json.dumps(plan.to_dict()))


def running_with(
    host: NetinfoSnapshot, networks: dict, bondings: dict | None = None
) -> RunningConfig:
    plan = plan_setup_networks(networks, bondings or {}, {}, host, RunningConfig())
    return RunningConfig.from_dict(plan.running)


def refused(data: dict, code: ErrorCode, text: str) -> None:
    with pytest.raises(NetError) as info:
        Plan.from_dict(data)
    assert (info.value.code, text in info.value.message) == (code, True), info.value


@pytest.fixture
def simple(host: NetinfoSnapshot) -> dict:
    """net_h on veth_1, nothing running."""
    return wire(plan_setup_networks({"net_h": {"nic": "veth_1"}}, {}, {}, host, RunningConfig()))


def both(plan: dict, key: str, value: object) -> None:
    """Set an attribute of net_h in its operation and in the expected running config."""
    for attrs in (plan["operations"][-1]["attrs"], plan["running"]["networks"]["net_h"]):
        attrs[key] = value


# -- legitimate plans are unaffected ------------------------------------------


def test_plan_with_bonds_mtus_vlans_and_route_handover_round_trips(host) -> None:
    running = running_with(
        host,
        {"mgmt": {"nic": "veth_0", "ipaddr": "10.0.0.2", "prefix": 24, "gateway": "10.0.0.1",
                  "defaultRoute": True},
         "old": {"bonding": "bond1", "vlan": 5}},
        {"bond1": {"nics": ["veth_1"]}},
    )  # fmt: skip
    plan = plan_setup_networks(
        {"old": {"remove": True},
         "pub": {"bonding": "bond2", "vlan": 7, "mtu": 9000, "bootproto": "dhcp",
                 "defaultRoute": True, "blockingdhcp": True},
         "lan": {"bonding": "bond2", "mtu": 4000}},
        {"bond1": {"remove": True}, "bond2": {"nics": ["veth_2"], "options": "mode=4"}},
        {"connectivityTimeout": 10},
        host,
        running,
    )  # fmt: skip
    kinds = {op["op"] for op in plan.operations}
    assert {"remove_network", "remove_bond", "add_bond", "set_mtu", "add_network"} <= kinds
    assert Plan.from_dict(wire(plan)) == plan


def test_edit_of_a_network_round_trips(host) -> None:
    running = running_with(host, {"n": {"nic": "veth_0"}})
    plan = plan_setup_networks({"n": {"nic": "veth_0", "mtu": 9000}}, {}, {}, host, running)
    assert [op["op"] for op in plan.operations] == ["remove_network", "set_mtu", "add_network"]
    assert Plan.from_dict(wire(plan)) == plan


def test_repair_plan_shape_round_trips(host) -> None:
    """superd's repair: remove and re-add with the running config unchanged."""
    running = running_with(host, {"n": {"nic": "veth_0"}, "m": {"nic": "veth_1", "vlan": 3}})
    nets = running.to_dict()["networks"]
    data = {
        "version": 1,
        "operations": [{"op": "remove_network", "name": n, "attrs": nets[n]} for n in ("m", "n")]
        + [{"op": "add_network", "name": n, "attrs": nets[n]} for n in ("m", "n")],
        "options": {"connectivityCheck": False},
        "running": running.to_dict(),
    }
    assert len(Plan.from_dict(data).operations) == 4


# -- what Plan.from_dict now refuses -------------------------------------------


def _extra_op_key(p: dict) -> None:
    p["operations"][0]["exec"] = "id"


def _running_pairs(p: dict) -> None:
    p["running"]["networks"] = list(p["running"]["networks"].items())


def _mtu(device: str, mtu: int = 1500) -> Callable[[dict], None]:
    return lambda p: p["operations"].insert(0, {"op": "set_mtu", "device": device, "mtu": mtu})


def _twice(p: dict) -> None:
    p["operations"].append(copy.deepcopy(p["operations"][0]))


def _reversed_edit(p: dict) -> None:
    attrs = p["operations"][0]["attrs"]
    p["operations"].append({"op": "remove_network", "name": "net_h", "attrs": attrs})


def _on_bond(name: str) -> Callable[[dict], None]:
    def tamper(p: dict) -> None:
        for attrs in (p["operations"][-1]["attrs"], p["running"]["networks"]["net_h"]):
            del attrs["nic"]
            attrs["bonding"] = name
    return tamper


def _second_untagged(p: dict) -> None:
    p["running"]["networks"]["other"] = dict(p["running"]["networks"]["net_h"])


def _slave_as_nic(p: dict) -> None:
    p["running"]["bonds"]["bond1"] = {"nics": ["veth_1"], "options": "", "switch": "legacy"}


def _two_default_routes(p: dict) -> None:
    both(p, "defaultRoute", True)
    p["running"]["networks"]["other"] = {**p["running"]["networks"]["net_h"], "nic": "veth_2"}


@pytest.mark.parametrize(
    "tamper, code, text",
    [
        (lambda p: p.update(exec="id"), ErrorCode.BAD_PARAMS, "plan: unknown key(s) 'exec'"),
        (_extra_op_key, ErrorCode.BAD_PARAMS, "add_network operation: unknown key(s) 'exec'"),
        (lambda p: p["running"].update(x={}), ErrorCode.BAD_PARAMS, "running: unknown key(s)"),
        (lambda p: p.update(running=[]), ErrorCode.BAD_PARAMS, "running must be an object"),
        (_running_pairs, ErrorCode.BAD_PARAMS, "running networks must be an object"),
        (lambda p: p["operations"][0].update(blockingdhcp="no"), ErrorCode.BAD_PARAMS,
         "blockingdhcp must be true or false"),
        (lambda p: both(p, "nic", "../../etc/x"), ErrorCode.BAD_NIC, "NIC name is not valid"),
        (lambda p: both(p, "nic", "lo"), ErrorCode.BAD_NIC, "NIC name is not valid: 'lo'"),
        (lambda p: both(p, "nic", "-v"), ErrorCode.BAD_NIC, "NIC name is not valid"),
        (_on_bond("bond/../x"), ErrorCode.BAD_BONDING, "Bond name is not valid"),
        (lambda p: both(p, "bonding", "bond0"), ErrorCode.BAD_PARAMS, "both nic and bonding"),
        (lambda p: (both(p, "nic", "veth_123456789"), both(p, "vlan", 10)), ErrorCode.BAD_VLAN,
         "vlan device name longer than 15"),
        (lambda p: both(p, "ipaddr", "10.0.0.300"), ErrorCode.BAD_ADDR, "ipaddr"),
        (_mtu("lo"), ErrorCode.BAD_NIC, "NIC name is not valid: 'lo'"),
        (_mtu("veth_2"), ErrorCode.BAD_PARAMS, "set_mtu veth_2: no operation of the plan uses"),
        (_mtu("net_h"), ErrorCode.BAD_PARAMS, "set_mtu net_h: no operation"),
        (_mtu("veth_1", 9000), ErrorCode.BAD_PARAMS, "mtu 9000 is not 1500"),
        (lambda p: (_mtu("veth_1")(p), _mtu("veth_1")(p)), ErrorCode.BAD_PARAMS, "(duplicate)"),
        (_twice, ErrorCode.BAD_PARAMS, "add_network net_h: a second operation"),
        (_reversed_edit, ErrorCode.BAD_PARAMS, "(out of order)"),
        (_second_untagged, ErrorCode.BAD_PARAMS, "more than one untagged network"),
        (_slave_as_nic, ErrorCode.USED_NIC, "nic veth_1 is a slave of bond bond1"),
        (_two_default_routes, ErrorCode.BAD_PARAMS, "only one network may hold the default route"),
    ],
    ids=["plan-key", "op-key", "running-key", "running-list", "running-pairs", "blockingdhcp",
         "nic-path", "nic-lo", "nic-dash", "bonding-path", "nic-and-bonding", "vlan-name-long",
         "bad-ipaddr", "mtu-lo", "mtu-untouched-nic", "mtu-bridge", "mtu-unasked", "mtu-twice",
         "add-twice", "add-before-remove", "second-untagged", "nic-is-bond-slave",
         "two-default-routes"],
)  # fmt: skip
def test_plan_frontd_would_never_compute_is_refused(
    simple: dict, tamper: Callable[[dict], None], code: ErrorCode, text: str
) -> None:
    tamper(simple)
    refused(simple, code, text)


def test_bond_slave_in_two_bonds_is_refused(host) -> None:
    plan = wire(plan_setup_networks({}, {"bond2": {"nics": ["veth_2"]}}, {}, host, RunningConfig()))
    plan["running"]["bonds"]["bond1"] = dict(plan["running"]["bonds"]["bond2"])
    refused(plan, ErrorCode.USED_NIC, "nic veth_2 is already a slave of")


def test_added_bond_is_validated_in_full(host) -> None:
    plan = wire(plan_setup_networks({}, {"bond2": {"nics": ["veth_2"]}}, {}, host, RunningConfig()))
    for attrs in (plan["operations"][0]["attrs"], plan["running"]["bonds"]["bond2"]):
        attrs["nics"] = []
    refused(plan, ErrorCode.BAD_PARAMS, "bond bond2: must specify nics for bonding")


def test_loopback_is_never_a_nic_name() -> None:
    with pytest.raises(NetError) as info:
        validate_nic_name("lo")
    assert info.value.code == ErrorCode.BAD_NIC
    assert validate_nic_name("lo0") == "lo0"  # only the loopback device itself


# -- check_plan_devices: what needs superd's netinfo ---------------------------


def test_plan_devices_accepts_what_frontd_computed(host) -> None:
    plan = plan_setup_networks(
        {"n": {"bonding": "bond2", "mtu": 9000}}, {"bond2": {"nics": ["veth_2"]}}, {}, host,
        RunningConfig(),
    )  # fmt: skip
    assert any(op["op"] == "set_mtu" and op["device"] == "bond2" for op in plan.operations)
    check_plan_devices(plan.operations, host.nics, host.bondings)


@pytest.mark.parametrize(
    "op, text",
    [
        ({"op": "add_network", "name": "n", "attrs": {"nic": "net_x"}}, "unknown nic net_x"),
        ({"op": "add_bond", "name": "bond2", "attrs": {"nics": ["mgmt0"]}}, "unknown nic mgmt0"),
        ({"op": "set_mtu", "device": "veth_3.7", "mtu": 1500}, "not a NIC or a bond"),
    ],
    ids=["network-on-a-bridge", "bond-of-a-foreign-device", "mtu-of-a-vlan"],
)
def test_plan_devices_refuses_what_is_not_a_nic(host, op: dict, text: str) -> None:
    with pytest.raises(NetError) as info:
        check_plan_devices([op], host.nics, host.bondings)
    assert (info.value.code, text in info.value.message) == (ErrorCode.BAD_NIC, True)


def test_plan_devices_skips_removals(host) -> None:
    """A removed network's NIC may be gone from the host already."""
    removal = {"op": "remove_network", "name": "n", "attrs": {"nic": "gone0"}}
    check_plan_devices([removal], host.nics, host.bondings)


@pytest.mark.parametrize(
    ("bridge_opts", "text"),
    [("multicast_snooping=0 foo=0", "unknown bridge option 'foo'"),
     ("priority=70000", "out of 0..65535"),
     ("priority=1 multicast_snooping=0", "not canonical")],  # unsorted: not frontd's form
)  # fmt: skip
def test_bridge_opts_frontd_would_refuse_are_refused_again(simple, bridge_opts, text) -> None:
    both(simple, "custom", {"bridge_opts": bridge_opts})
    refused(simple, ErrorCode.BAD_PARAMS, text)


def test_a_plan_with_bridge_opts_frontd_computed_round_trips(host) -> None:
    net = {"nic": "veth_1", "custom": {"bridge_opts": "priority=1 multicast_snooping=0"}}
    plan = wire(plan_setup_networks({"net_h": net}, {}, {}, host, RunningConfig()))
    assert Plan.from_dict(plan).to_dict() == plan
