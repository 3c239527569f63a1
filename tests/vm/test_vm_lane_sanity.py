"""Proves the VM lane: bonding, 8021q and dummy work in the guest kernel."""

from __future__ import annotations

import os

from pyroute2 import IPRoute

BOND = "nrbond0"
VLAN = "nrbond0.10"
ACTIVE_BACKUP = 1  # IFLA_BOND_MODE value of "active-backup"


def test_active_backup_bond_with_vlan(vm_netns, ns_sysfs, ns_ip):
    with IPRoute(netns=vm_netns, flags=0) as ipr:
        ipr.link(
            "add", ifname=BOND, kind="bond", bond_mode=ACTIVE_BACKUP, bond_miimon=100
        )
        (bond,) = ipr.link_lookup(ifname=BOND)
        for port in ("dummy_0", "dummy_1"):
            (index,) = ipr.link_lookup(ifname=port)
            ipr.link("set", index=index, master=bond)
        ipr.link("add", ifname=VLAN, kind="vlan", link=bond, vlan_id=10)
        ipr.link("set", index=bond, state="up")

    # The bond lives only in the namespace: the guest's own /sys (mounted
    # from the root namespace) must not show it, ns_sysfs must.
    assert not os.path.exists(f"/sys/class/net/{BOND}")
    assert ns_sysfs(vm_netns, BOND, "bonding/mode") == "active-backup 1"
    assert ns_sysfs(vm_netns, BOND, "bonding/miimon") == "100"
    assert ns_sysfs(vm_netns, BOND, "bonding/slaves").split() == [
        "dummy_0",
        "dummy_1",
    ]

    (vlan,) = ns_ip(vm_netns, "link", "show", "dev", VLAN)
    assert vlan["link"] == BOND
    assert vlan["linkinfo"]["info_kind"] == "vlan"
    assert vlan["linkinfo"]["info_data"]["id"] == 10
    assert vlan["linkinfo"]["info_data"]["protocol"] == "802.1Q"
