"""custom.bridge_opts through setupNetworks: set on the network's bridge
through netlink, read back with ``ip -j -d link show`` in the namespace,
reported in the capabilities, refused (code 21) before any change when
unknown or out of range, and rolled back with the network."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.agent import Agent
from tests.functional.configurator_params import configured_agent
from tests.functional.conftest import HostNs, ip_json
from tests.functional.contract import assert_caps_contract

OPTS = ("multicast_snooping=0 multicast_router=0 priority=100 group_fwd_mask=0x8 "
        "group_addr=01:80:c2:00:00:0e hello_time=300")
FAIL_AFTER = "NETRELOAD_TEST_FAIL_AFTER_OPS"


# The ifcfg configurator writes no bridge option but the forward delay
# (there is no ifcfg key for the others): it refuses them, tested below.
@pytest.fixture(params=("iproute2", "nm"))
def agent(request: pytest.FixtureRequest, host_ns: HostNs, tmp_path: Path) -> Iterator[Agent]:
    with configured_agent(request.param, host_ns, tmp_path / "agent") as agent:
        yield agent


def test_ifcfg_refuses_bridge_opts_it_cannot_write_with_21_and_changes_nothing(
    host_ns: HostNs, tmp_path: Path
) -> None:
    with configured_agent("ifcfg", host_ns, tmp_path / "agent") as agent:
        assert agent.setup({"keep": net(None, nic="veth_1", ipaddr="10.31.0.1")})["code"] == 0
        kernel_before, running_before = agent.kernel_state(), agent.running()
        result = agent.setup({"brnet": net("priority=100")})
        assert result["code"] == 21, result
        assert "priority" in result["message"]
        assert agent.kernel_state() == kernel_before
        assert agent.running() == running_before


def bridge_data(ns: str, name: str) -> dict:
    """The bridge's IFLA_BR_* attributes as ``ip -d`` names them."""
    (link,) = ip_json(ns, "-d", "link", "show", "dev", name)
    assert link["linkinfo"]["info_kind"] == "bridge"
    return link["linkinfo"]["info_data"]


def net(opts: str | None = None, **attrs: object) -> dict:
    out: dict = {"nic": "veth_0", "ipaddr": "10.30.0.1", "prefix": 24, **attrs}
    if opts is not None:
        out["custom"] = {"bridge_opts": opts}
    return out


def test_bridge_opts_are_set_on_the_networks_bridge(agent: Agent) -> None:
    assert agent.setup({"brnet": net(OPTS)})["code"] == 0
    data = bridge_data(agent.host.name, "brnet")
    assert (data["mcast_snooping"], data["mcast_router"], data["priority"]) == (0, 0, 100)
    assert int(data["group_fwd_mask"], 16) == 0x8
    assert (data["group_addr"], data["hello_time"]) == ("01:80:c2:00:00:0e", 300)


def test_bridge_opts_are_reported_as_the_agent_reports_them(agent: Agent) -> None:
    assert agent.setup({"brnet": net(OPTS)})["code"] == 0
    opts = assert_caps_contract(agent.caps())["bridges"]["brnet"]["opts"]
    for pair in OPTS.split():  # what the agent's own tests assert
        name, value = pair.split("=")
        assert opts[name] == value
    assert opts["stp_state"] == "0" and opts["multicast_querier"] == "0"


def test_bridge_opts_are_kept_sorted_in_the_running_configuration(agent: Agent) -> None:
    assert agent.setup({"brnet": net("priority=100 multicast_snooping=0")})["code"] == 0
    custom = agent.running()["nets"]["brnet"]["custom"]
    assert custom == {"bridge_opts": "multicast_snooping=0 priority=100"}


@pytest.mark.parametrize(
    "opts", ["multicast_snooping=0 foo=0", "priority=70000", "multicast_router=9", "stp_state=1"]
)
def test_a_bad_bridge_option_is_refused_with_21_and_changes_nothing(agent: Agent, opts) -> None:
    assert agent.setup({"keep": net(None, nic="veth_1", ipaddr="10.31.0.1")})["code"] == 0
    kernel_before, running_before = agent.kernel_state(), agent.running()
    result = agent.setup({"brnet": net(opts), "keep": {"remove": True}})
    assert result["code"] == 21, result
    assert agent.kernel_state() == kernel_before
    assert agent.running() == running_before


def test_editing_bridge_opts_sets_the_new_ones_and_drops_the_old(agent: Agent) -> None:
    assert agent.setup({"brnet": net("multicast_snooping=0 priority=100")})["code"] == 0
    assert agent.setup({"brnet": net("priority=200")})["code"] == 0
    data = bridge_data(agent.host.name, "brnet")
    assert (data["priority"], data["mcast_snooping"]) == (200, 1)  # the kernel's default again


def test_a_failed_edit_rolls_the_bridge_opts_back(agent: Agent) -> None:
    assert agent.setup({"brnet": net("multicast_snooping=0 priority=100")})["code"] == 0
    # remove brnet, add brnet (new options set), then the failure before adding zz
    result = agent.setup({"brnet": net("priority=200 multicast_querier=1"), "zz": {}},
                         env={FAIL_AFTER: "2"})  # fmt: skip
    assert result["code"] == 29 and "injected" in result["message"], result
    data = bridge_data(agent.host.name, "brnet")
    assert (data["priority"], data["mcast_snooping"], data["mcast_querier"]) == (100, 0, 0)
    assert agent.running()["nets"]["brnet"]["custom"]["bridge_opts"] == (
        "multicast_snooping=0 priority=100")  # fmt: skip


def test_an_option_the_kernel_refuses_fails_with_21_and_is_rolled_back(agent: Agent) -> None:
    probe = net(None, nic="veth_1", ipaddr="10.32.0.1")
    assert agent.setup({"probe": probe})["code"] == 0
    if "vlan_protocol" in bridge_data(agent.host.name, "probe"):
        pytest.skip("this kernel filters VLANs on bridges: it takes vlan_filtering=1")
    kernel_before, running_before = agent.kernel_state(), agent.running()
    result = agent.setup({"brnet": net("vlan_filtering=1")})
    if agent.configurator == "nm":
        # NetworkManager only says the bridge failed to activate: 29, not 21
        assert result["code"] == 29 and "could not activate brnet" in result["message"], result
    else:
        assert result["code"] == 21 and "bridge_opts" in result["message"], result
    assert agent.kernel_state() == kernel_before
    assert agent.running() == running_before
