"""Hostile plans for ``test_superd_hostile``: tampers of a valid plan, each
with the error superd must answer, and random one-leaf mutations.

A tamper changes a plan frontd computed for ``net_h`` on veth_1 (with
``net_base`` on veth_0 running); where the change would otherwise leave the
plan inconsistent with itself (an operation and the expected running
configuration disagreeing), it changes both, so that the rule under test is
the one that refuses it.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Iterator
from typing import Any

from shared.errors import ErrorCode
from shared.netmodel.canonical import canonicalize_bond

BAD_PARAMS = ErrorCode.BAD_PARAMS  # 21: also what a bad network name gets
# another agent's bridge on the host (libvirt's default network)
FOREIGN_BRIDGE, FOREIGN_BRIDGE_ADDR = "virbr0", "192.168.122.1/24"


def _bond_attrs() -> dict:
    attrs = canonicalize_bond("bond0", {"nics": ["veth_2"]})
    assert attrs is not None
    return attrs


def net_name(name: Any) -> Callable[[dict], None]:
    """Rename net_h in its operation and in the expected running configuration."""
    def tamper(plan: dict) -> None:
        plan["operations"][0]["name"] = name
        networks = plan["running"]["networks"]
        networks[name] = networks.pop("net_h")
    return tamper


def add_bond_named(name: Any) -> Callable[[dict], None]:
    def tamper(plan: dict) -> None:
        plan["operations"].insert(0, {"op": "add_bond", "name": name, "attrs": _bond_attrs()})
        plan["running"]["bonds"][name] = _bond_attrs()
    return tamper


def net_attr(key: str, value: Any) -> Callable[[dict], None]:
    """Set an attribute of net_h in its operation and in the expected running config."""
    def tamper(plan: dict) -> None:
        for attrs in (plan["operations"][-1]["attrs"], plan["running"]["networks"]["net_h"]):
            attrs[key] = value
    return tamper


def set_mtu(device: Any, mtu: Any = 1500) -> Callable[[dict], None]:
    def tamper(plan: dict) -> None:
        plan["operations"].insert(0, {"op": "set_mtu", "device": device, "mtu": mtu})
    return tamper


def operation(op: Any) -> Callable[[dict], None]:
    def tamper(plan: dict) -> None:
        plan["operations"].append(op)
    return tamper


def op_kind(kind: Any) -> Callable[[dict], None]:
    def tamper(plan: dict) -> None:
        plan["operations"][0]["op"] = kind
    return tamper


def twice(plan: dict) -> None:
    plan["operations"].append(copy.deepcopy(plan["operations"][0]))


def running_also(plan: dict) -> None:
    plan["running"]["networks"]["net_x"] = {**plan["running"]["networks"]["net_h"], "nic": "veth_2"}


def running_without_base(plan: dict) -> None:
    del plan["running"]["networks"]["net_base"]


def remove_base_with(attrs_change: dict) -> Callable[[dict], None]:
    def tamper(plan: dict) -> None:
        attrs = {**plan["running"]["networks"]["net_base"], **attrs_change}
        plan["operations"].insert(0, {"op": "remove_network", "name": "net_base", "attrs": attrs})
        del plan["running"]["networks"]["net_base"]
    return tamper


def remove_missing(plan: dict) -> None:
    attrs = plan["running"]["networks"]["net_h"]
    plan["operations"].insert(0, {"op": "remove_network", "name": "net_gone", "attrs": attrs})


def remove_foreign_bridge(plan: dict) -> None:
    """Remove a network named like the foreign bridge, as if it were running."""
    attrs = plan["running"]["networks"]["net_h"]
    plan["operations"].insert(0, {"op": "remove_network", "name": FOREIGN_BRIDGE, "attrs": attrs})


def untagged_on_base_nic(plan: dict) -> None:
    net_attr("nic", "veth_0")(plan)


def on_bond(bond: str) -> Callable[[dict], None]:
    def tamper(plan: dict) -> None:
        for attrs in (plan["operations"][-1]["attrs"], plan["running"]["networks"]["net_h"]):
            del attrs["nic"]
            attrs["bonding"] = bond
    return tamper


def add_before_remove(plan: dict) -> None:
    base = plan["running"]["networks"]["net_base"]
    plan["operations"].append({"op": "remove_network", "name": "net_base", "attrs": base})
    plan["operations"].append({"op": "add_network", "name": "net_base", "attrs": base})
    plan["operations"][-2:] = plan["operations"][-1:-3:-1]


def extra_key(where: str) -> Callable[[dict], None]:
    def tamper(plan: dict) -> None:
        target = {"plan": plan, "op": plan["operations"][0], "running": plan["running"],
                  "options": plan["options"]}[where]  # fmt: skip
        target["exec"] = "id"
    return tamper


def running_as_pairs(plan: dict) -> None:
    plan["running"]["networks"] = list(plan["running"]["networks"].items())


def blockingdhcp(value: Any) -> Callable[[dict], None]:
    def tamper(plan: dict) -> None:
        plan["operations"][-1]["blockingdhcp"] = value
    return tamper


def options(**values: Any) -> Callable[[dict], None]:
    def tamper(plan: dict) -> None:
        plan["options"].update(values)
    return tamper


HOSTILE_PLANS = [
    # names that would become paths or device names
    ("net-slash", net_name("net/h"), BAD_PARAMS, "Network name is not valid"),
    ("net-dotdot", net_name(".."), BAD_PARAMS, "Network name is not valid"),
    ("net-nul", net_name("net\x00h"), BAD_PARAMS, "Network name is not valid"),
    ("net-leading-dash", net_name("-net_h"), BAD_PARAMS, "Network name is not valid"),
    ("net-16-chars", net_name("n" * 16), BAD_PARAMS, "Network name is not valid"),
    ("net-name-int", net_name(7), BAD_PARAMS, "Network name is not valid"),
    ("bond-slash", add_bond_named("bond/x"), ErrorCode.BAD_BONDING, "Bond name is not valid"),
    ("bond-dotdot", add_bond_named("bond.."), ErrorCode.BAD_BONDING, "Bond name is not valid"),
    ("bond-nul", add_bond_named("bond\x00"), ErrorCode.BAD_BONDING, "Bond name is not valid"),
    ("bond-dash", add_bond_named("-bond0"), ErrorCode.BAD_BONDING, "Bond name is not valid"),
    ("bond-16-chars", add_bond_named("bond" + "x" * 12), ErrorCode.BAD_BONDING,
     "Bond name is not valid"),
    ("nic-path", net_attr("nic", "../../x"), ErrorCode.BAD_NIC, "NIC name is not valid"),
    ("nic-dash", net_attr("nic", "-veth_1"), ErrorCode.BAD_NIC, "NIC name is not valid"),
    ("nic-16-chars", net_attr("nic", "v" * 16), ErrorCode.BAD_NIC, "NIC name is not valid"),
    ("bonding-path", on_bond("bond/../x"), ErrorCode.BAD_BONDING, "Bond name is not valid"),
    ("nic-and-bonding", net_attr("bonding", "bond0"), BAD_PARAMS, "both nic and bonding"),
    ("nic-lo", net_attr("nic", "lo"), ErrorCode.BAD_NIC, "NIC name is not valid: 'lo'"),
    ("mtu-lo", set_mtu("lo", 1280), ErrorCode.BAD_NIC, "NIC name is not valid: 'lo'"),
    # frontd accepts a network "lo" (no NIC, bond or VLAN of that name):
    # the configurator refuses to take the device over as a bridge.
    ("net-named-lo", net_name("lo"), ErrorCode.FAILED_IFUP, "lo: exists and is not a bridge"),
    # another agent's bridge: never taken over, never removed
    ("net-on-foreign-bridge", net_name(FOREIGN_BRIDGE), ErrorCode.USED_BRIDGE,
     f"Network already exists ({FOREIGN_BRIDGE})"),
    ("remove-foreign-bridge", remove_foreign_bridge, BAD_PARAMS,
     f"remove_network {FOREIGN_BRIDGE} does not fit"),
    ("vlan-name-too-long", lambda p: (net_attr("nic", "veth_123456789")(p),
                                      net_attr("vlan", 10)(p)), ErrorCode.BAD_VLAN,
     "vlan device name longer than 15"),
    # VLAN tags
    ("vlan-4095", net_attr("vlan", 4095), ErrorCode.BAD_VLAN, "out of range 0..4094"),
    ("vlan-negative", net_attr("vlan", -1), ErrorCode.BAD_VLAN, "out of range 0..4094"),
    ("vlan-float", net_attr("vlan", 10.5), ErrorCode.BAD_VLAN, "is not an integer"),
    ("vlan-bool", net_attr("vlan", True), ErrorCode.BAD_VLAN, "is not an integer"),
    ("vlan-list", net_attr("vlan", [10]), ErrorCode.BAD_VLAN, "is not an integer"),
    ("vlan-string", net_attr("vlan", "10"), BAD_PARAMS, "network net_h is not canonical"),
    # operation kinds
    ("op-add-vlan", op_kind("add_vlan"), BAD_PARAMS, "unknown operation"),
    ("op-dunder", op_kind("__class__"), BAD_PARAMS, "unknown operation"),
    ("op-null", op_kind(None), BAD_PARAMS, "unknown operation"),
    ("op-list", op_kind(["add_network"]), BAD_PARAMS, "unknown operation"),
    ("op-not-object", operation("add_network"), BAD_PARAMS, "unknown operation"),
    ("operations-object", lambda p: p.update(operations={"0": p["operations"][0]}), BAD_PARAMS,
     "operations must be a list"),
    # MTUs of devices the plan does not own
    ("mtu-other-nic", set_mtu("veth_2", 1400), BAD_PARAMS, "set_mtu veth_2: no operation"),
    ("mtu-bridge", set_mtu("net_base", 1400), BAD_PARAMS, "set_mtu net_base: no operation"),
    ("mtu-unasked", set_mtu("veth_1", 9000), BAD_PARAMS, "mtu 9000 is not 1500"),
    ("mtu-out-of-range", set_mtu("veth_1", 70000), BAD_PARAMS, "mtu: 70000 is out of range"),
    ("mtu-bool", set_mtu("veth_1", True), BAD_PARAMS, "mtu: True is not an integer"),
    ("mtu-device-path", set_mtu("../lo"), ErrorCode.BAD_NIC, "NIC name is not valid"),
    # plans that do not follow from the running configuration
    ("running-has-more", running_also, BAD_PARAMS, "does not follow from its operations"),
    ("running-lost-base", running_without_base, BAD_PARAMS, "does not follow from its operations"),
    ("remove-with-other-attrs", remove_base_with({"stp": True}), BAD_PARAMS, "stale plan"),
    ("remove-missing", remove_missing, BAD_PARAMS, "remove_network net_gone does not fit"),
    ("second-untagged-on-nic", untagged_on_base_nic, BAD_PARAMS,
     "more than one untagged network"),
    # repeated or reordered operations
    ("duplicate-add", twice, BAD_PARAMS, "add_network net_h: a second operation"),
    ("duplicate-mtu", lambda p: (set_mtu("veth_1")(p), set_mtu("veth_1")(p)), BAD_PARAMS,
     "(duplicate)"),
    ("add-before-remove", add_before_remove, BAD_PARAMS, "(out of order)"),
    # keys superd would otherwise drop or coerce
    ("extra-plan-key", extra_key("plan"), BAD_PARAMS, "plan: unknown key(s) 'exec'"),
    ("extra-op-key", extra_key("op"), BAD_PARAMS, "add_network operation: unknown key(s) 'exec'"),
    ("extra-running-key", extra_key("running"), BAD_PARAMS, "plan: running: unknown key(s)"),
    ("extra-option", extra_key("options"), BAD_PARAMS, "options: unknown attribute(s) 'exec'"),
    ("extra-attr", net_attr("exec", "id"), BAD_PARAMS, "unknown attribute(s) 'exec'"),
    ("running-as-pairs", running_as_pairs, BAD_PARAMS, "running networks must be an object"),
    ("blockingdhcp-string", blockingdhcp("no"), BAD_PARAMS, "blockingdhcp must be true or false"),
    ("version-2", lambda p: p.update(version=2), BAD_PARAMS, "not a version 1 plan"),
    ("timeout-huge", options(connectivityTimeout=10**9), BAD_PARAMS, "out of range 0..3600"),
]  # fmt: skip


HOSTILE_VALUES: list[Any] = [
    None, [], {}, "", "../x", "-x", "a\x00b", "x" * 300, -1, 2**63, 1.5, True, False, "lo",
    "veth_2", {"op": "exec"}, [["net_a", {}]], "1500", 0,
]  # fmt: skip


def _leaves(value: Any, path: tuple = ()) -> Iterator[tuple]:
    """Every path into ``value`` (dict keys and list indices), containers too."""
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))


def mutate(plan: dict, rng: random.Random) -> str:
    """Replace, delete or add one thing somewhere in ``plan``; what was done."""
    # Not commitOnSuccess: True there is a different, legitimate request (it
    # persists), which test_superd covers.
    path = rng.choice([p for p in _leaves(plan) if p and p != ("options", "commitOnSuccess")])
    parent = plan
    for step in path[:-1]:
        parent = parent[step]
    kind = rng.choice(("replace", "replace", "delete", "add"))
    if kind == "delete" and isinstance(parent, dict):
        del parent[path[-1]]
        return f"delete {path}"
    if kind == "add" and isinstance(parent, dict):
        key = rng.choice(["exec", "__class__", "op", "name", "device", "x" * 100])
        parent[key] = rng.choice(HOSTILE_VALUES)
        return f"add {key!r} at {path[:-1]}"
    parent[path[-1]] = value = copy.deepcopy(rng.choice(HOSTILE_VALUES))
    return f"set {path} = {value!r}"[:200]
