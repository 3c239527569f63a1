"""custom.bridge_opts: parsed and validated from the bridge options' table."""

from __future__ import annotations

import pytest
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from shared.errors import ErrorCode, NetError
from shared.netinfo_report import bridge_opts
from shared.netmodel.bridge_options import bridge_opts_of, canonical_bridge_opts
from shared.netmodel.bridge_options_table import BRIDGE_OPTIONS, ValueKind
from shared.netmodel.canonical import canonicalize_network
from shared.netmodel.network import build_network


def canonical(text: str, stp: bool = False) -> str:
    return canonical_bridge_opts(text, "network n", stp)


def test_options_are_kept_sorted_and_the_last_of_a_name_wins() -> None:
    text = "priority=100  multicast_snooping=0 priority=7\tmulticast_router=2"
    assert canonical(text) == "multicast_router=2 multicast_snooping=0 priority=7"


def test_canonical_network_keeps_the_sorted_bridge_opts_and_the_rest_of_custom() -> None:
    attrs = {"nic": "eth0", "custom": {"bridge_opts": "priority=1 hash_max=512", "x": 1}}
    out = canonicalize_network("net", attrs)
    assert out["custom"] == {"bridge_opts": "hash_max=512 priority=1", "x": 1}
    assert canonicalize_network("net", out) == out  # superd re-reads it unchanged


def test_an_empty_bridge_opts_is_no_option_at_all() -> None:
    out = canonicalize_network("net", {"nic": "eth0", "custom": {"bridge_opts": ""}})
    assert build_network("net", out).top.options == ()


def test_unknown_option_is_refused_with_21_naming_it() -> None:
    with pytest.raises(NetError) as error:
        canonicalize_network("net", {"custom": {"bridge_opts": "priority=1 foo=0"}})
    assert error.value.code == ErrorCode.BAD_PARAMS and "'foo'" in error.value.message


@pytest.mark.parametrize(
    "text",
    [
        "stp_state=1",  # the network's stp attribute says it
        "hash_elasticity=4",  # ignored by the kernel
        "bridge_id=8000.000000000000",  # read-only
        "priority",  # not name=value
        "priority=",
        "=1",
        "priority=65536",
        "priority=-1",
        "priority=1e3",
        "priority=010",  # octal for sysfs, decimal for Python: ambiguous
        "hello_time=99",
        "max_age=4001",
        "multicast_router=3",
        "multicast_snooping=2",
        "multicast_igmp_version=1",
        "multicast_query_interval=99",
        "group_fwd_mask=0x4",  # LACP frames are never forwarded
        "group_addr=01:80:c2:00:00:02",
        "group_addr=01:80:c2:00:00:10",
        "group_addr=02:00:00:00:00:00",
        "vlan_protocol=0x9100",
        "default_pvid=4095",
    ],
)
def test_bad_option_or_value_is_refused_with_21(text: str) -> None:
    with pytest.raises(NetError) as error:
        canonical(text)
    assert error.value.code == ErrorCode.BAD_PARAMS


@pytest.mark.parametrize(
    "text",
    ["priority=0x10", "group_fwd_mask=0x8", "group_addr=01:80:C2:00:00:0E",
     "vlan_protocol=0x88a8", "vlan_protocol=33024", "forward_delay=0", "default_pvid=0"],
)  # fmt: skip
def test_values_sysfs_takes_are_accepted(text: str) -> None:
    assert canonical(text) == text


def test_forward_delay_with_stp_on_must_be_two_to_thirty_seconds() -> None:
    assert canonical("forward_delay=200", stp=True) == "forward_delay=200"
    with pytest.raises(NetError):
        canonical("forward_delay=100", stp=True)
    assert canonical("forward_delay=100", stp=False) == "forward_delay=100"


@pytest.mark.parametrize(
    "attrs",
    [{"nic": "eth0", "bridged": False}, {"nic": "eth0", "switch": "ovs"}],
    ids=["bridgeless", "ovs"],
)
def test_bridge_opts_without_a_linux_bridge_are_refused_with_21(attrs: dict) -> None:
    with pytest.raises(NetError) as error:
        canonicalize_network("net", {**attrs, "custom": {"bridge_opts": "priority=1"}})
    assert error.value.code == ErrorCode.BAD_PARAMS


def test_bridge_opts_not_a_string_is_refused_with_21() -> None:
    with pytest.raises(NetError) as error:
        canonicalize_network("net", {"custom": {"bridge_opts": {"priority": 1}}})
    assert error.value.code == ErrorCode.BAD_PARAMS


def test_the_bridge_of_a_network_carries_its_options_as_netlink_arguments() -> None:
    attrs = canonicalize_network("net", {
        "nic": "eth0",
        "custom": {"bridge_opts": "multicast_snooping=0 priority=0x10 vlan_protocol=0x88a8 "
                                  "group_addr=01:80:C2:00:00:0e"}})  # fmt: skip
    assert build_network("net", attrs).top.options == (
        ("br_group_addr", "01:80:c2:00:00:0e"),
        ("br_mcast_snooping", 0),
        ("br_priority", 16),
        ("br_vlan_protocol", 0x88A8),
    )
    assert bridge_opts_of(attrs) == dict(build_network("net", attrs).top.options)


def test_every_option_is_a_bridge_attribute_of_the_pinned_pyroute2() -> None:
    attributes = {name.lower().removeprefix("ifla_") for name, *_ in
                  ifinfmsg.ifinfo.bridge_data.nla_map}  # fmt: skip
    assert {o.netlink for o in BRIDGE_OPTIONS.values()} <= attributes


def test_the_report_calls_every_option_by_its_name_in_the_table() -> None:
    """What bridge_opts sets is what the capabilities' opts show, by name."""
    values = {ValueKind.GROUP_ADDR: "01:80:c2:00:00:00", ValueKind.PROTOCOL: 0x8100}
    info = {o.netlink: values.get(o.kind, o.minimum) for o in BRIDGE_OPTIONS.values()}
    assert set(bridge_opts(info)) == set(BRIDGE_OPTIONS)
