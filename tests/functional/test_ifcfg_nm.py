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
from tests.functional.ifcfg_lab import IfcfgAgent, ifcfg_nm_lab, why_no_ifcfg_nm
from tests.functional.nm_lab import NmLab

pytestmark = pytest.mark.skipif(why_no_ifcfg_nm() is not None, reason=str(why_no_ifcfg_nm()))

STATIC = {"ipaddr": "10.9.0.2", "netmask": "255.255.255.0"}


@pytest.fixture
def agent(host_ns: HostNs, tmp_path: Path) -> IfcfgAgent:
    agent = IfcfgAgent(host_ns, tmp_path / "agent")
    return agent


@pytest.fixture
def lab(host_ns: HostNs, tmp_path: Path, agent: IfcfgAgent) -> Iterator[NmLab]:
    lab = ifcfg_nm_lab(host_ns, tmp_path / "nm", agent.scripts)
    lab.start()
    agent.bus = lab.address
    agent.write_config()
    try:
        yield lab
    finally:
        lab.stop()


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
