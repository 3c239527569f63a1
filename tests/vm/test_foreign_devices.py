"""Devices another agent made (a bond, a VLAN device) are never taken over,
changed nor deleted by netreload (``shared.netmodel.ownership``), on the VM
lane's kernel; the devices netreload makes carry its mark. Same harness as
``test_bonds_and_vlans.py`` (``superd.oneshot`` in a namespace of dummy
NICs, the kernel read back with ``ip -j -d`` and sysfs).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from test_bonds_and_vlans import ACTIVE_BACKUP, LACP, Scenario, apply, host, link, ok

from tests.functional.conftest import ip_batch

# --------------------------------------------------------------------------
# devices another agent made are never taken over, changed or deleted
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def foreign(vm_kernel_modules, tmp_path_factory) -> Iterator[Scenario]:
    """bond8 (dummy_0 + dummy_1, active-backup, 10.88.0.1/24) and the VLAN
    device dummy_2.30 (10.30.0.1/24), made outside netreload."""
    with host(tmp_path_factory, 3) as agent:
        s = Scenario(agent)
        ip_batch(
            s.ns,
            [
                "link add bond8 type bond mode active-backup miimon 100",
                "link set dummy_0 down",
                "link set dummy_1 down",
                "link set dummy_0 master bond8",
                "link set dummy_1 master bond8",
                "link set dummy_0 up",
                "link set dummy_1 up",
                "link set bond8 up",
                "addr add 10.88.0.1/24 dev bond8",
                "link add link dummy_2 name dummy_2.30 type vlan id 30",
                "link set dummy_2.30 up",
                "addr add 10.30.0.1/24 dev dummy_2.30",
            ],
        )
        yield s


@pytest.mark.parametrize(
    ("networks", "bondings", "code"),
    [
        pytest.param({}, {"bond8": {"nics": ["dummy_0", "dummy_1"], "options": LACP}}, 31,
                     id="define-the-bond"),
        pytest.param({}, {"bond8": {"remove": True}}, 31, id="remove-the-bond"),
        pytest.param({"n30": {"nic": "dummy_2", "vlan": 30, "bridged": False,
                              "ipaddr": "10.31.0.1", "prefix": 24}}, {}, 24,
                     id="network-on-the-vlan-device"),
    ],
)  # fmt: skip
def test_another_agents_bond_and_vlan_device_are_refused_and_kept(
    foreign, ns_sysfs, networks, bondings, code
) -> None:
    agent, ns = foreign.agent, foreign.ns
    kernel_before, running_before = agent.kernel_state(), agent.running()
    result = apply(agent, networks, bondings)
    assert result["code"] == code, result
    assert agent.kernel_state() == kernel_before
    assert agent.running() == running_before
    assert ns_sysfs(ns, "bond8", "bonding/mode") == "active-backup 1"
    assert "ifalias" not in link(ns, "bond8") and "ifalias" not in link(ns, "dummy_2.30")


def test_netreloads_own_bond_and_vlan_device_carry_its_mark(
    vm_kernel_modules, tmp_path_factory
) -> None:
    with host(tmp_path_factory, 2) as agent:
        ok(
            apply(
                agent,
                {"onbond": {"bonding": "bond1", "vlan": 10, "bridged": False}},
                {"bond1": {"nics": ["dummy_0", "dummy_1"], "options": ACTIVE_BACKUP}},
            )
        )
        ns = agent.host.name
        assert link(ns, "bond1").get("ifalias") == "netreload"
        assert link(ns, "bond1.10").get("ifalias") == "netreload"
