"""The iproute2 configurator against a real kernel, inside a namespace.

Every call goes through ``tests.functional.ns_exec`` under ``ip netns
exec`` (the configurator works on the namespace it runs in); every
assertion reads the kernel back with ``ip -n NS -j`` or, for idempotence,
listens to the namespace's netlink events. Bonds and VLANs need kernel
modules this host lacks: they are the VM lane's.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import pytest
from pyroute2 import IPRoute
from pyroute2.netlink.rtnl import (
    RTMGRP_IPV4_IFADDR,
    RTMGRP_IPV4_ROUTE,
    RTMGRP_IPV4_RULE,
    RTMGRP_IPV6_IFADDR,
    RTMGRP_IPV6_ROUTE,
    RTMGRP_IPV6_RULE,
    RTMGRP_LINK,
)

from tests.functional.conftest import HostNs, ip_json, ipv6_conf

REPO = Path(__file__).resolve().parents[2]
EVENT_GROUPS = (
    RTMGRP_LINK
    | RTMGRP_IPV4_IFADDR
    | RTMGRP_IPV6_IFADDR
    | RTMGRP_IPV4_ROUTE
    | RTMGRP_IPV6_ROUTE
    | RTMGRP_IPV4_RULE
    | RTMGRP_IPV6_RULE
)

STATIC_IP = {
    "ipaddr": "10.5.0.2",
    "netmask": "255.255.255.0",
    "gateway": "10.5.0.1",
    "defaultRoute": True,
    "ipv6addr": "2001:db8:5::2/64",
    "ipv6gateway": "2001:db8:5::1",
}


# -- driving the configurator --------------------------------------------


def run_calls(ns: str, calls: list[dict], resolv_conf: Path | None = None) -> dict:
    """Run ``calls`` in ``ns``; the runner's JSON answer (results or error)."""
    args = [sys.executable, "-m", "tests.functional.ns_exec"]
    if resolv_conf is not None:
        args += ["--resolv-conf", str(resolv_conf)]
    proc = subprocess.run(
        ["ip", "netns", "exec", ns, *args, json.dumps(calls)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    if not proc.stdout.strip():
        raise AssertionError(f"ns_exec printed nothing; stderr:\n{proc.stderr}")
    return json.loads(proc.stdout)


def apply(ns: str, *calls: dict, resolv_conf: Path | None = None) -> list:
    answer = run_calls(ns, list(calls), resolv_conf)
    assert "results" in answer, answer
    return answer["results"]


def nic(name: str, mtu: int = 1500) -> dict:
    return {"kind": "nic", "name": name, "mtu": mtu}


def bridge(name: str, port: dict | None = None, **attrs: Any) -> dict:
    return {"kind": "bridge", "name": name, "port": port, **attrs}


def call(method: str, device: Any, **args: Any) -> dict:
    return {"call": method, "device": device, **args}


# -- reading the kernel back ---------------------------------------------


def link(ns: str, name: str) -> dict:
    return ip_json(ns, "-d", "link", "show", "dev", name)[0]


def link_names(ns: str) -> set[str]:
    return {entry["ifname"] for entry in ip_json(ns, "link", "show")}


def addresses(ns: str, device: str, family: str = "inet") -> list[str]:
    entries = ip_json(ns, "addr", "show", "dev", device)
    return sorted(
        f"{a['local']}/{a['prefixlen']}"
        for entry in entries
        for a in entry.get("addr_info", [])
        if a["family"] == family and a.get("scope") == "global"
    )


def default_routes(ns: str, family: str = "-4", table: str = "main") -> list[dict]:
    routes = ip_json(ns, family, "route", "show", "table", table)
    return [r for r in routes if r["dst"] == "default"]


def source_rules(ns: str, subnet: str) -> list[dict]:
    """The rules ``from <subnet>`` and ``to <subnet>``, in that order."""
    src, _, plen = subnet.partition("/")
    rules = ip_json(ns, "-4", "rule", "show")
    return [r for r in rules if r.get("src") == src and str(r.get("srclen")) == plen] + [
        r for r in rules if r.get("dst") == src and str(r.get("dstlen")) == plen
    ]


class EventMonitor:
    """A netlink socket in the namespace, bound to link/address/route/rule
    events (a separate socket: no request is ever sent on it)."""

    def __init__(self, ns: str) -> None:
        self.ipr = IPRoute(netns=ns, flags=0)
        self.ipr.bind(groups=EVENT_GROUPS)

    def read(self, quiet: float) -> list[str]:
        """Events until none came for ``quiet`` seconds."""
        events = []
        while select.select([self.ipr], [], [], quiet)[0]:
            for msg in self.ipr.get():
                name = msg.get("IFLA_IFNAME") or msg.get("IFA_ADDRESS") or msg.get("RTA_DST")
                events.append(f"{msg['event']} {name}")
        return events

    def settle(self, quiet: float = 1.5, limit: float = 20.0) -> None:
        """Wait until the namespace is quiet (IPv6 DAD, link state ...)."""
        deadline = time.monotonic() + limit
        while self.read(quiet):
            assert time.monotonic() < deadline, "the namespace never became quiet"

    def close(self) -> None:
        self.ipr.close()


@pytest.fixture
def monitor(host_ns: HostNs):
    mon = EventMonitor(host_ns.name)
    try:
        yield mon
    finally:
        mon.close()


# -- bridges ---------------------------------------------------------------


def test_bridge_enslaves_its_port_with_stp_and_forward_delay(host_ns):
    ns = host_ns.name
    apply(ns, call("create_bridge", bridge("net1", nic("veth_0"), stp=True, forward_delay=4)))
    br = link(ns, "net1")
    assert br["linkinfo"]["info_kind"] == "bridge"
    assert br["linkinfo"]["info_data"]["stp_state"] == 1
    assert br["linkinfo"]["info_data"]["forward_delay"] == 400  # 1/100 s
    assert "UP" in br["flags"]
    port = link(ns, "veth_0")
    assert port["master"] == "net1" and "UP" in port["flags"]


def test_forward_delay_without_stp_is_kept_as_given(host_ns):
    ns = host_ns.name
    apply(ns, call("create_bridge", bridge("net1", nic("veth_0"), forward_delay=7)))
    data = link(ns, "net1")["linkinfo"]["info_data"]
    assert (data["stp_state"], data["forward_delay"]) == (0, 700)


def test_stp_bridge_with_zero_forward_delay_gets_the_kernel_minimum(host_ns):
    ns = host_ns.name
    apply(ns, call("create_bridge", bridge("net1", nic("veth_0"), stp=True, forward_delay=0)))
    assert link(ns, "net1")["linkinfo"]["info_data"]["forward_delay"] == 200


def test_existing_bridge_is_adjusted_not_recreated(host_ns):
    ns = host_ns.name
    apply(ns, call("create_bridge", bridge("net1", nic("veth_0"), stp=True, forward_delay=4)))
    before = link(ns, "net1")["ifindex"]
    apply(ns, call("create_bridge", bridge("net1", nic("veth_0"), stp=False, mtu=1400)))
    after = link(ns, "net1")
    assert after["ifindex"] == before
    data = after["linkinfo"]["info_data"]
    assert (data["stp_state"], data["forward_delay"], after["mtu"]) == (0, 0, 1400)


def test_nicless_bridge_is_up_without_ports(host_ns):
    ns = host_ns.name
    apply(ns, call("create_bridge", bridge("net1", None, mtu=9000)))
    br = link(ns, "net1")
    assert "UP" in br["flags"] and br["mtu"] == 9000
    assert not [e for e in ip_json(ns, "link", "show") if e.get("master") == "net1"]


def test_bridge_mtu_change_reaches_its_port(host_ns):
    ns = host_ns.name
    apply(ns, call("create_bridge", bridge("net1", nic("veth_0"))))
    apply(
        ns,
        call("setup_nic", nic("veth_0", 9000)),
        call("create_bridge", bridge("net1", nic("veth_0", 9000), mtu=9000)),
    )
    assert (link(ns, "net1")["mtu"], link(ns, "veth_0")["mtu"]) == (9000, 9000)


def test_bridge_without_ipv6_has_ipv6_disabled_and_no_link_local_address(host_ns):
    """The production agent's rule: a network asking for no IPv6 has none,
    so no router advertisement is listened to either."""
    ns = host_ns.name
    apply(ns, call("create_bridge", bridge("net1", nic("veth_0"))))
    assert ipv6_conf(ns, "net1") == "1"
    assert ip_json(ns, "-6", "addr", "show", "dev", "net1") in ([], [{}])


def test_bridge_with_static_ipv6_ignores_router_advertisements(host_ns):
    ns = host_ns.name
    ip = {"ipv6addr": "2001:db8:5::2/64"}
    apply(ns, call("create_bridge", bridge("net1", nic("veth_0"), ip=ip)))
    assert (ipv6_conf(ns, "net1"), ipv6_conf(ns, "net1", "accept_ra")) == ("0", "0")


def test_delete_bridge_removes_it_and_frees_the_port(host_ns):
    ns = host_ns.name
    apply(ns, call("create_bridge", bridge("net1", nic("veth_0"))))
    apply(ns, call("delete_bridge", bridge("net1")))
    assert "net1" not in link_names(ns)
    assert "master" not in link(ns, "veth_0")


# -- NICs and MTU -----------------------------------------------------------


def test_setup_nic_brings_it_up_with_its_mtu(host_ns):
    ns = host_ns.name
    host_ns.ip("link", "set", "veth_1", "down")
    apply(ns, call("setup_nic", nic("veth_1", 4000)))
    port = link(ns, "veth_1")
    assert "UP" in port["flags"] and port["mtu"] == 4000


def test_set_mtu_changes_the_device_mtu(host_ns):
    apply(host_ns.name, {"call": "set_mtu", "device": "veth_1", "mtu": 2000})
    assert link(host_ns.name, "veth_1")["mtu"] == 2000


def test_release_nic_flushes_its_addresses_and_keeps_it_up(host_ns):
    ns = host_ns.name
    host_ns.ip("addr", "add", "10.8.0.1/24", "dev", "veth_1")
    host_ns.ip("addr", "add", "2001:db8:8::1/64", "dev", "veth_1", "nodad")
    apply(ns, call("release_nic", nic("veth_1")))
    assert addresses(ns, "veth_1") == [] and addresses(ns, "veth_1", "inet6") == []
    assert "UP" in link(ns, "veth_1")["flags"]


# -- IP configuration --------------------------------------------------------


def _bridged_network(ns: str, ip: dict, resolv_conf: Path | None = None) -> None:
    apply(
        ns,
        call("create_bridge", bridge("net1", nic("veth_0"), ip=ip)),
        call("set_ip", "net1", ip=ip),
        resolv_conf=resolv_conf,
    )


def test_static_ipv4_and_ipv6_addresses_are_set(host_ns):
    ns = host_ns.name
    _bridged_network(ns, STATIC_IP)
    assert addresses(ns, "net1") == ["10.5.0.2/24"]
    assert addresses(ns, "net1", "inet6") == ["2001:db8:5::2/64"]


def test_static_ipv4_replaces_other_addresses_on_a_nic(host_ns):
    ns = host_ns.name
    host_ns.ip("addr", "add", "10.9.9.9/24", "dev", "veth_1")
    host_ns.ip("addr", "add", "10.6.0.7/24", "dev", "veth_1")
    apply(ns, call("set_ip", "veth_1", ip={"ipaddr": "10.6.0.2", "netmask": "255.255.255.0"}))
    assert addresses(ns, "veth_1") == ["10.6.0.2/24"]


def test_default_route_network_gets_the_only_default_route(host_ns):
    ns = host_ns.name
    host_ns.ip("addr", "add", "10.7.0.2/24", "dev", "veth_1")
    host_ns.ip("route", "add", "default", "via", "10.7.0.1", "dev", "veth_1")
    host_ns.ip("route", "add", "default", "via", "10.7.0.1", "dev", "veth_1", "metric", "50")
    _bridged_network(ns, STATIC_IP)
    routes = default_routes(ns)
    assert [(r["gateway"], r["dev"]) for r in routes] == [("10.5.0.1", "net1")]


def test_gateway_without_default_route_goes_to_a_source_routing_table(host_ns):
    ns = host_ns.name
    _bridged_network(ns, {**STATIC_IP, "defaultRoute": False})
    assert default_routes(ns) == []
    table = str(zlib.adler32(b"net1"))  # the production agent's table of device net1
    assert [(r["table"], r["priority"]) for r in source_rules(ns, "10.5.0.0/24")] == [
        (table, 3200), (table, 3200)
    ]
    routes = ip_json(ns, "-4", "route", "show", "table", table)
    assert {(r["dst"], r.get("gateway"), r["dev"], r.get("prefsrc")) for r in routes} == {
        ("default", "10.5.0.1", "net1", None),
        ("10.5.0.0/24", None, "net1", "10.5.0.2"),
    }


def test_default_route_network_has_no_table_of_its_own(host_ns):
    ns = host_ns.name
    _bridged_network(ns, {**STATIC_IP, "defaultRoute": False})
    apply(ns, call("set_ip", "net1", ip=STATIC_IP, previous={**STATIC_IP, "defaultRoute": False}))
    assert source_rules(ns, "10.5.0.0/24") == []
    assert default_routes(ns, table=str(zlib.adler32(b"net1"))) == []
    assert [r["gateway"] for r in default_routes(ns)] == ["10.5.0.1"]


def test_a_new_address_moves_the_source_rules_to_its_subnet(host_ns):
    ns = host_ns.name
    old = {**STATIC_IP, "defaultRoute": False}
    _bridged_network(ns, old)
    new = {**old, "ipaddr": "10.6.0.2", "gateway": "10.6.0.1"}
    apply(ns, call("set_ip", "net1", ip=new, previous=old))
    assert source_rules(ns, "10.5.0.0/24") == []
    assert len(source_rules(ns, "10.6.0.0/24")) == 2
    routes = ip_json(ns, "-4", "route", "show", "table", str(zlib.adler32(b"net1")))
    assert {(r["dst"], r.get("gateway")) for r in routes} == {
        ("default", "10.6.0.1"), ("10.6.0.0/24", None)
    }


def test_gateway_off_the_subnet_is_installed_onlink(host_ns):
    ns = host_ns.name
    _bridged_network(ns, {**STATIC_IP, "gateway": "10.99.0.1"})
    [route] = default_routes(ns)
    assert route["gateway"] == "10.99.0.1" and "onlink" in route["flags"]


def test_ipv6_gateway_becomes_the_ipv6_default_route(host_ns):
    ns = host_ns.name
    _bridged_network(ns, STATIC_IP)
    routes = default_routes(ns, "-6")
    assert [(r["gateway"], r["dev"]) for r in routes] == [("2001:db8:5::1", "net1")]


def test_ipv6_autoconf_enables_router_advertisements_and_slaac(host_ns):
    ns = host_ns.name
    _bridged_network(ns, {"ipv6autoconf": True})
    assert (ipv6_conf(ns, "net1", "accept_ra"), ipv6_conf(ns, "net1", "autoconf")) == ("1", "1")


def test_network_without_autoconf_disables_it_again(host_ns):
    ns = host_ns.name
    _bridged_network(ns, {"ipv6autoconf": True})
    apply(ns, call("set_ip", "net1", ip={}, previous={"ipv6autoconf": True}))
    assert (ipv6_conf(ns, "net1", "accept_ra"), ipv6_conf(ns, "net1", "autoconf")) == ("0", "0")


def test_nameservers_of_the_default_route_network_are_written(host_ns, tmp_path):
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 192.0.2.99\n")
    ip = {**STATIC_IP, "nameservers": ["192.0.2.53", "2001:db8::53"]}
    _bridged_network(host_ns.name, ip, resolv)
    assert resolv.read_text() == (
        "# Generated by netreload\nnameserver 192.0.2.53\nnameserver 2001:db8::53\n"
    )


def test_unchanged_nameservers_leave_resolv_conf_alone(host_ns, tmp_path):
    resolv = tmp_path / "resolv.conf"
    ip = {**STATIC_IP, "nameservers": ["192.0.2.53"]}
    _bridged_network(host_ns.name, ip, resolv)
    inode = os.stat(resolv).st_ino
    _bridged_network(host_ns.name, ip, resolv)
    assert os.stat(resolv).st_ino == inode  # an atomic rewrite is a new file


def test_changing_the_address_removes_the_previous_one(host_ns):
    ns = host_ns.name
    _bridged_network(ns, STATIC_IP)
    new = {**STATIC_IP, "ipaddr": "10.5.0.3", "ipv6addr": "2001:db8:5::3/64"}
    apply(ns, call("set_ip", "net1", ip=new, previous=STATIC_IP))
    assert addresses(ns, "net1") == ["10.5.0.3/24"]
    assert addresses(ns, "net1", "inet6") == ["2001:db8:5::3/64"]


def test_losing_the_default_route_moves_the_gateway_to_source_routing(host_ns):
    ns = host_ns.name
    _bridged_network(ns, STATIC_IP)
    demoted = {**STATIC_IP, "defaultRoute": False}
    apply(ns, call("set_ip", "net1", ip=demoted, previous=STATIC_IP))
    assert default_routes(ns) == []
    assert len(source_rules(ns, "10.5.0.0/24")) == 2


def test_clear_ip_removes_addresses_routes_and_rules(host_ns):
    ns = host_ns.name
    ip = {**STATIC_IP, "defaultRoute": False}
    _bridged_network(ns, ip)
    [rule, _] = source_rules(ns, "10.5.0.0/24")
    apply(ns, call("clear_ip", "net1", ip=ip))
    assert addresses(ns, "net1") == [] and addresses(ns, "net1", "inet6") == []
    assert default_routes(ns, "-6") == []
    assert source_rules(ns, "10.5.0.0/24") == []
    assert ip_json(ns, "-4", "route", "show", "table", str(rule["table"])) == []


def test_clear_ip_of_a_default_route_network_removes_its_default_route(host_ns):
    ns = host_ns.name
    _bridged_network(ns, STATIC_IP)
    apply(ns, call("clear_ip", "net1", ip=STATIC_IP))
    assert default_routes(ns) == [] and default_routes(ns, "-6") == []
    assert source_rules(ns, "10.5.0.0/24") == []


def test_clear_ip_after_the_bridge_is_gone_still_removes_the_rule(host_ns):
    ns = host_ns.name
    ip = {**STATIC_IP, "defaultRoute": False}
    _bridged_network(ns, ip)
    apply(ns, call("delete_bridge", bridge("net1")), call("clear_ip", "net1", ip=ip))
    assert source_rules(ns, "10.5.0.0/24") == []


# -- idempotence ---------------------------------------------------------------


def test_deleting_what_is_gone_is_not_an_error(host_ns):
    vlan = {"kind": "vlan", "name": "veth_0.10", "tag": 10, "lower": nic("veth_0")}
    bond = {"kind": "bond", "name": "bond7", "slaves": ["veth_0"]}
    results = apply(
        host_ns.name,
        call("delete_bridge", bridge("net9")),
        call("delete_vlan", vlan),
        call("delete_bond", bond),
        call("clear_ip", "net9", ip=STATIC_IP),
    )
    assert results == [None] * 4


def test_reapplying_the_same_state_causes_no_netlink_event(host_ns, monitor, tmp_path):
    ns = host_ns.name
    resolv = tmp_path / "resolv.conf"
    ip = {**STATIC_IP, "nameservers": ["192.0.2.53"]}
    other = {"ipaddr": "10.6.0.2", "netmask": "255.255.255.0", "gateway": "10.6.0.1"}
    calls = [
        call("setup_nic", nic("veth_0", 9000)),
        call("create_bridge", bridge("net1", nic("veth_0", 9000), mtu=9000, ip=ip)),
        call("set_ip", "net1", ip=ip),
        call("setup_nic", nic("veth_1")),
        call("set_ip", "veth_1", ip=other),
        call("create_bridge", bridge("net2", None, stp=True, forward_delay=5)),
    ]
    apply(ns, *calls, resolv_conf=resolv)
    assert monitor.read(0.5), "the monitor saw nothing of the first apply"
    monitor.settle()
    apply(ns, *calls, resolv_conf=resolv)
    assert monitor.read(1.0) == []


# -- errors ----------------------------------------------------------------------


def test_missing_nic_is_error_23(host_ns):
    answer = run_calls(host_ns.name, [call("setup_nic", nic("veth_9"))])
    assert answer["code"] == 23 and "veth_9" in answer["message"]


def test_missing_bridge_port_is_error_23_and_creates_nothing(host_ns):
    answer = run_calls(host_ns.name, [call("create_bridge", bridge("net1", nic("veth_9")))])
    assert answer["code"] == 23
    assert "net1" not in link_names(host_ns.name)


def test_missing_vlan_lower_device_is_error_23(host_ns):
    vlan = {"kind": "vlan", "name": "veth_9.10", "tag": 10, "lower": nic("veth_9")}
    assert run_calls(host_ns.name, [call("create_vlan", vlan)])["code"] == 23


def test_kernel_refusal_is_error_29_with_the_kernel_message(host_ns):
    answer = run_calls(host_ns.name, [{"call": "set_mtu", "device": "veth_0", "mtu": 70000}])
    assert answer == {
        "code": 29,
        "message": "veth_0: set mtu 70000: Invalid argument",
        "call": 0,
    }


def test_device_of_another_kind_is_not_taken_over(host_ns):
    answer = run_calls(host_ns.name, [call("create_bridge", bridge("veth_1"))])
    assert answer["code"] == 29 and "not a bridge" in answer["message"]
    assert link(host_ns.name, "veth_1")["linkinfo"]["info_kind"] == "veth"
