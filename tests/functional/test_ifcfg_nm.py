"""The ifcfg configurator with ``[ifcfg] apply = nm`` against a real
NetworkManager with the ifcfg-rh plugin (see ``ifcfg_lab``).

Each test acts through ``superd.oneshot`` (plan, apply, verify, roll back)
and reads back the kernel with ``ip -j`` and NetworkManager's view with
the ifcfg-rh build's ``nmcli`` on the lab's bus.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.conftest import HostNs
from tests.functional.ifcfg_lab import IfcfgAgent, serving, why_no_ifcfg_nm
from tests.functional.nm_lab import NmLab

pytestmark = pytest.mark.skipif(why_no_ifcfg_nm() is not None, reason=str(why_no_ifcfg_nm()))

STATIC = {"ipaddr": "10.9.0.2", "netmask": "255.255.255.0"}


@pytest.fixture
def agent(host_ns: HostNs, tmp_path: Path) -> IfcfgAgent:
    agent = IfcfgAgent(host_ns, tmp_path / "agent")
    return agent


@pytest.fixture
def lab(host_ns: HostNs, tmp_path: Path, agent: IfcfgAgent) -> Iterator[NmLab]:
    with serving(host_ns, tmp_path / "nm", agent) as lab:
        yield lab


def link(host: HostNs, name: str) -> dict | None:
    found = [entry for entry in host.ip_json("-d", "link", "show") if entry["ifname"] == name]
    return found[0] if found else None


def addresses(host: HostNs, name: str) -> list[str]:
    return [
        f"{a['local']}/{a['prefixlen']}"
        for entry in host.ip_json("addr", "show", "dev", name)
        for a in entry.get("addr_info", [])
        if a.get("scope") == "global"
    ]


def test_a_bridged_network_comes_up_from_its_files(
    agent: IfcfgAgent, lab: NmLab, host_ns: HostNs
) -> None:
    answer = agent.setup({"net1": {"nic": "veth_0", **STATIC}})
    assert answer["code"] == 0, (answer, lab.log())
    assert sorted(agent.files()) == ["ifcfg-net1", "ifcfg-veth_0"]
    bridge = link(host_ns, "net1")
    assert bridge is not None and bridge["linkinfo"]["info_kind"] == "bridge"
    assert link(host_ns, "veth_0")["master"] == "net1"
    assert addresses(host_ns, "net1") == ["10.9.0.2/24"]
    states = lab.device_states()
    assert states["net1"] == "connected" and states["veth_0"] == "connected"


def profiles(lab: NmLab) -> list[str]:
    """NetworkManager's profiles but the loopback one it makes by itself."""
    return sorted(name for name in lab.connections() if name != "lo")


def test_a_removed_network_leaves_no_file_no_profile_and_no_bridge(
    agent: IfcfgAgent, lab: NmLab, host_ns: HostNs
) -> None:
    assert agent.setup({"net1": {"nic": "veth_0", **STATIC}})["code"] == 0
    answer = agent.setup({"net1": {"remove": True}})
    assert answer["code"] == 0, (answer, lab.log())
    assert agent.files() == {}
    assert profiles(lab) == []
    assert link(host_ns, "net1") is None
    assert "master" not in link(host_ns, "veth_0")


def test_a_failure_midway_puts_files_and_kernel_back(
    agent: IfcfgAgent, lab: NmLab, host_ns: HostNs
) -> None:
    assert agent.setup({"net0": {"nic": "veth_0", **STATIC}})["code"] == 0
    files_before, kernel_before = agent.files(), agent.kernel_state()
    profiles_before = profiles(lab)
    answer = agent.setup(
        {
            "net0": {"nic": "veth_0", "ipaddr": "10.9.1.2", "netmask": "255.255.255.0"},
            "net2": {"nic": "veth_1", "bridged": False, "ipaddr": "10.9.2.2", "prefix": 24},
        },
        env={"NETRELOAD_TEST_FAIL_AFTER_OPS": "2"},  # after net0's edit: remove, add
    )
    assert answer["code"] == 29, answer
    assert agent.files() == files_before
    assert agent.kernel_state() == kernel_before
    assert profiles(lab) == profiles_before
    assert addresses(host_ns, "net0") == ["10.9.0.2/24"]


