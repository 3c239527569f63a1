"""The capabilities (netinfo) report, built from plain data.

PURE: no netlink, no files. ``superd.netinfo`` dumps the kernel and turns
each message into one of these plain dicts:

link::

    {"name": "br0", "index": 4, "kind": "bridge" | "bond" | "vlan" | None,
     "slave_kind": "bridge" | None, "master": int | None,
     "link": int | None,          # lower device (vlan), same namespace only
     "mtu": 1500, "address": "aa:bb:…", "permaddr": str | None,
     "operstate": "UP", "flags": int, "ifi_type": int,
     "parent_dev": "0000:00:03.0" | None,   # IFLA_PARENT_DEV_NAME
     "alias": "netreload" | None,           # IFLA_IFALIAS (netreload's mark)
     "info": {"br_stp_state": 0, "vlan_id": 100, "bond_mode": 1, …},
     "slave_info": {"bond_slave_perm_hwaddr": "52:54:…",   # bond slaves
                    "bond_slave_ad_aggregator_id": 1},        # 802.3ad only
     "ipv6conf": {"accept_ra": 1, "autoconf": 1, "disable_ipv6": 0} | None}

``info`` keys are the linkinfo NLA names without ``IFLA_`` in lower case
(the pyroute2 keyword spelling); a bond's nested 802.3ad information is
flattened into ``bond_ad_info_aggregator`` and ``bond_ad_info_partner_mac``.
``ipv6conf`` is None when the kernel has no IPv6 on the device.

address::

    {"index": 4, "family": 4 | 6, "address": "10.0.0.1", "prefixlen": 24,
     "flags": int (IFA_FLAGS), "scope": int}

route::

    {"family": 4 | 6, "table": 254, "type": 1, "dst": str | None,
     "dst_len": 0, "gateway": str | None, "oif": int | None,
     "priority": 0, "nexthops": [{"oif": int | None, "gateway": str | None}]}

rule (IPv4 policy rules; only ``table`` is read)::

    {"table": 2785871, "priority": 3200, "src": str | None, "src_len": 24, …}

The report has the production agent's shape and types: ``networks``,
``bridges``, ``bondings``, ``nics``, ``vlans``, ``nameservers``,
``supportsIPv6`` (``shared.caps_schema`` states every key and type: ``mtu``
a decimal string, ``stp`` ``'on'``/``'off'``, each network's
``southbound``, …).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from shared.netinfo_ip import (  # noqa: F401 (re-exported: the report's names)
    DEFAULT_MTU,
    IFA_F_PERMANENT,
    IFA_F_SECONDARY,
    IP_KEYS,
    RT_SCOPE_UNIVERSE,
    RT_TABLE_MAIN,
    RTN_UNICAST,
    _IpIndex,
    empty_ip_info,
    prefix_to_netmask,
)
from shared.netinfo_opts import bond_opts, bridge_opts, team_opts
from shared.source_routing import rule_tables

IFF_LOOPBACK = 0x8

# Never NICs, whatever their name.
_NOT_NIC_KINDS = frozenset({"bridge", "bond", "vlan", "team", "openvswitch"})

IsFakeNic = Callable[[str], bool]


def parse_resolv_conf(text: str) -> list[str]:
    """The ``nameserver`` addresses of a resolv.conf, in order."""
    servers = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            servers.append(fields[1])
    return servers


def stp_text(on: object) -> str:
    """The agent's spelling of a bridge's STP state."""
    return "on" if on else "off"


def stp_is_on(value: object) -> bool:
    """A report's ``stp`` back to a boolean (``'on'``/``'off'``, or a
    boolean from an older saved report)."""
    if isinstance(value, str):
        return value.strip().lower() in ("on", "true", "yes", "1")
    return bool(value)


def is_nic(link: Mapping[str, Any], is_fake_nic: IsFakeNic) -> bool:
    """Hardware-backed (or a fake NIC by name); never lo/bridge/bond/vlan."""
    if link.get("kind") in _NOT_NIC_KINDS or link.get("flags", 0) & IFF_LOOPBACK:
        return False
    if link.get("name") == "lo":
        return False
    if is_fake_nic(link["name"]):
        return True
    return bool(link.get("parent_dev")) or link.get("kind") is None


def build_capabilities(
    links: Iterable[Mapping[str, Any]],
    addresses: Iterable[Mapping[str, Any]],
    routes: Iterable[Mapping[str, Any]],
    running: Mapping[str, Any],
    nameservers: Iterable[str],
    is_fake_nic: IsFakeNic,
    rules: Iterable[Mapping[str, Any]] = (),
) -> dict:
    """The whole report; ``running`` is ``{"networks": {…}, "bonds": {…}}``."""
    by_index: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for addr in addresses:
        by_index[addr["index"]].append(addr)
    return ReportBuilder().build(
        links, by_index, routes, running, nameservers, is_fake_nic, rules
    )


class ReportBuilder:
    """Builds reports; keeps each device's and network's entry and reuses it
    while its inputs stay the very same objects (the live netinfo's states
    share every link dict and address tuple that did not change), so a
    report after one change rebuilds one entry, not a thousand. Entries are
    shared between reports: treat a report as read-only."""

    def __init__(self) -> None:
        self._devices: dict[str, tuple] = {}  # name → (link, addrs, key, section, entry)
        self._networks: dict[str, tuple] = {}  # name → (attrs, link, addrs, key, entry)
        # Equal bridge option sets are one dict: a thousand bridges mostly
        # share theirs (thirty-odd strings each).
        self._opts: dict[tuple, dict[str, str]] = {}
        # id(linkinfo) → (that linkinfo, its options): the decoder gives
        # bridges configured alike one linkinfo dict, turned into options
        # once. Those of the entries this build made, and the last build's
        # (no stale linkinfo kept longer).
        self._opts_of: dict[int, tuple[Mapping[str, Any], dict[str, str]]] = {}
        self._opts_before: dict[int, tuple[Mapping[str, Any], dict[str, str]]] = {}

    def build(
        self,
        links: Iterable[Mapping[str, Any]],
        addresses: Mapping[int, Sequence[Mapping[str, Any]]],
        routes: Iterable[Mapping[str, Any]],
        running: Mapping[str, Any],
        nameservers: Iterable[str],
        is_fake_nic: IsFakeNic,
        rules: Iterable[Mapping[str, Any]] = (),
    ) -> dict:
        links = list(links)
        by_name = {link["name"]: link for link in links}
        names = {link["index"]: link["name"] for link in links}
        members: dict[int, list[str]] = defaultdict(list)
        for link in links:
            if link.get("master"):
                members[link["master"]].append(link["name"])
        ip = _IpIndex(addresses, routes, rule_tables(rules))
        sections: dict[str, dict[str, dict]] = {
            "bridges": {}, "bondings": {}, "vlans": {}, "nics": {},
        }  # fmt: skip
        devices: dict[str, tuple] = {}
        for link in links:
            name, index = link["name"], link["index"]
            addrs = addresses.get(index, ())
            key = (ip.key(index), tuple(members.get(index, ())), names.get(link.get("link")))
            cached = self._devices.get(name)
            if cached is not None and cached[0] is link and cached[1] is addrs and cached[2] == key:
                devices[name] = cached
            elif link.get("kind") == "bond":  # refers to other devices by index: never kept
                entry = _bond_entry(link, members, names, ip)
                devices[name] = (None, None, None, "bondings", entry)
            elif link.get("kind") == "team":  # a bond of bonding_driver = team
                requested = ((running.get("bonds") or {}).get(name) or {}).get("options", "")
                entry = _team_entry(link, members, ip, requested)
                devices[name] = (None, None, None, "bondings", entry)
            else:
                section, entry = _device_entry(link, members, names, ip, is_fake_nic,
                                               self._bridge_opts)  # fmt: skip
                devices[name] = (link, addrs, key, section, entry)
            section, entry = devices[name][3], devices[name][4]
            if section is not None:
                sections[section][name] = entry
        self._devices = devices
        if len(self._opts) > 4 * len(devices) + 64:  # forget option sets no longer seen
            self._opts = {}
        self._opts_before, self._opts_of = self._opts_of, {}

        networks: dict[str, dict] = {}
        kept: dict[str, tuple] = {}
        dynamic: list[str] = []  # networks configured with DHCP
        for name, attrs in (running.get("networks") or {}).items():
            link = by_name.get(network_iface(name, attrs))
            index = link["index"] if link is not None else None
            addrs = addresses.get(index, ()) if link is not None else ()
            key = (ip.key(index), tuple(members.get(index, ()))) if link is not None else None
            cached = self._networks.get(name)
            if (cached is not None and cached[0] == attrs and cached[1] is link
                    and cached[2] is addrs and cached[3] == key):  # fmt: skip
                kept[name] = cached
            else:
                entry = _network_entry(name, attrs, by_name, members, ip, devices)
                kept[name] = (attrs, link, addrs, key, entry)
            networks[name] = kept[name][4]
            if attrs.get("bootproto") == "dhcp" or attrs.get("dhcpv6"):
                dynamic.append(name)
        self._networks = kept
        _mark_missing_nics(networks, sections["bondings"], running, by_name)
        _mark_dhcp(dynamic, networks, sections, running)
        return {
            "networks": networks,
            **sections,
            "nameservers": list(nameservers),
            "supportsIPv6": any(link.get("ipv6conf") is not None for link in links),
        }

    def _shared_opts(self, opts: dict[str, str]) -> dict[str, str]:
        return self._opts.setdefault(tuple(opts.items()), opts)

    def _bridge_opts(self, info: Mapping[str, Any]) -> dict[str, str]:
        """:func:`bridge_opts`, shared: once per linkinfo dict, not per bridge."""
        known = self._opts_of.get(id(info)) or self._opts_before.get(id(info))
        if known is None or known[0] is not info:
            known = (info, self._shared_opts(bridge_opts(info)))  # info kept: its id its own
        self._opts_of[id(info)] = known
        return known[1]


def _device_entry(
    link: Mapping[str, Any],
    members: Mapping[int, list[str]],
    names: Mapping[int, str],
    ip: _IpIndex,
    is_fake_nic: IsFakeNic,
    opts_of: Callable[[Mapping[str, Any]], dict[str, str]] = bridge_opts,
) -> tuple[str | None, dict]:
    """(section, entry) of one bridge, VLAN or NIC; (None, …) for the rest.
    ``opts_of``: a bridge's options from its linkinfo (:func:`bridge_opts`)."""
    kind, info = link.get("kind"), link.get("info") or {}
    entry = ip.device_info(link)
    if kind == "bridge":
        entry["ports"] = sorted(members.get(link["index"], ()))
        entry["stp"] = stp_text(info.get("br_stp_state", 0))
        entry["opts"] = opts_of(info)
        return "bridges", entry
    if kind == "vlan":
        entry["iface"] = names.get(link.get("link"), "")
        entry["vlanid"] = int(info.get("vlan_id", 0))
        return "vlans", entry
    if kind != "bond" and is_nic(link, is_fake_nic):
        hwaddr = link.get("address", "")
        entry["hwaddr"] = hwaddr
        if link.get("slave_kind") == "bond":  # the agent: bond slaves only
            slave = link.get("slave_info") or {}
            entry["permhwaddr"] = (
                slave.get("bond_slave_perm_hwaddr") or link.get("permaddr") or hwaddr
            )
            if slave.get("bond_slave_ad_aggregator_id") is not None:
                entry["ad_aggregator_id"] = str(slave["bond_slave_ad_aggregator_id"])
        entry["speed"] = int(link.get("speed", 0) or 0)
        return "nics", entry
    return None, entry


