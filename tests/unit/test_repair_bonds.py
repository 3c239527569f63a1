"""The ``restore`` event action for a bond whose NIC came back
(``superd.repair.repair_plan``): the bond is edited as it runs, which makes
the configurator enslave what it lacks; nothing else is rebuilt.

Pure: the running configuration and the capabilities report are data (the
core below holds them); the VM lane's ``tests/vm/test_bond_nic_hotplug.py``
checks the kernel side.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import pytest

from shared.netmodel.plan import Plan, plan_setup_networks
from shared.netmodel.snapshot import NetinfoSnapshot, RunningConfig
from superd import events as ev
from superd.repair import repair_plan

OPTIONS = "mode=active-backup miimon=100"


class Running:
    def __init__(self, config: Mapping) -> None:
        self.config = config

    def snapshot(self) -> dict:
        return copy.deepcopy(dict(self.config))


class Persistence:
    def __init__(self, config: Mapping) -> None:
        self.running = Running(config)


class Core:
    """What ``repair_plan`` reads of a core: the running configuration and
    the kernel's capabilities report; ``host``: what a network's removal is
    planned against (None: a bond repair alone plans nothing)."""

    def __init__(
        self, running: Mapping, caps: Mapping, host: NetinfoSnapshot | None = None
    ) -> None:
        self.persistence = Persistence(running)
        self.caps, self.host = caps, host

    def read_caps(self, running: Mapping) -> dict:
        return copy.deepcopy(dict(self.caps))

    def plan(self, networks: object, bondings: object, options: object) -> Plan:
        assert self.host is not None, "no network is rebuilt for a bond's returning NIC"
        running = RunningConfig.from_dict(self.persistence.running.snapshot())
        return plan_setup_networks(networks, bondings, options, self.host, running)


@pytest.fixture
def running(host: NetinfoSnapshot) -> dict:
    """bond1 (veth_0, veth_1) carrying "onbond" at MTU 9000; "plain" on veth_2."""
    plan = plan_setup_networks(
        {"onbond": {"bonding": "bond1", "ipaddr": "10.1.0.1", "prefix": 24, "mtu": 9000},
         "plain": {"nic": "veth_2"}},
        {"bond1": {"nics": ["veth_0", "veth_1"], "options": OPTIONS}},
        {}, host, RunningConfig(),
    )  # fmt: skip
    return RunningConfig.from_dict(plan.running).to_dict()


def caps(slaves: list[str], nics: tuple[str, ...] = ("veth_0", "veth_1", "veth_2")) -> dict:
    """The kernel: bond1 with ``slaves``, the NICs ``nics`` present."""
    return {
        "nics": {name: {"mtu": 1500} for name in nics},
        "bondings": {"bond1": {"slaves": slaves, "mtu": 9000, "opts": {"mode": "1"}}},
    }


def test_a_bond_lacking_a_nic_that_came_back_is_edited_as_it_runs(running: dict) -> None:
    plan, repaired = repair_plan(Core(running, caps(["veth_0"])), {"bond1"})
    assert plan is not None and repaired == ["bond1"]
    assert plan.operations == [
        {"op": "edit_bond", "name": "bond1", "attrs": running["bonds"]["bond1"]}
    ]
    assert plan.running == running  # the running configuration stays as it is


def test_the_bond_repair_plan_is_one_superd_accepts_from_the_wire(running: dict) -> None:
    plan, _ = repair_plan(Core(running, caps(["veth_0"])), {"bond1"})
    assert plan is not None
    assert Plan.from_dict(plan.to_dict()) == plan


def test_a_bond_holding_all_its_nics_needs_no_repair(running: dict) -> None:
    assert repair_plan(Core(running, caps(["veth_0", "veth_1"])), {"bond1"}) == (None, [])


def test_a_bond_whose_other_missing_nic_is_not_back_is_left_for_its_return(
    running: dict,
) -> None:
    core = Core(running, caps([], nics=("veth_1", "veth_2")))  # veth_0 still gone
    assert repair_plan(core, {"bond1"}) == (None, [])


def test_a_bond_the_kernel_lacks_is_not_repaired_by_enslaving(running: dict) -> None:
    core = Core(running, {"nics": caps([])["nics"], "bondings": {}})
    assert repair_plan(core, {"bond1"}) == (None, [])


def test_an_ovs_bonds_ports_are_left_to_ovsdb(running: dict) -> None:
    running["bonds"]["bond1"]["switch"] = "ovs"
    assert repair_plan(Core(running, caps(["veth_0"])), {"bond1"}) == (None, [])


def test_a_name_of_no_running_bond_or_network_is_ignored(running: dict) -> None:
    assert repair_plan(Core(running, caps(["veth_0"])), {"bond7", "nowhere"}) == (None, [])


def test_a_plain_nic_and_a_bonds_nic_back_together_are_one_plan_in_order(
    running: dict, host: NetinfoSnapshot
) -> None:
    kernel = caps(["veth_0"])  # "plain"'s bridge lost veth_2: it has no port
    kernel["bridges"] = {"plain": {"ports": [], "mtu": 1500, "stp": "off"}}
    plan, repaired = repair_plan(Core(running, kernel, host), {"plain", "bond1"})
    assert plan is not None and repaired == ["plain", "bond1"]
    ops = [(op["op"], op["name"]) for op in plan.operations]
    assert ops == [("remove_network", "plain"), ("edit_bond", "bond1"), ("add_network", "plain")]
    assert Plan.from_dict(plan.to_dict()) == plan


# -- what the event names -----------------------------------------------------


def returned(running: dict, *nics: str) -> list[dict]:
    return ev.with_usage([ev.nic_event(nic, 7 + i, True) for i, nic in enumerate(nics)], running)


def test_a_bonds_returning_nic_names_its_bond_not_the_networks_on_it(running: dict) -> None:
    assert ev.restore_targets(returned(running, "veth_1"), {"nic_added": "restore"}) == {"bond1"}


def test_a_plain_returning_nic_names_its_networks(running: dict) -> None:
    assert ev.restore_targets(returned(running, "veth_2"), {"nic_added": "restore"}) == {"plain"}


def test_a_returning_nic_in_no_bond_or_network_names_nothing(running: dict) -> None:
    assert ev.restore_targets(returned(running, "veth_3"), {"nic_added": "restore"}) == set()


@pytest.mark.parametrize("action", ["report", "ignore"])
def test_without_the_restore_policy_a_returning_nic_names_nothing(
    running: dict, action: str
) -> None:
    back = returned(running, "veth_1", "veth_2")
    assert ev.restore_targets(back, {"nic_added": action}) == set()