def test_a_failed_verification_puts_files_and_kernel_back(
    agent: IfcfgAgent, lab: NmLab, host_ns: HostNs
) -> None:
    """NetworkManager cannot do what the files ask (a VLAN: this kernel
    has no 8021q): the activation fails, the change is rolled back."""
    kernel_before = agent.kernel_state()
    answer = agent.setup({"net3": {"nic": "veth_1", "vlan": 5, **STATIC}})
    assert answer["code"] != 0, answer
    assert agent.files() == {}
    assert profiles(lab) == []
    assert agent.kernel_state() == kernel_before


def test_restore_nets_removes_owned_files_the_persistent_configuration_lacks(
    agent: IfcfgAgent, lab: NmLab, host_ns: HostNs
) -> None:
    assert agent.setup({"net1": {"nic": "veth_0", **STATIC}})["code"] == 0
    assert agent.run("set-safe-config")["code"] == 0
    assert agent.setup({"net2": {"nic": "veth_1"}})["code"] == 0
    stale = agent.scripts / "ifcfg-dummy_9"  # ours, named by nothing (a crash, say)
    stale.write_text((agent.scripts / "ifcfg-veth_0").read_text().replace("veth_0", "dummy_9"))
    answer = agent.run("restore-nets")
    assert answer["code"] == 0, (answer, lab.log())
    assert sorted(agent.files()) == ["ifcfg-net1", "ifcfg-veth_0"]
    assert link(host_ns, "net2") is None
    assert link(host_ns, "veth_0")["master"] == "net1"
    assert addresses(host_ns, "net1") == ["10.9.0.2/24"]
    assert profiles(lab) == ["Bridge net1", "System veth_0"]


def test_default_route_ipv6_and_mtu_read_back_as_asked(
    agent: IfcfgAgent, lab: NmLab, host_ns: HostNs
) -> None:
    answer = agent.setup(
        {
            "mgmt": {
                "nic": "veth_0", **STATIC, "gateway": "10.9.0.1", "defaultRoute": True,
                "ipv6addr": "2001:db8:9::2/64", "ipv6gateway": "2001:db8:9::1", "mtu": 1400,
            }
        }
    )  # fmt: skip
    assert answer["code"] == 0, (answer, lab.log())
    assert addresses(host_ns, "mgmt") == ["10.9.0.2/24", "2001:db8:9::2/64"]
    default4 = host_ns.ip_json("-4", "route", "show", "default")
    assert [(r["gateway"], r["dev"]) for r in default4] == [("10.9.0.1", "mgmt")]
    default6 = host_ns.ip_json("-6", "route", "show", "default")
    assert [(r["gateway"], r["dev"]) for r in default6] == [("2001:db8:9::1", "mgmt")]
    assert link(host_ns, "mgmt")["mtu"] == 1400 and link(host_ns, "veth_0")["mtu"] == 1400
    settings = lab.connection("Bridge mgmt", "ipv4.method,ipv6.method,ipv4.gateway")
    assert settings == {"ipv4.method": "manual", "ipv6.method": "manual",
                        "ipv4.gateway": "10.9.0.1"}  # fmt: skip


def test_ifcfg_persistence_restore_nets_brings_back_the_last_safe_configuration(
    agent: IfcfgAgent, lab: NmLab, host_ns: HostNs
) -> None:
    agent.persistence = "ifcfg"
    agent.write_config()
    assert agent.setup({"net1": {"nic": "veth_0", **STATIC}})["code"] == 0
    assert agent.run("set-safe-config")["code"] == 0
    safe_files = agent.files()
    edited = {"nic": "veth_0", "ipaddr": "10.9.7.2", "netmask": "255.255.255.0"}
    assert agent.setup({"net1": edited, "net2": {"nic": "veth_1"}})["code"] == 0
    assert addresses(host_ns, "net1") == ["10.9.7.2/24"]
    safe = agent.root / "lib" / "ifcfg" / "safe"
    assert sorted(p.name for p in safe.iterdir()) == ["net1", "net2.absent", "veth_1.absent"]

    answer = agent.run("restore-nets")
    assert answer["code"] == 0, (answer, lab.log())
    assert agent.files() == safe_files
    assert addresses(host_ns, "net1") == ["10.9.0.2/24"]
    assert link(host_ns, "net2") is None
    assert not safe.exists() or list(safe.iterdir()) == []