def _bond_entry(
    link: Mapping[str, Any], members: Mapping[int, list[str]], names: Mapping[int, str],
    ip: _IpIndex,
) -> dict:  # fmt: skip
    info = link.get("info") or {}
    entry = ip.device_info(link)
    active = info.get("bond_active_slave")
    entry["hwaddr"] = link.get("address", "")
    entry["slaves"] = sorted(members.get(link["index"], ()))
    entry["active_slave"] = names.get(active, "") if active else ""
    entry["opts"] = bond_opts(info, names)
    entry["switch"] = "legacy"
    entry["speed"] = 0  # as for NICs: netlink carries no link speed
    # 802.3ad with an active aggregator: both or neither, as the agent
    aggregator, partner = info.get("bond_ad_info_aggregator"), info.get("bond_ad_info_partner_mac")
    if aggregator is not None and partner:
        entry["ad_aggregator_id"] = str(aggregator)
        entry["ad_partner_mac"] = partner
    return entry


def _team_entry(
    link: Mapping[str, Any], members: Mapping[int, list[str]], ip: _IpIndex, requested: str
) -> dict:
    """A team device as a bond: its ports as ``slaves``, the bonding options
    it was asked for as ``opts`` (``mode`` a number, as for a bond), the
    active port left to superd (teamd knows it, not rtnetlink)."""
    entry = ip.device_info(link)
    entry["hwaddr"] = link.get("address", "")
    entry["slaves"] = sorted(members.get(link["index"], ()))
    entry["active_slave"] = ""
    entry["opts"] = team_opts(requested)
    entry["switch"] = "legacy"
    entry["speed"] = 0
    return entry


