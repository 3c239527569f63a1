"""The IP part of every capabilities entry (addresses, gateways, default
route, IPv6 and DHCP flags), from plain data (see :mod:`shared.netinfo_report`).
PURE."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

IFA_F_SECONDARY = 0x01
IFA_F_PERMANENT = 0x80
RT_TABLE_MAIN = 254
RTN_UNICAST = 1
RT_SCOPE_UNIVERSE = 0
DEFAULT_MTU = 1500


def prefix_to_netmask(prefixlen: int) -> str:
    if type(prefixlen) is int and 0 <= prefixlen <= 32:
        return _NETMASKS[prefixlen]
    return str(ipaddress.IPv4Network(f"0.0.0.0/{prefixlen}").netmask)


_NETMASKS = tuple(str(ipaddress.IPv4Network(f"0.0.0.0/{p}").netmask) for p in range(33))


def empty_ip_info(mtu: int | str = DEFAULT_MTU) -> dict[str, Any]:
    """The IP part of every entry, empty; ``mtu`` is reported as a decimal
    string, as the agent does."""
    return {
        "addr": "",
        "netmask": "",
        "ipv4addrs": [],
        "ipv6addrs": [],
        "gateway": "",
        "ipv6gateway": "::",
        "ipv4defaultroute": False,
        "ipv6autoconf": False,
        "mtu": str(int(mtu)),
        "dhcpv4": False,
        "dhcpv6": False,
    }


IP_KEYS = tuple(empty_ip_info())  # the IP part of every entry


class _IpIndex:
    """Addresses and default routes, grouped by device index: the main
    table's, and those of tables a rule looks up (source routing), which
    give a device's gateway when the main table has none through it."""

    def __init__(
        self,
        addresses: Mapping[int, Sequence[Mapping[str, Any]]],
        routes: Iterable[Mapping[str, Any]],
        looked_up: frozenset[int] = frozenset(),
    ) -> None:
        self.addrs = addresses
        # family → [(priority, oif, gateway)] of the main table's defaults
        defaults: dict[int, list[tuple[int, int, str]]] = {4: [], 6: []}
        sourced: dict[int, str] = {}  # oif → gateway in a rule's table
        for route in routes:
            if route.get("table") in looked_up and route.get("dst_len", 0) == 0:
                if route.get("family") == 4 and route.get("oif") and route.get("gateway"):
                    sourced.setdefault(route["oif"], route["gateway"])
                continue
            if (
                route.get("table") != RT_TABLE_MAIN
                or route.get("dst_len", 0) != 0
                or route.get("type", RTN_UNICAST) != RTN_UNICAST
                or route.get("family") not in defaults
            ):
                continue
            hops = route.get("nexthops") or [route]
            for hop in hops:
                if hop.get("oif"):
                    defaults[route["family"]].append(
                        (route.get("priority", 0), hop["oif"], hop.get("gateway") or "")
                    )
        self.gateways: dict[int, dict[int, str]] = {}
        self.default_oifs: dict[int, set[int]] = {}
        for family, found in defaults.items():
            best: dict[int, str] = {}
            for _prio, oif, gateway in sorted(found, key=lambda t: t[0]):
                best.setdefault(oif, gateway)
            self.gateways[family] = best
            lowest = min((prio for prio, _, _ in found), default=None)
            self.default_oifs[family] = {o for p, o, _ in found if p == lowest}
        self.gateways[4] = {**sourced, **self.gateways[4]}

    def key(self, index: int | None) -> tuple:
        """What the routes contribute to a device's entry."""
        return (
            self.gateways[4].get(index),
            self.gateways[6].get(index),
            index in self.default_oifs[4],
        )

    def device_info(self, link: Mapping[str, Any]) -> dict[str, Any]:
        index = link["index"]
        addrs = self.addrs.get(index, [])
        v4 = [a for a in addrs if a["family"] == 4]
        v6 = [
            a
            for a in addrs
            if a["family"] == 6
            and a.get("scope", 0) == RT_SCOPE_UNIVERSE
            and not ipaddress.IPv6Address(a["address"]).is_link_local
        ]
        info = empty_ip_info(int(link.get("mtu") or DEFAULT_MTU))
        if v4:
            primary = next((a for a in v4 if not a["flags"] & IFA_F_SECONDARY), v4[0])
            info["addr"] = primary["address"]
            info["netmask"] = prefix_to_netmask(primary["prefixlen"])
        info["ipv4addrs"] = [f"{a['address']}/{a['prefixlen']}" for a in v4]
        info["ipv6addrs"] = [f"{a['address']}/{a['prefixlen']}" for a in v6]
        info["gateway"] = self.gateways[4].get(index, "")
        info["ipv6gateway"] = self.gateways[6].get(index) or "::"
        info["ipv4defaultroute"] = index in self.default_oifs[4]
        conf = link.get("ipv6conf") or {}
        info["ipv6autoconf"] = bool(
            conf.get("autoconf") and conf.get("accept_ra") and not conf.get("disable_ipv6")
        )
        info["dhcpv4"] = any(not a["flags"] & IFA_F_PERMANENT for a in v4)
        # SLAAC addresses are not permanent either; a DHCPv6 lease is a /128.
        info["dhcpv6"] = any(
            not a["flags"] & IFA_F_PERMANENT and a["prefixlen"] == 128 for a in v6
        )
        return info
