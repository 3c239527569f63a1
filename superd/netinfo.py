"""Read the kernel's network state and build the capabilities report.

This is the I/O edge only: one netlink dump per object kind (links,
addresses of both families, IPv4 routes, IPv6 routes, IPv4 rules — five
dumps whatever the number of devices), each message converted into a plain
dict, then
:func:`shared.netinfo_report.build_capabilities` does the rest. Nothing here
reads sysfs or asks the kernel about one device at a time.

The plain dicts are documented in :mod:`shared.netinfo_report`.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from typing import Any

from netlink.decode import INFO_SKIPPED
from shared.config import Config
from shared.netinfo_report import build_capabilities, parse_resolv_conf
from superd import qos_report, team_report

log = logging.getLogger(__name__)

RT_TABLE_LOCAL = 255
_SCALAR = (int, str, bool)
# Kinds whose IFLA_INFO_DATA the report uses; decoding it for every veth,
# tap … would only cost time.
_INFO_KINDS = frozenset({"bridge", "bond", "vlan"})


def read_capabilities(ipr: Any, running: Mapping[str, Any], config: Config) -> dict:
    """The capabilities report of the namespace ``ipr`` is bound to.

    ``ipr`` is a synchronous pyroute2 ``IPRoute`` (0.9); ``running`` is
    ``{"networks": {name: attrs}, "bonds": {name: attrs}}``.
    """
    links, addresses, routes, rules = read_kernel(ipr)
    caps = build_capabilities(
        links,
        addresses,
        routes,
        running,
        read_nameservers(config),
        config.is_fake_nic,
        rules,
    )
    trees = qos_report.read_trees(running, ipr)
    if trees is not None:
        caps = qos_report.overlay(caps, trees, running)
    active = team_report.read_active_ports(running, config)
    if active is not None:
        caps = team_report.overlay(caps, active)
    return with_ovs(caps, running, config)


_OVS_READERS: dict[str, Any] = {}


def ovs_state(running: Mapping[str, Any], config: Config) -> dict | None:
    """OVSDB's state when ``running`` has OVS networks or bonds, else None
    (an empty state when OVSDB cannot be read: its networks are missing)."""
    from superd.ovs_report import has_ovs

    if not has_ovs(running):
        return None
    from configurators.ovs_layout import empty_state
    from superd.ovs_netinfo import OvsNetinfo

    reader = _OVS_READERS.get(config.ovs_db)
    if reader is None:
        reader = _OVS_READERS.setdefault(config.ovs_db, OvsNetinfo(config))
    return reader.state() or empty_state()


def with_ovs(caps: dict, running: Mapping[str, Any], config: Config,
             state: dict | None = None) -> dict:  # fmt: skip
    """``caps`` with the OVS networks and bonds of ``running`` laid over."""
    if state is None:
        state = ovs_state(running, config)
        if state is None:
            return caps
    from superd.ovs_report import overlay

    return overlay(caps, state, running)


def read_kernel(ipr: Any) -> tuple[list[dict], list[dict], list[dict], list[dict]]:
    """(links, addresses, routes, rules) as plain dicts, from five dumps:
    routes of every table but the local one, IPv4 rules."""
    links = [link_to_dict(m) for m in ipr.get_links()]
    addresses = [addr_to_dict(m) for m in ipr.get_addr()]
    routes = []
    for family in (socket.AF_INET, socket.AF_INET6):
        routes += [
            route_to_dict(m)
            for m in ipr.get_routes(family=family)
            if (m.get("RTA_TABLE") or m["table"]) != RT_TABLE_LOCAL
        ]
    rules = [rule_to_dict(m) for m in ipr.get_rules(family=socket.AF_INET)]
    return links, addresses, routes, rules


def read_nameservers(config: Config) -> list[str]:
    try:
        text = config.resolv_conf.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        log.debug("no nameservers: %s", exc)
        return []
    return parse_resolv_conf(text)


# -- pyroute2 message → plain dict ---------------------------------------


def _attrs(msg: Any, wanted: frozenset[str] | None = None) -> dict[str, Any]:
    """First value of each attribute (of ``wanted`` ones), by full NLA name.

    pyroute2 decodes an attribute when its value is read, so reading only
    the wanted ones saves most of the parsing (stats, AF_INET, …).
    """
    out: dict[str, Any] = {}
    for item in msg.get("attrs", ()) if msg is not None else ():
        name = item[0]
        if name == "UNKNOWN" or name in out or (wanted is not None and name not in wanted):
            continue
        out[name] = item[1]
    return out


_LINK_ATTRS = frozenset(
    {
        "IFLA_IFNAME", "IFLA_MASTER", "IFLA_LINK", "IFLA_LINK_NETNSID", "IFLA_MTU",
        "IFLA_ADDRESS", "IFLA_PERM_ADDRESS", "IFLA_OPERSTATE", "IFLA_PARENT_DEV_NAME",
        "IFLA_LINKINFO", "IFLA_AF_SPEC", "IFLA_IFALIAS",
    }
)  # fmt: skip
_LINKINFO_ATTRS = frozenset({"IFLA_INFO_KIND", "IFLA_INFO_SLAVE_KIND", "IFLA_INFO_SLAVE_DATA"})
_AD_INFO = {"IFLA_BOND_AD_INFO_AGGREGATOR": "bond_ad_info_aggregator",
            "IFLA_BOND_AD_INFO_PARTNER_MAC": "bond_ad_info_partner_mac"}  # fmt: skip
_BOND_SLAVE = frozenset({"IFLA_BOND_SLAVE_PERM_HWADDR", "IFLA_BOND_SLAVE_AD_AGGREGATOR_ID"})
_INFO_DATA = frozenset({"IFLA_INFO_DATA"})
_IPV6_CONF_KEYS = ("accept_ra", "autoconf", "disable_ipv6", "forwarding")


def _plain_info(data: Any, prefix: str = "IFLA_") -> dict[str, Any]:
    """Linkinfo data as ``{"br_stp_state": 0, "vlan_id": 100, ...}``.

    Keys are the NLA names without ``IFLA_``, lower case — which is also the
    pyroute2 keyword spelling (``bond_miimon``). Only scalar values and lists
    of strings are kept (ids, timers-as-structs and AD info are dropped).
    """
    out: dict[str, Any] = {}
    for item in data.get("attrs", ()) if data is not None else ():
        name = item[0]
        if name == "UNKNOWN" or name in INFO_SKIPPED or name.endswith("_TIMER"):
            continue
        value = item[1]
        key = name[len(prefix) :].lower() if name.startswith(prefix) else name.lower()
        if isinstance(value, _SCALAR):
            out[key] = value
        elif isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            out[key] = [str(v) for v in value]
    return out


def _link_info_data(linkinfo: Any, kind: str | None) -> dict[str, Any]:
    if kind not in _INFO_KINDS:
        return {}
    data = _attrs(linkinfo, _INFO_DATA).get("IFLA_INFO_DATA")
    out = _plain_info(data)
    if kind == "bond":  # 802.3ad's aggregator, as netlink.decode decodes it
        ad_info = _attrs(data, frozenset({"IFLA_BOND_AD_INFO"})).get("IFLA_BOND_AD_INFO")
        for name, value in _attrs(ad_info, frozenset(_AD_INFO)).items():
            out[_AD_INFO[name]] = value
    return out


def _slave_info(linkinfo: Mapping[str, Any]) -> dict[str, Any]:
    if linkinfo.get("IFLA_INFO_SLAVE_KIND") != "bond":
        return {}
    found = _attrs(linkinfo.get("IFLA_INFO_SLAVE_DATA"), _BOND_SLAVE)
    return {name[len("IFLA_") :].lower(): value for name, value in found.items()}


def _ipv6_conf(af_spec: Any) -> dict[str, int] | None:
    spec = _attrs(af_spec, frozenset({"AF_INET6"}))
    if "AF_INET6" not in spec:
        return None
    conf = _attrs(spec["AF_INET6"], frozenset({"IFLA_INET6_CONF"})).get("IFLA_INET6_CONF")
    if not isinstance(conf, Mapping):
        return {}
    return {k: int(conf[k]) for k in _IPV6_CONF_KEYS if k in conf}


def link_to_dict(msg: Any) -> dict[str, Any]:
    a = _attrs(msg, _LINK_ATTRS)
    linkinfo = _attrs(a.get("IFLA_LINKINFO"), _LINKINFO_ATTRS)
    kind = linkinfo.get("IFLA_INFO_KIND")
    # IFLA_LINK of a device whose peer/lower device lives in another
    # namespace (IFLA_LINK_NETNSID set) is not an index of ours.
    lower = a.get("IFLA_LINK")
    if "IFLA_LINK_NETNSID" in a or lower == msg["index"]:
        lower = None
    return {
        "name": a.get("IFLA_IFNAME", ""),
        "index": int(msg["index"]),
        "kind": kind,
        "slave_kind": linkinfo.get("IFLA_INFO_SLAVE_KIND"),
        "master": a.get("IFLA_MASTER") or None,
        "link": lower or None,
        "mtu": int(a.get("IFLA_MTU", 0)),
        "address": a.get("IFLA_ADDRESS") or "",
        "permaddr": a.get("IFLA_PERM_ADDRESS") or None,
        "operstate": a.get("IFLA_OPERSTATE", "UNKNOWN"),
        "flags": int(msg.get("flags", 0)),
        "ifi_type": int(msg.get("ifi_type", 0)),
        "parent_dev": a.get("IFLA_PARENT_DEV_NAME"),
        "alias": a.get("IFLA_IFALIAS") or None,
        "info": _link_info_data(a.get("IFLA_LINKINFO"), kind),
        "slave_info": _slave_info(linkinfo),
        "ipv6conf": _ipv6_conf(a.get("IFLA_AF_SPEC")),
    }


_ADDR_ATTRS = frozenset({"IFA_LOCAL", "IFA_ADDRESS", "IFA_FLAGS"})
_RULE_ATTRS = frozenset(
    {"FRA_PRIORITY", "FRA_SRC", "FRA_DST", "FRA_TABLE", "FRA_IIFNAME", "FRA_OIFNAME"}
)
_ROUTE_ATTRS = frozenset(
    {"RTA_TABLE", "RTA_DST", "RTA_GATEWAY", "RTA_OIF", "RTA_PRIORITY", "RTA_MULTIPATH"}
)


def addr_to_dict(msg: Any) -> dict[str, Any]:
    a = _attrs(msg, _ADDR_ATTRS)
    family = 6 if msg["family"] == socket.AF_INET6 else 4
    # IFA_LOCAL is the address of an IPv4 (point-to-point) interface;
    # IFA_ADDRESS the peer there. IPv6 only has IFA_ADDRESS.
    address = a.get("IFA_LOCAL") or a.get("IFA_ADDRESS") or ""
    return {
        "index": int(msg["index"]),
        "family": family,
        "address": address,
        "prefixlen": int(msg["prefixlen"]),
        "flags": int(a.get("IFA_FLAGS", msg.get("flags", 0))),
        "scope": int(msg.get("scope", 0)),
    }


def route_to_dict(msg: Any) -> dict[str, Any]:
    a = _attrs(msg, _ROUTE_ATTRS)
    nexthops = []
    for hop in a.get("RTA_MULTIPATH") or ():
        hop_attrs = _attrs(hop, frozenset({"RTA_GATEWAY"}))
        nexthops.append(
            {"oif": hop.get("oif") or None, "gateway": hop_attrs.get("RTA_GATEWAY")}
        )
    return {
        "family": 6 if msg["family"] == socket.AF_INET6 else 4,
        "table": int(a.get("RTA_TABLE", msg.get("table", 0))),
        "type": int(msg.get("type", 0)),
        "dst": a.get("RTA_DST"),
        "dst_len": int(msg.get("dst_len", 0)),
        "gateway": a.get("RTA_GATEWAY"),
        "oif": a.get("RTA_OIF"),
        "priority": int(a.get("RTA_PRIORITY", 0)),
        "nexthops": nexthops,
    }


def rule_to_dict(msg: Any) -> dict[str, Any]:
    """As :func:`netlink.decode.decode_rule`."""
    a = _attrs(msg, _RULE_ATTRS)
    return {
        "family": 6 if msg["family"] == socket.AF_INET6 else 4,
        "priority": int(a.get("FRA_PRIORITY") or 0),
        "src": a.get("FRA_SRC"),
        "src_len": int(msg.get("src_len", 0)),
        "dst": a.get("FRA_DST"),
        "dst_len": int(msg.get("dst_len", 0)),
        "tos": int(msg.get("tos", 0)),
        "table": int(a.get("FRA_TABLE") or msg.get("table", 0)),
        "action": int(msg.get("action", 0)),
        "iif": a.get("FRA_IIFNAME"),
        "oif": a.get("FRA_OIFNAME"),
    }