def _mark_missing_nics(
    networks: dict[str, dict],
    bondings: dict[str, dict],
    running: Mapping[str, Any],
    present: Mapping[str, Any],
) -> None:
    """``missing_nics`` on a network or bond whose NIC(s) the host lost (a
    NIC unplugged or moved away): reported, so that the engine sees it at
    once, rather than failing later requests."""
    bonds = running.get("bonds") or {}
    for name, attrs in bonds.items():
        missing = sorted(n for n in attrs.get("nics", ()) if n not in present)
        if missing and name in bondings:  # a copy: entries are shared
            bondings[name] = {**bondings[name], "missing_nics": missing}
    for name, attrs in (running.get("networks") or {}).items():
        if attrs.get("nic"):
            lower = [attrs["nic"]]
        else:
            lower = list((bonds.get(attrs.get("bonding")) or {}).get("nics", ()))
        missing = sorted(n for n in lower if n not in present)
        if missing:
            networks[name] = {**networks[name], "missing_nics": missing}


def _mark_dhcp(
    names: list[str],
    networks: dict[str, dict],
    sections: dict[str, dict[str, dict]],
    running: Mapping[str, Any],
) -> None:
    """``dhcpv4``/``dhcpv6`` of a network configured with DHCP, and of its
    top device, are true as soon as it is configured, lease or not yet (the
    agent reports the configuration); elsewhere they say whether the device
    holds a dynamic address."""
    for name in names:
        attrs = running["networks"][name]
        wanted = {key for key, on in (("dhcpv4", attrs.get("bootproto") == "dhcp"),
                                      ("dhcpv6", bool(attrs.get("dhcpv6")))) if on}  # fmt: skip
        net = networks[name]
        if any(not net.get(key) for key in wanted):  # a copy: entries are shared
            networks[name] = net = {**net, **dict.fromkeys(wanted, True)}
        for section in sections.values():
            device = section.get(net["iface"])
            if device is not None and any(not device.get(key) for key in wanted):
                section[net["iface"]] = {**device, **dict.fromkeys(wanted, True)}


