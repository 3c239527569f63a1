"""The struct codecs of netlink.decode and netlink.encode against pyroute2's own."""

from __future__ import annotations

import socket

import pytest
from pyroute2 import IPBatch
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from netlink import constants, decode, encode
from superd.netinfo import link_to_dict

REQUESTS = [
    ("link", ("set",), {"index": 5, "mtu": 1400}),
    ("link", ("set",), {"index": 5, "state": "up"}),
    ("link", ("set",), {"index": 5, "state": "down"}),
    ("link", ("set",), {"index": 5, "master": 7}),
    ("link", ("set",), {"index": 5, "master": 0}),
    ("link", ("set",), {"index": 5, "mtu": 9000, "state": "up"}),
    ("link", ("set",), {"index": 5, "ifalias": "netreload"}),
    ("link", ("add",), {"ifname": "br0", "kind": "bridge", "br_stp_state": 0,
                        "br_forward_delay": 0, "mtu": 1500}),
    ("link", ("add",), {"ifname": "br1", "kind": "bridge", "br_stp_state": 1,
                        "br_forward_delay": 1500, "mtu": 9000}),
    ("link", ("add",), {"ifname": "br2", "kind": "bridge", "br_stp_state": 0,
                        "br_forward_delay": 0, "mtu": 1500, "state": "up"}),
    ("link", ("del",), {"index": 5}),
    ("addr", ("add",), {"index": 5, "family": socket.AF_INET, "address": "10.0.0.1",
                        "prefixlen": 24}),
    ("addr", ("add",), {"index": 5, "family": socket.AF_INET6, "address": "2001:db8::1",
                        "prefixlen": 64}),
    ("addr", ("del",), {"index": 5, "family": socket.AF_INET, "address": "10.0.0.1",
                        "prefixlen": 24}),
    ("addr", ("del",), {"index": 9, "family": socket.AF_INET6, "address": "fd00::9",
                        "prefixlen": 128}),
]  # fmt: skip


def without_seq_and_pid(data: bytes) -> bytes:
    return data[:8] + bytes(8) + data[16:]


@pytest.mark.parametrize("method,args,kwargs", REQUESTS)
def test_encoding_is_byte_for_byte_pyroute2s(method: str, args: tuple, kwargs: dict) -> None:
    batch = IPBatch()
    getattr(batch, method)(*args, **kwargs)
    expected = without_seq_and_pid(bytes(batch.batch))
    assert encode.encode(method, args, kwargs) == expected


@pytest.mark.parametrize(
    "method,args,kwargs",
    [("link", ("set",), {"index": 5, "address": "00:11:22:33:44:55"}),
     ("link", ("add",), {"ifname": "v", "kind": "vlan", "link": 2, "vlan_id": 3}),
     ("route", ("add",), {"dst": "default", "gateway": "10.0.0.1"}),
     ("addr", ("add",), {"index": 5, "family": socket.AF_INET, "address": "x", "prefixlen": 8}),
     ("link", ("set",), {"ifname": "br0", "state": "up"})],
)  # fmt: skip
def test_other_requests_are_left_to_pyroute2(method: str, args: tuple, kwargs: dict) -> None:
    assert encode.encode(method, args, kwargs) is None


def test_a_link_message_decodes_as_superd_netinfo_does() -> None:
    msg = ifinfmsg()
    msg["index"], msg["flags"], msg["ifi_type"] = 7, 0x11043, 1
    msg["attrs"] = [
        ["IFLA_IFNAME", "br0"], ["IFLA_MTU", 9000], ["IFLA_ADDRESS", "52:54:00:12:34:56"],
        ["IFLA_OPERSTATE", "UP"], ["IFLA_MASTER", 3],
        ["IFLA_LINKINFO", {"attrs": [
            ["IFLA_INFO_KIND", "bridge"],
            ["IFLA_INFO_DATA", {"attrs": [["IFLA_BR_STP_STATE", 1],
                                          ["IFLA_BR_FORWARD_DELAY", 1500],
                                          ["IFLA_BR_GROUP_ADDR", "01:80:c2:00:00:00"]]}],
        ]}],
    ]  # fmt: skip
    msg["header"]["type"] = constants.RTM_NEWLINK
    msg.encode()
    (decoded,) = list(decode.messages(bytes(msg.data)))
    reference = ifinfmsg(bytes(msg.data))
    reference.decode()
    assert decoded.body == link_to_dict(reference)
    assert decoded.body["info"] == {"br_stp_state": 1, "br_forward_delay": 1500,
                                    "br_group_addr": "01:80:c2:00:00:00"}  # fmt: skip


def test_a_truncated_message_is_refused() -> None:
    with pytest.raises(ValueError):
        list(decode.messages(constants.NLMSG.pack(64, constants.RTM_NEWLINK, 0, 1, 0)))


def _decoded_both_ways(attrs: list) -> tuple[dict, dict]:
    msg = ifinfmsg()
    msg["index"], msg["flags"], msg["ifi_type"] = 9, 0x11043, 1
    msg["attrs"] = attrs
    msg["header"]["type"] = constants.RTM_NEWLINK
    msg.encode()
    (decoded,) = list(decode.messages(bytes(msg.data)))
    reference = ifinfmsg(bytes(msg.data))
    reference.decode()
    return decoded.body, link_to_dict(reference)


def test_a_bonds_8023ad_aggregator_decodes_as_superd_netinfo_does() -> None:
    ours, pyroute2s = _decoded_both_ways([
        ["IFLA_IFNAME", "bond0"],
        ["IFLA_LINKINFO", {"attrs": [
            ["IFLA_INFO_KIND", "bond"],
            ["IFLA_INFO_DATA", {"attrs": [
                ["IFLA_BOND_MODE", 4],
                ["IFLA_BOND_AD_INFO", {"attrs": [["IFLA_BOND_AD_INFO_AGGREGATOR", 2],
                                                 ["IFLA_BOND_AD_INFO_NUM_PORTS", 2],
                                                 ["IFLA_BOND_AD_INFO_PARTNER_MAC",
                                                  "52:54:00:aa:bb:cc"]]}],
            ]}],
        ]}],
    ])  # fmt: skip
    assert ours == pyroute2s
    assert ours["info"] == {"bond_mode": 4, "bond_ad_info_aggregator": 2,
                            "bond_ad_info_partner_mac": "52:54:00:aa:bb:cc"}  # fmt: skip


def test_a_bond_slaves_permanent_address_decodes_as_superd_netinfo_does() -> None:
    ours, pyroute2s = _decoded_both_ways([
        ["IFLA_IFNAME", "eth0"], ["IFLA_MASTER", 3],
        ["IFLA_LINKINFO", {"attrs": [
            ["IFLA_INFO_SLAVE_KIND", "bond"],
            ["IFLA_INFO_SLAVE_DATA", {"attrs": [["IFLA_BOND_SLAVE_STATE", 0],
                                                ["IFLA_BOND_SLAVE_LINK_FAILURE_COUNT", 7],
                                                ["IFLA_BOND_SLAVE_PERM_HWADDR",
                                                 "52:54:00:00:00:01"],
                                                ["IFLA_BOND_SLAVE_AD_AGGREGATOR_ID", 2]]}],
        ]}],
    ])  # fmt: skip
    assert ours == pyroute2s
    assert ours["slave_info"] == {"bond_slave_perm_hwaddr": "52:54:00:00:00:01",
                                  "bond_slave_ad_aggregator_id": 2}  # fmt: skip
