"""restore-nets rebuilds a bond netreload made that the kernel holds down.

The iproute2 configurator creates a bond down, marks it, and sets it up
last: superd killed in between (or someone setting it down) leaves a bond
that the running and persistent configurations describe, that the
capabilities report shows complete (it has no link state), and that is
down. The rebuild reads the admin state of the marked bonds too
(``superd.admin_state``) and rebuilds one held down, with the network on
it. A bond's NIC the administrator set down is not netreload's: it stays
down, and its bond is left as it is.

One scenario (each ``superd.oneshot`` run costs tens of seconds in the
emulated guest): bond1 (dummy_0, dummy_1) carrying the bridged network
"onbond", bond2 (dummy_2, dummy_3) with no network, both persisted; then
bond1 set down and dummy_2 set down, and one restore-nets. Assertions
read the kernel back (``ip -j -d``, the bonding driver's sysfs files).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import ns_ip_json, ns_sysfs_read, vm_namespace

from tests.functional.agent import Agent
from tests.functional.conftest import HostNs, ip_batch

TIMEOUT = 600  # seconds for one superd.oneshot run in the emulated guest
OPTIONS = "mode=active-backup miimon=100"
NETWORKS = {"onbond": {"bonding": "bond1", "ipaddr": "10.1.0.1", "prefix": 24}}
BONDS = {
    "bond1": {"nics": ["dummy_0", "dummy_1"], "options": OPTIONS},
    "bond2": {"nics": ["dummy_2", "dummy_3"], "options": OPTIONS},
}


def link(ns: str, name: str) -> dict[str, Any]:
    (entry,) = ns_ip_json(ns, "link", "show", "dev", name)
    return entry


def is_up(ns: str, name: str) -> bool:
    return "UP" in link(ns, name)["flags"]


def ok(result: dict) -> None:
    assert result["code"] == 0, result


@pytest.fixture(scope="module")
def restored(vm_kernel_modules, tmp_path_factory) -> Iterator[tuple[str, dict[str, Any]]]:
    """(namespace, what was read before the restore)."""
    with vm_namespace(4) as ns:
        nics = [f"dummy_{i}" for i in range(4)]
        ip_batch(ns, [f"link set {nic} up" for nic in nics])
        agent = Agent(HostNs(name=ns, peer="", nics=nics), tmp_path_factory.mktemp("agent"))
        agent.write_config()
        request = agent.root / "request.json"
        request.write_text(json.dumps({"networks": NETWORKS, "bondings": BONDS, "options": {}}))
        ok(agent.run("setup", str(request), timeout=TIMEOUT))
        ok(agent.run("set-safe-config", timeout=TIMEOUT))
        seen = {"bond2": link(ns, "bond2")["ifindex"]}
        # as a crash between bond1's creation and its up leaves it; dummy_2:
        # the administrator's
        ip_batch(ns, ["link set bond1 down", "link set dummy_2 down"])
        seen["down"] = not is_up(ns, "bond1") and not is_up(ns, "dummy_2")
        ok(agent.run("restore-nets", timeout=TIMEOUT))
        yield ns, seen


def test_a_marked_bond_held_down_is_rebuilt_up_by_restore_nets(restored) -> None:
    ns, seen = restored
    assert seen["down"]
    assert is_up(ns, "bond1")
    assert sorted(ns_sysfs_read(ns, "bond1", "bonding/slaves").split()) == ["dummy_0", "dummy_1"]
    assert ns_sysfs_read(ns, "bond1", "bonding/mode").split()[0] == "active-backup"


def test_the_network_on_the_rebuilt_bond_has_it_as_its_port_again(restored) -> None:
    ns, _ = restored
    assert link(ns, "bond1").get("master") == "onbond"
    assert is_up(ns, "onbond")


def test_a_bonds_nic_the_admin_set_down_stays_down_and_its_bond_as_it_was(restored) -> None:
    ns, seen = restored
    assert not is_up(ns, "dummy_2")
    assert link(ns, "bond2")["ifindex"] == seen["bond2"]  # not rebuilt
    assert is_up(ns, "bond2")