def network_iface(name: str, attrs: Mapping[str, Any]) -> str:
    """The top device of a network: its bridge, or vlan device, or nic/bond;
    an OVS network's internal port, named after it, bridged or not."""
    if attrs.get("bridged", True) or attrs.get("switch") == "ovs":
        return name
    return southbound_iface(attrs)


def southbound_iface(attrs: Mapping[str, Any]) -> str:
    lower = attrs.get("nic") or attrs.get("bonding") or ""
    vlan = attrs.get("vlan")
    if lower and vlan not in (None, ""):
        return f"{lower}.{vlan}"
    return lower


def _network_entry(
    name: str,
    attrs: Mapping[str, Any],
    by_name: Mapping[str, Mapping[str, Any]],
    members: Mapping[int, list[str]],
    ip: _IpIndex,
    devices: Mapping[str, tuple] | None = None,
) -> dict[str, Any]:
    """A network as the agent reports it: its top device's IP information
    (from its entry among ``devices``, when given: the same build's, name →
    (…, entry) as :class:`ReportBuilder` keeps them),
    ``iface`` (the top device), ``southbound`` (the NIC, bond or VLAN device
    under it: for a bridge, that port if it is one, else None), ``vlanid``
    when that is a VLAN; a bridged one its ``ports`` and ``stp``, a
    bridgeless one ``interface``."""
    bridged = bool(attrs.get("bridged", True))
    iface = network_iface(name, attrs)
    link = by_name.get(iface) if iface else None
    entry: dict[str, Any] = {"iface": iface, "bridged": bridged}
    if link is None:
        entry.update(empty_ip_info(int(attrs.get("mtu", DEFAULT_MTU))))
        if bridged:
            entry["ports"] = []
            entry["stp"] = stp_text(attrs.get("stp", False))
        entry["missing"] = True
    else:
        known = devices.get(iface) if devices is not None else None
        if known is not None:
            device = known[4]
            entry.update({key: device[key] for key in IP_KEYS})
        else:
            entry.update(ip.device_info(link))
        if bridged:
            entry["ports"] = sorted(members.get(link["index"], ()))
            info = link.get("info") or {}
            entry["stp"] = stp_text(info.get("br_stp_state", 0))
    entry["switch"] = attrs.get("switch") or "legacy"
    lower = southbound_iface(attrs)
    if bridged:
        southbound = lower if lower and lower in entry["ports"] else None
    else:
        southbound = iface or None
        entry["interface"] = iface
    entry["southbound"] = southbound
    if link is not None and southbound is not None and attrs.get("vlan") not in (None, ""):
        entry["vlanid"] = int(attrs["vlan"])
    return entry
