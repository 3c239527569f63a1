"""The report a big change is verified on (and served after it): built at
the cost of what differs between its devices, with the values it had.

A thousand bridges set up alike share one linkinfo dict (the decoder shares
equal ones): their options are derived from it once, not per bridge; a
bridge whose linkinfo differs gets its own. The options of a real bridge
(linkinfo captured from a 6.18 kernel) are named and spelt as before.
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import shared.netinfo_report as report_module
from shared.netinfo_opts import bridge_opts
from shared.netinfo_report import ReportBuilder, prefix_to_netmask
from tests.unit.test_netinfo_incremental import OPERATION, Host
from tests.unit.test_netinfo_report import LO, addr, fake, link

# IFLA_INFO_DATA of a bridge netreload made (stp off, forward delay 0), as
# netlink.decode gave it on 6.18
REAL_INFO = {
    "br_forward_delay": 0, "br_hello_time": 200, "br_max_age": 2000, "br_ageing_time": 30000,
    "br_stp_state": 0, "br_priority": 32768, "br_vlan_filtering": 0, "br_group_fwd_mask": 0,
    "br_root_port": 0, "br_root_path_cost": 0, "br_topology_change": 0,
    "br_topology_change_detected": 0, "br_group_addr": "01:80:c2:00:00:00",
    "br_mcast_router": 1, "br_mcast_snooping": 1, "br_mcast_query_use_ifaddr": 0,
    "br_mcast_querier": 0, "br_mcast_stats_enabled": 0, "br_mcast_hash_elasticity": 16,
    "br_mcast_hash_max": 4096, "br_mcast_last_member_cnt": 2, "br_mcast_startup_query_cnt": 2,
    "br_mcast_igmp_version": 2, "br_mcast_mld_version": 1, "br_mcast_last_member_intvl": 100,
    "br_mcast_membership_intvl": 26000, "br_mcast_querier_intvl": 25500,
    "br_mcast_query_intvl": 12500, "br_mcast_query_response_intvl": 1000,
    "br_mcast_startup_query_intvl": 3124, "br_nf_call_iptables": 0, "br_nf_call_ip6tables": 0,
    "br_nf_call_arptables": 0,
}  # fmt: skip
REAL_OPTS = {
    "forward_delay": "0", "hello_time": "200", "max_age": "2000", "ageing_time": "30000",
    "stp_state": "0", "priority": "32768", "vlan_filtering": "0", "group_fwd_mask": "0x0",
    "root_port": "0", "root_path_cost": "0", "topology_change": "0",
    "topology_change_detected": "0", "group_addr": "01:80:c2:00:00:00",
    "multicast_router": "1", "multicast_snooping": "1", "multicast_query_use_ifaddr": "0",
    "multicast_querier": "0", "multicast_stats_enabled": "0", "hash_elasticity": "16",
    "hash_max": "4096", "multicast_last_member_count": "2", "multicast_startup_query_count": "2",
    "multicast_igmp_version": "2", "multicast_mld_version": "1",
    "multicast_last_member_interval": "100", "multicast_membership_interval": "26000",
    "multicast_querier_interval": "25500", "multicast_query_interval": "12500",
    "multicast_query_response_interval": "1000", "multicast_startup_query_interval": "3124",
    "nf_call_iptables": "0", "nf_call_ip6tables": "0", "nf_call_arptables": "0",
}  # fmt: skip


def bridges(count: int, info: dict) -> list[dict]:
    return [LO] + [link(f"bn{i}", i + 2, kind="bridge", info=info) for i in range(count)]


def build(builder: ReportBuilder, links: list[dict], addresses: dict | None = None) -> dict:
    return builder.build(links, addresses or {}, [], {"networks": {}, "bonds": {}}, [], fake())


def test_the_options_of_a_real_bridge_are_named_and_spelt_as_before() -> None:
    assert bridge_opts(REAL_INFO) == REAL_OPTS
    assert bridge_opts(REAL_INFO) == REAL_OPTS  # the names remembered: the same again


def test_what_is_no_bridge_option_stays_out_of_the_options() -> None:
    info = {"br_gc_timer": 12, "other": 1, "br_vlan_filtering": True, "br_list": [1],
            "br_priority": 7}  # fmt: skip
    for _ in range(2):  # the second time from the names remembered
        assert bridge_opts(info) == {"priority": "7"}


def test_bridges_sharing_one_linkinfo_derive_their_options_once(monkeypatch) -> None:
    calls = []
    monkeypatch.setattr(report_module, "bridge_opts", lambda info: calls.append(1) or
                        bridge_opts(info))  # fmt: skip
    report = build(ReportBuilder(), bridges(200, REAL_INFO))
    assert len(calls) == 1
    assert all(b["opts"] == REAL_OPTS for b in report["bridges"].values())


def test_a_bridge_whose_linkinfo_differs_reports_its_own_options() -> None:
    builder = ReportBuilder()
    links = bridges(20, REAL_INFO)
    build(builder, links)
    links[6] = {**links[6], "info": {**REAL_INFO, "br_priority": 7}}  # bn5, its new linkinfo
    report = build(builder, links)
    assert report["bridges"]["bn5"]["opts"] == {**REAL_OPTS, "priority": "7"}
    assert all(b["opts"] == REAL_OPTS for n, b in report["bridges"].items() if n != "bn5")


def test_a_report_of_bridges_equals_one_built_bridge_by_bridge() -> None:
    """Options, netmasks and the rest as each entry's own derivation gives
    them, whichever linkinfo or prefix the bridges share."""
    infos = [REAL_INFO, {**REAL_INFO, "br_stp_state": 1}, {**REAL_INFO, "br_vlan_protocol": 0x88A8}]
    links = [LO] + [link(f"bn{i}", i + 2, kind="bridge", info=infos[i % 3]) for i in range(30)]
    addresses = {i + 2: (addr(i + 2, f"10.0.{i}.1", 8 + i % 25),) for i in range(30)}
    report = build(ReportBuilder(), links, addresses)
    for i in range(30):
        entry = report["bridges"][f"bn{i}"]
        assert entry["opts"] == bridge_opts(infos[i % 3])
        netmask = ipaddress.ip_network(f"10.0.0.0/{8 + i % 25}", strict=False).netmask
        assert entry["netmask"] == str(netmask)


@pytest.mark.parametrize("prefix", [*range(33), "24"])
def test_netmasks_are_the_prefixes_as_ipaddress_spells_them(prefix: int | str) -> None:
    assert prefix_to_netmask(prefix) == str(ipaddress.IPv4Network(f"0.0.0.0/{prefix}").netmask)


def test_a_prefix_beyond_32_is_still_refused() -> None:
    with pytest.raises(ValueError):
        prefix_to_netmask(33)


def test_a_networks_ip_information_is_read_once_with_its_bridges(monkeypatch) -> None:
    """A bridged network's IP part is its bridge's entry's, not derived again."""
    calls = []
    device_info = report_module._IpIndex.device_info

    def counted(self, link):
        calls.append(link["name"])
        return device_info(self, link)

    monkeypatch.setattr(report_module._IpIndex, "device_info", counted)
    links = bridges(50, REAL_INFO)
    addresses = {i + 2: (addr(i + 2, f"10.0.{i}.1", 24),) for i in range(50)}
    networks = {f"bn{i}": {"bridged": True, "mtu": 1500} for i in range(50)}
    report = ReportBuilder().build(links, addresses, [], {"networks": networks, "bonds": {}}, [],
                                   fake())  # fmt: skip
    assert sorted(calls) == sorted(x["name"] for x in links)  # once per device
    for i in range(50):
        net, bridge = report["networks"][f"bn{i}"], report["bridges"][f"bn{i}"]
        assert {k: net[k] for k in report_module.IP_KEYS} == {
            k: bridge[k] for k in report_module.IP_KEYS
        }
        assert net["ipv4addrs"] == [f"10.0.{i}.1/24"] and net["netmask"] == "255.255.255.0"


def test_a_builder_keeps_no_linkinfo_of_bridges_two_builds_gone() -> None:
    builder = ReportBuilder()
    infos = [{**REAL_INFO, "br_priority": p} for p in range(10)]
    for info in infos:  # each build: 20 bridges of another linkinfo
        report = build(builder, bridges(20, info))
        assert report["bridges"]["bn3"]["opts"]["priority"] == str(info["br_priority"])
    kept = [info for info, _ in (*builder._opts_of.values(), *builder._opts_before.values())]
    assert all(info is infos[-1] for info in kept)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.lists(OPERATION, min_size=1, max_size=4), min_size=1, max_size=10))
def test_a_builder_kept_across_changes_reports_what_a_fresh_one_does(batches) -> None:
    """Entries, options and networks' IP parts reused from earlier builds
    are those a fresh builder derives."""
    host, builder = Host().with_networks(3, addressed=True), ReportBuilder()
    for batch in batches:
        for op in batch:
            host.apply(op)
        host.next_version()
        kept = host.build(builder, incremental=False)
        assert kept == host.build(ReportBuilder(), incremental=False), batch
