"""read_capabilities against a real kernel, checked with ``ip -j`` read
independently. Everything happens inside the namespaces of ``make_host_ns``."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pyroute2 import IPRoute

from shared.config import Config
from superd.netinfo import read_capabilities
from tests.functional.contract import assert_caps_contract

N_BRIDGES = 50
PORTS = {0: "veth_0", 1: "veth_1", 2: "veth_2"}  # bridge index → its port
COMPARED = (
    "iface",
    "addr",
    "netmask",
    "ipv4addrs",
    "ipv6addrs",
    "mtu",
    "ports",
    "gateway",
    "ipv4defaultroute",
)


def _open(ns: str, **kwargs: Any) -> IPRoute:
    return IPRoute(netns=ns, flags=0, **kwargs)  # flags=0: never create a namespace


def _config(tmp_path: Path) -> Config:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("# test\nnameserver 192.0.2.1\nnameserver 2001:db8::53\n")
    return Config(resolv_conf=resolv, fake_nics=("dummy_*", "veth_*"))


def _bridges_batch(first: int, count: int) -> list[str]:
    commands = []
    for i in range(first, first + count):
        commands += [
            f"link add net{i} type bridge",
            f"addr add 10.50.{i}.1/24 dev net{i}",
            f"link set net{i} up",
        ]
    return commands


def _expected_from_ip(ip_json: Callable[..., Any], ns: str) -> dict[str, dict]:
    """What ``ip`` says about every device, in the report's terms."""
    links = ip_json(ns, "link", "show")
    addrs = {entry["ifname"]: entry.get("addr_info", []) for entry in ip_json(ns, "addr", "show")}
    routes = ip_json(ns, "route", "show", "table", "main")
    defaults = [r for r in routes if r["dst"] == "default"]
    out = {}
    for link in links:
        name = link["ifname"]
        info = addrs.get(name, [])
        v4 = [a for a in info if a["family"] == "inet"]
        primary = next((a for a in v4 if not a.get("secondary")), None)
        out[name] = {
            "iface": name,
            "addr": primary["local"] if primary else "",
            "netmask": (
                str(ipaddress.IPv4Network(f"0.0.0.0/{primary['prefixlen']}").netmask)
                if primary
                else ""
            ),
            "ipv4addrs": [f"{a['local']}/{a['prefixlen']}" for a in v4],
            "ipv6addrs": [
                f"{a['local']}/{a['prefixlen']}"
                for a in info
                if a["family"] == "inet6" and a.get("scope") == "global"
            ],
            "mtu": str(link["mtu"]),
            "ports": sorted(
                other["ifname"] for other in links if other.get("master") == name
            ),
            "gateway": next(
                (r.get("gateway", "") for r in defaults if r.get("dev") == name), ""
            ),
            "ipv4defaultroute": any(r.get("dev") == name for r in defaults),
            "address": link.get("address", ""),
        }
    return out


def test_host_ns_fixture(host_ns, ip_json):
    assert host_ns.name.startswith("nrt-")
    assert host_ns.peer == f"{host_ns.name}-peer"
    assert host_ns.nics == ["veth_0", "veth_1"]
    ours = {link["ifname"]: link for link in ip_json(host_ns.name, "link", "show")}
    peers = {link["ifname"]: link for link in ip_json(host_ns.peer, "link", "show")}
    assert {"veth_0", "veth_1"} <= set(ours) and not {"p_0", "p_1"} & set(ours)
    assert {"p_0", "p_1"} <= set(peers)
    assert all("UP" in ours[n]["flags"] for n in host_ns.nics)


