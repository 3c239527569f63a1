"""The MTU of a NIC outside the change, in its NetworkManager profile.

A change that sets the MTU of a NIC without editing its network (a VLAN
with a bigger MTU added on it, on the VM lane; here the configurator's
``set_mtu`` asked alone, as superd's applier asks it) sets the kernel's and
the NIC's netreload profile's: a later reactivation keeps it. Read back with
``nmcli`` on the lab's private bus and ``ip -j link``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.agent import Agent
from tests.functional.configurator_params import configured_agent
from tests.functional.conftest import HostNs, ip_json
from tests.functional.nm_lab import why_no_nm

pytestmark = pytest.mark.skipif(why_no_nm() is not None, reason=str(why_no_nm()))
REPO = Path(__file__).resolve().parents[2]

#: superd's applier asking the nm configurator for one set_mtu, in the namespace
_SET_MTU = """
import sys
from configurators.registry import Configurators
from shared.config import load_config
configurators = Configurators(load_config(sys.argv[1]))
nm = configurators.get("nm")
try:
    nm.begin()
    nm.set_mtu(sys.argv[2], int(sys.argv[3]))
    nm.commit()
finally:
    nm.close()
"""


@pytest.fixture
def agent(host_ns: HostNs, tmp_path: Path) -> Iterator[Agent]:
    with configured_agent("nm", host_ns, tmp_path) as agent:
        yield agent


def set_mtu(agent: Agent, device: str, mtu: int) -> None:
    proc = subprocess.run(
        ["ip", "netns", "exec", agent.host.name, sys.executable, "-c", _SET_MTU,
         str(agent.config_path), device, str(mtu)],
        capture_output=True, text=True, timeout=120, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def kernel_mtu(agent: Agent, device: str) -> int:
    [link] = ip_json(agent.host.name, "link", "show", "dev", device)
    return link["mtu"]


def profile_mtu(agent: Agent, name: str) -> str:
    return agent.nm.nmcli("-g", "802-3-ethernet.mtu", "connection", "show", "id", name).strip()


def active_path(agent: Agent, name: str) -> str:
    """The D-Bus path of the profile's activation: another one once reactivated."""
    return agent.nm.nmcli("-g", "GENERAL.DBUS-PATH", "connection", "show", "--active", "id",
                          name).strip()  # fmt: skip


NET = {"nic": "veth_0", "bridged": False, "ipaddr": "192.0.2.5", "prefix": 24}


def test_a_nics_mtu_set_outside_its_network_is_in_its_profile(agent: Agent) -> None:
    assert agent.setup({"net": NET})["code"] == 0
    assert profile_mtu(agent, "veth_0") == "1500"
    activation = active_path(agent, "veth_0")
    set_mtu(agent, "veth_0", 9000)
    assert (kernel_mtu(agent, "veth_0"), profile_mtu(agent, "veth_0")) == (9000, "9000")
    assert active_path(agent, "veth_0") == activation  # not reactivated for it


def test_a_reactivated_nic_keeps_the_mtu_set_outside_its_network(agent: Agent) -> None:
    assert agent.setup({"net": NET})["code"] == 0
    set_mtu(agent, "veth_0", 9000)
    agent.nm.nmcli("connection", "up", "id", "veth_0")
    assert kernel_mtu(agent, "veth_0") == 9000
    set_mtu(agent, "veth_0", 1500)  # and back down
    agent.nm.nmcli("connection", "up", "id", "veth_0")
    assert (kernel_mtu(agent, "veth_0"), profile_mtu(agent, "veth_0")) == (1500, "1500")


def test_a_nic_without_a_profile_of_netreloads_gets_the_kernels_mtu_only(agent: Agent) -> None:
    set_mtu(agent, "veth_1", 9000)
    assert kernel_mtu(agent, "veth_1") == 9000
    assert "veth_1" not in agent.nm.connections()
