"""The upgrade to unified persistence, flow 1 (no reboot), end to end from
a host the ifcfg configurator set up with NetworkManager's ifcfg-rh plugin:
``netreload upgrade-unified-persistence``, then ``net_configurator =
iproute2`` and ``restore-nets``. The host ends with the same networks,
addresses, default routes and persistence, and no ifcfg file of ours."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.conftest import HostNs
from tests.functional.ifcfg_lab import PLUGIN_DIR, IfcfgAgent, serving, why_no_ifcfg_nm
from tests.functional.nm_lab import NmLab

pytestmark = pytest.mark.skipif(why_no_ifcfg_nm() is not None, reason=str(why_no_ifcfg_nm()))
REPO = Path(__file__).resolve().parents[2]

NETWORKS = {
    "mgmt": {"nic": "veth_0", "ipaddr": "10.9.0.2", "netmask": "255.255.255.0",
             "gateway": "10.9.0.1", "defaultRoute": True},
    "data": {"nic": "veth_1", "bridged": False, "ipaddr": "10.9.5.2", "netmask": "255.255.255.0",
             "ipv6addr": "2001:db8:5::2/64"},
}  # fmt: skip


@pytest.fixture
def agent(host_ns: HostNs, tmp_path: Path) -> IfcfgAgent:
    return IfcfgAgent(host_ns, tmp_path / "agent")


@pytest.fixture
def lab(host_ns: HostNs, tmp_path: Path, agent: IfcfgAgent) -> Iterator[NmLab]:
    with serving(host_ns, tmp_path / "nm", agent) as lab:
        yield lab


def cli(agent: IfcfgAgent, *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "frontd.cli", "--config", str(agent.config_path), "--json", *args],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def ifcfg_profiles(lab: NmLab) -> list[str]:
    """NetworkManager's profiles read from ifcfg files."""
    out = lab.nmcli("-t", "-e", "no", "-f", "NAME,FILENAME", "connection", "show")
    return sorted(line for line in out.splitlines() if str(PLUGIN_DIR) in line)


def persisted(agent: IfcfgAgent) -> dict:
    tree = agent.root / "lib" / "persistence" / "netconf"
    return {
        kind: {p.name: json.loads(p.read_text()) for p in sorted((tree / kind).glob("*"))}
        for kind in ("nets", "bonds")
    }


def view(host: HostNs) -> dict:
    """Addresses, masters and default routes: what the networks are."""
    addrs = sorted(
        (a["ifname"], i["local"], i["prefixlen"])
        for a in host.ip_json("addr", "show")
        for i in a.get("addr_info", [])
        if i.get("scope") == "global"
    )
    masters = {link["ifname"]: link.get("master") for link in host.ip_json("link", "show")}
    defaults = sorted(
        (r.get("gateway"), r["dev"])
        for family in ("-4", "-6")
        for r in host.ip_json(family, "route", "show", "default")
    )
    return {"addrs": addrs, "masters": masters, "defaults": defaults}


def test_flow_1_from_the_ifcfg_configurator_to_iproute2_without_reboot(
    agent: IfcfgAgent, lab: NmLab, host_ns: HostNs
) -> None:
    assert agent.setup(NETWORKS)["code"] == 0, lab.log()
    assert agent.run("set-safe-config")["code"] == 0
    assert len(ifcfg_profiles(lab)) == 3
    running, persistent, before = agent.running(), persisted(agent), view(host_ns)
    # a host whose only record is its files (net_persistence = ifcfg, say)
    shutil.rmtree(agent.root / "run" / "netconf")
    shutil.rmtree(agent.root / "lib" / "persistence")

    result = cli(agent, "upgrade-unified-persistence")
    assert result["upgraded"] is True and result["networks"] == ["data", "mgmt"]
    assert agent.running() == running and persisted(agent) == persistent
    assert cli(agent, "upgrade-unified-persistence")["upgraded"] is False

    agent.configurator = "iproute2"  # the administrator's edit, daemons restarted
    agent.write_config()
    answer = agent.run("restore-nets")
    assert answer["code"] == 0, (answer, lab.log())
    assert agent.files() == {}
    assert ifcfg_profiles(lab) == []  # (it keeps in-memory views of iproute2's devices)
    assert view(host_ns) == before
    assert agent.running() == running and persisted(agent) == persistent
    bridge = [link for link in host_ns.ip_json("link", "show", "mgmt")][0]
    assert bridge.get("ifalias") == "netreload"  # iproute2's now