def test_capabilities_match_ip_for_50_bridges(make_host_ns, ip_json, tmp_path):
    host = make_host_ns(4)
    commands = _bridges_batch(0, N_BRIDGES)
    commands += [f"link set {nic} master net{i}" for i, nic in PORTS.items()]
    commands += [
        "addr add 10.50.3.2/24 dev net3",  # secondary
        "addr add 172.16.3.1/16 dev net3",
        "addr add 2001:db8:50::1/64 dev net1 nodad",
        "link set net5 mtu 1400",
        "route add default via 10.50.0.254 dev net0",
        "addr add 10.99.0.1/24 dev veth_3",
    ]
    host.batch(commands)

    networks: dict[str, dict] = {}
    for i in range(N_BRIDGES):
        attrs = {
            "bridged": True,
            "stp": False,
            "mtu": 1400 if i == 5 else 1500,
            "bootproto": "none",
            "ipaddr": f"10.50.{i}.1",
            "netmask": "255.255.255.0",
            "defaultRoute": i == 0,
            "switch": "legacy",
        }
        if i in PORTS:
            attrs["nic"] = PORTS[i]
        networks[f"net{i}"] = attrs
    networks["net0"]["gateway"] = "10.50.0.254"
    networks["flat"] = {"bridged": False, "nic": "veth_3", "mtu": 1500}
    networks["gone"] = {"bridged": True, "nic": "veth_9", "mtu": 1500, "stp": False}
    running = {"networks": networks, "bonds": {}}

    ipr = _open(host.name)
    try:
        caps = read_capabilities(ipr, running, _config(tmp_path))
    finally:
        ipr.close()
    assert_caps_contract(caps)
    expected = _expected_from_ip(ip_json, host.name)
    # On a strict_check socket the kernel filters the route dumps by table:
    # same report.
    ipr = _open(host.name, strict_check=True)
    try:
        assert read_capabilities(ipr, running, _config(tmp_path)) == caps
    finally:
        ipr.close()

    for name in networks:
        if name == "gone":
            continue
        net = caps["networks"][name]
        want = expected[net["iface"]]
        compared = [key for key in COMPARED if key != "ports" or net["bridged"]]
        got = {key: net[key] for key in compared}
        assert got == {key: want[key] for key in compared}, name
        assert "missing" not in net
    # the comparison above is not vacuous
    assert caps["networks"]["net0"]["gateway"] == "10.50.0.254"
    assert caps["networks"]["net0"]["ipv4defaultroute"] is True
    assert caps["networks"]["net1"]["ipv6addrs"] == ["2001:db8:50::1/64"]
    assert caps["networks"]["net2"]["ports"] == ["veth_2"]
    assert caps["networks"]["net2"]["southbound"] == "veth_2"
    assert caps["networks"]["net4"]["southbound"] is None  # a bridge without a NIC
    assert len(caps["networks"]["net3"]["ipv4addrs"]) == 3
    assert caps["networks"]["net5"]["mtu"] == "1400"
    assert caps["networks"]["flat"]["interface"] == "veth_3"
    assert caps["networks"]["flat"]["southbound"] == "veth_3"
    assert caps["networks"]["flat"]["addr"] == "10.99.0.1"

    gone = caps["networks"]["gone"]
    assert gone["missing"] is True and gone["iface"] == "gone"

    assert set(caps["bridges"]) == {f"net{i}" for i in range(N_BRIDGES)}
    for name, bridge in caps["bridges"].items():
        assert bridge["ports"] == expected[name]["ports"]
        assert bridge["stp"] == "off"
        assert bridge["opts"]["stp_state"] == "0"
    assert set(caps["nics"]) == set(host.nics)
    for nic, entry in caps["nics"].items():
        assert entry["hwaddr"] == expected[nic]["address"]
        assert "permhwaddr" not in entry  # bond slaves only
        assert entry["speed"] == 0
    assert caps["vlans"] == {} and caps["bondings"] == {}
    assert caps["nameservers"] == ["192.0.2.1", "2001:db8::53"]
    assert caps["supportsIPv6"] is True


class _CountingIPRoute:
    """Forwards to an IPRoute, recording the name of every method called."""

    def __init__(self, ipr: IPRoute) -> None:
        self._ipr = ipr
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._ipr, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return attr(*args, **kwargs)

        return counted


@pytest.mark.parametrize("extra", [40])
def test_netlink_dumps_do_not_grow_with_devices(make_host_ns, tmp_path, extra):
    host = make_host_ns(2)
    host.batch(_bridges_batch(0, 3))
    config = _config(tmp_path)
    running = {"networks": {"net0": {"bridged": True}}, "bonds": {}}

    def count_calls() -> tuple[list[str], dict]:
        ipr = _open(host.name)
        try:
            counting = _CountingIPRoute(ipr)
            caps = read_capabilities(counting, running, config)
        finally:
            ipr.close()
        return counting.calls, caps

    few, caps_few = count_calls()
    host.batch(_bridges_batch(3, extra))
    many, caps_many = count_calls()
    assert len(caps_many["bridges"]) == len(caps_few["bridges"]) + extra
    assert few == many
    assert len(many) <= 5
    assert set(many) <= {"get_links", "get_addr", "get_routes", "get_rules"}