FIXTURE = Path(__file__).parent / "fixtures" / "vdsm_ifcfg"


def up_as_the_initscripts_did(host: HostNs) -> None:
    """The kernel state the production agent's files gave at boot."""
    host.batch(
        [
            "link add ovirtmgmt type bridge stp_state 0 forward_delay 0",
            "link set veth_0 master ovirtmgmt",
            "addr add 10.9.0.2/24 dev ovirtmgmt",
            "link set ovirtmgmt up",
            "route add default via 10.9.0.1 dev ovirtmgmt",
            "link add vmnet type bridge stp_state 0 forward_delay 0",
            "link set veth_1 mtu 1400",
            "link set vmnet mtu 1400",
            "link set veth_1 master vmnet",
            "link set vmnet up",
        ]
    )
    subprocess.run(
        ["ip", "netns", "exec", host.name, "sysctl", "-q", "-w",
         "net.ipv6.conf.vmnet.autoconf=0", "net.ipv6.conf.vmnet.accept_ra=0"],
        check=True,
    )  # fmt: skip
    host.batch(["addr add 10.9.6.2/24 dev vmnet", "addr add 2001:db8:6::2/64 dev vmnet nodad"])


def test_flow_1_from_the_production_agents_files(
    agent: IfcfgAgent, host_ns: HostNs, tmp_path: Path
) -> None:
    shutil.copytree(FIXTURE, agent.scripts)
    up_as_the_initscripts_did(host_ns)
    # NetworkManager reads the files: NM_CONTROLLED=no, so it leaves the devices alone.
    with serving(host_ns, tmp_path / "nm", agent) as lab:
        before = view(host_ns)
        result = cli(agent, "upgrade-unified-persistence")
        assert result["networks"] == ["ovirtmgmt", "vmnet"]
        assert result["vdsm_files"] == ["ovirtmgmt", "veth_0", "veth_1", "vmnet"]
        persistent = persisted(agent)
        assert persistent["nets"]["vmnet"]["mtu"] == 1400
        assert persistent["nets"]["ovirtmgmt"]["gateway"] == "10.9.0.1"

        agent.configurator = "iproute2"
        agent.write_config()
        answer = agent.run("restore-nets")
        assert answer["code"] == 0, (answer, lab.log())
        assert sorted(agent.files()) == ["ifcfg-lo"]  # not the production agent's: stays
        assert view(host_ns) == before
        assert persisted(agent) == persistent
        marks = {link["ifname"]: link.get("ifalias") for link in host_ns.ip_json("link", "show")}
        assert marks["ovirtmgmt"] == marks["vmnet"] == "netreload"


def reboot(agent: IfcfgAgent, lab: NmLab, host: HostNs) -> None:
    """What a reboot does to the lab: the kernel's devices and netreload's
    running configuration (a tmpfs) gone, NetworkManager started again on
    the files (ONBOOT=yes)."""
    lab.stop_nm()
    host.batch(["link del mgmt"])
    for i in (0, 1):  # NICs as the kernel finds them at boot: new, down, no address
        host.batch([f"link del veth_{i}",
                    f"link add veth_{i} type veth peer name p_{i} netns {host.peer}"])  # fmt: skip
        subprocess.run(["ip", "-n", host.peer, "link", "set", f"p_{i}", "up"], check=True)
    shutil.rmtree(agent.root / "run" / "netconf")
    lab.start_nm()


def wait_for(predicate, timeout: float = 30.0) -> bool:  # noqa: ANN001
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def test_flow_2_the_files_bring_the_host_up_then_upgrade_and_restore(
    agent: IfcfgAgent, lab: NmLab, host_ns: HostNs
) -> None:
    assert agent.setup(NETWORKS)["code"] == 0, lab.log()
    assert agent.run("set-safe-config")["code"] == 0
    running, persistent, before = agent.running(), persisted(agent), view(host_ns)
    shutil.rmtree(agent.root / "lib" / "persistence")  # the host kept only its files

    reboot(agent, lab, host_ns)
    assert wait_for(lambda: view(host_ns) == before), (view(host_ns), lab.log())
    # netreload-upgrade.service, then netreload-restore-nets.service
    assert cli(agent, "upgrade-unified-persistence")["upgraded"] is True
    agent.configurator = "iproute2"
    agent.write_config()
    answer = agent.run("restore-nets")
    assert answer["code"] == 0, (answer, lab.log())
    assert agent.files() == {} and ifcfg_profiles(lab) == []
    assert view(host_ns) == before
    assert agent.running() == running and persisted(agent) == persistent
