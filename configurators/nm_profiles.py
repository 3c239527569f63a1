"""The NetworkManager profiles of a network, computed purely from the model.

One profile per device netreload configures, named after the device
(``connection.id`` and ``interface-name``), with a UUID derived from that
name (:func:`profile_uuid`: found again without listing every profile) and
netreload's mark in the ``user`` setting (:data:`configurators.nm_dbus.MARK_KEY`):

* a bridge: ``bridge`` (stp, forward delay, the ``custom.bridge_opts``
  NetworkManager can express — :data:`BRIDGE_OPTIONS`), its MTU, the
  network's IP configuration;
* a NIC: ``802-3-ethernet`` with its MTU; a bridge port (``master`` the
  bridge, no IP of its own) or a bridgeless network's device (the
  network's IP configuration);
* IP: IPv4 ``manual`` / ``auto`` (DHCP) / ``disabled``; IPv6 ``manual`` /
  ``dhcp`` / ``auto`` (autoconf) / ``disabled`` (a network asking for no
  IPv6, as VDSM), ``link-local`` for a bond without a network, EUI-64
  link-local addresses as the kernel makes them; the default-route network's gateway
  as ``gateway`` (metric 0, as the iproute2 configurator's), every other
  network ``never-default`` and, with a static gateway, source routed as
  :mod:`shared.source_routing` says (its table's subnet and default routes,
  the two rules at priority 3200); a DHCP network's lease routes in the
  main table (default-route network) or in its own table (``route-table``;
  the rules, naming the lease's subnet, by
  :mod:`configurators.nm_lease_rules` once it is there); no DNS from NetworkManager (netreload
  writes resolv.conf itself, as with iproute2).

Bonds, their slaves and VLANs: :mod:`configurators.nm_profiles_bond`.

What NetworkManager cannot express is refused here, before anything is
sent (:func:`network_profiles`): a bridge option it has no property for
(21), a bonding option it has no key for (25).
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from configurators.nm_dbus import MARK_KEY, MARK_VALUE
from shared.errors import ErrorCode, NetError
from shared.netmodel.bond import Bond
from shared.netmodel.bridge import Bridge
from shared.netmodel.bridge_options_table import PROTOCOLS
from shared.netmodel.ipconfig import IpConfig
from shared.netmodel.network import Network
from shared.netmodel.nic import Nic
from shared.netmodel.vlan import Vlan
from shared.source_routing import RULE_PRIORITY, source_table

_UUID_NAMESPACE = uuid.UUID("5b0c1f3e-6f47-4a53-9a43-6e6574726c64")  # netreload's
CENTISECONDS = 100
#: NetworkManager refuses a forward delay outside 2..30 s
FORWARD_DELAY_RANGE = (2, 30)
#: a DHCP client that keeps trying (NetworkManager's "infinity")
DHCP_FOREVER = 2147483647


def profile_uuid(device: str) -> str:
    """The UUID of netreload's profile for ``device`` (stable, per name)."""
    return str(uuid.uuid5(_UUID_NAMESPACE, f"netreload:{device}"))


def _seconds(value: int, option: str) -> int:
    if value % CENTISECONDS:
        raise NetError(
            ErrorCode.BAD_PARAMS,
            f"bridge_opts: {option}={value}: NetworkManager takes whole seconds only",
        )
    return value // CENTISECONDS


#: the kernel's multicast_router values as NetworkManager names them
MULTICAST_ROUTER = {0: "disabled", 1: "auto", 2: "enabled"}

#: netlink keyword (``shared.netmodel.bridge_options_table``) → (NetworkManager
#: bridge property, converter of the netlink value)
BRIDGE_OPTIONS: dict[str, tuple[str, Any]] = {
    "br_hello_time": ("hello-time", lambda v: _seconds(v, "hello_time")),
    "br_max_age": ("max-age", lambda v: _seconds(v, "max_age")),
    "br_ageing_time": ("ageing-time", lambda v: _seconds(v, "ageing_time")),
    "br_priority": ("priority", int),
    "br_group_fwd_mask": ("group-forward-mask", int),
    "br_mcast_snooping": ("multicast-snooping", bool),
    "br_mcast_querier": ("multicast-querier", bool),
    "br_mcast_query_use_ifaddr": ("multicast-query-use-ifaddr", bool),
    "br_mcast_hash_max": ("multicast-hash-max", int),
    "br_mcast_last_member_cnt": ("multicast-last-member-count", int),
    "br_mcast_startup_query_cnt": ("multicast-startup-query-count", int),
    "br_vlan_filtering": ("vlan-filtering", bool),
    "br_vlan_default_pvid": ("vlan-default-pvid", int),
    "br_vlan_stats_enabled": ("vlan-stats-enabled", bool),
    "br_vlan_protocol": ("vlan-protocol", lambda v: PROTOCOLS[v]),
    "br_mcast_router": ("multicast-router", lambda v: MULTICAST_ROUTER[v]),
    "br_group_addr": ("group-address", lambda v: bytes.fromhex(v.replace(":", ""))),
}


@dataclass(frozen=True)
class WantedProfile:
    """A profile to hold, and how to wait for its activation."""

    device: str
    settings: dict[str, dict[str, Any]]
    #: activation awaited up to LAYER2_READY only (non-blocking DHCP)
    layer2: bool = False
    #: a software device NetworkManager creates (bridge): marked as
    #: netreload's in the kernel once active
    created: bool = False
    #: devices whose profiles must be active first (a port's bridge)
    after: tuple[str, ...] = field(default=())
    #: a bridge's forward delay (1/100 s) set through netlink once active
    forward_delay: int | None = None
    #: a bond changed without its network: keeps the role (bridge port, IP)
    #: of the profile NetworkManager holds (``nm_profiles_bond.with_role``)
    inherit_role: bool = False
    #: a device without IP of its own: IPv6 sysctls left as the kernel's
    plain: bool = False
    #: the NIC under a VLAN: set Managed and up, no profile of its own
    parent_nic: str | None = None


def _connection(device: str, kind: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": device,
        "uuid": profile_uuid(device),
        "type": kind,
        "interface-name": device,
        "autoconnect": False,
        **extra,
    }


def _mark() -> dict[str, Any]:
    return {"data": {MARK_KEY: MARK_VALUE}}


def ipv4_settings(device: str, ip: IpConfig | None) -> dict[str, Any]:
    v4 = ip.ipv4 if ip is not None else None
    if v4 is None or (v4.address is None and not v4.is_dhcp):
        return {"method": "disabled"}
    settings: dict[str, Any] = {"ignore-auto-dns": True, "route-metric": 0}
    if v4.is_dhcp:
        # blocking: activated only with a lease; otherwise the client keeps
        # trying in the background, the network up meanwhile
        settings.update(
            method="auto", **{"dhcp-timeout": DHCP_FOREVER, "may-fail": not ip.blocking_dhcp}
        )
    else:
        prefix = v4.prefixlen or 32
        settings.update(
            method="manual", **{"address-data": [{"address": v4.address, "prefix": prefix}]}
        )
    if v4.is_dhcp:
        # the lease's routes (subnet, default via its router) in the main
        # table for the default-route network, in the network's own table
        # otherwise: the rules looking it up name the lease's subnet, added
        # once it is known (configurators.nm_lease_rules)
        settings["route-table"] = 0 if v4.default_route else source_table(device)
        settings["never-default"] = False
        return settings
    if v4.default_route:
        if v4.gateway:
            settings["gateway"] = v4.gateway
        return settings
    settings["never-default"] = True
    if v4.gateway and v4.address:
        subnet = ipaddress.IPv4Network(f"{v4.address}/{v4.prefixlen}", strict=False)
        table = source_table(device)
        settings["route-data"] = [
            {
                "dest": str(subnet.network_address),
                "prefix": subnet.prefixlen,
                "table": table,
                "src": v4.address,
            },
            {"dest": "0.0.0.0", "prefix": 0, "next-hop": v4.gateway, "table": table},
        ]
        settings["routing-rules"] = [
            {
                "family": 2,
                "priority": RULE_PRIORITY,
                "from": str(subnet.network_address),
                "from-len": subnet.prefixlen,
                "table": table,
            },
            {
                "family": 2,
                "priority": RULE_PRIORITY,
                "to": str(subnet.network_address),
                "to-len": subnet.prefixlen,
                "table": table,
            },
        ]
    return settings


def ipv6_settings(ip: IpConfig | None) -> dict[str, Any]:
    """``ip`` None: a device without a network (a bond left alone), IPv6
    kept as the kernel has it (link-local). A network asking for no IPv6
    has it disabled, as VDSM does (nmstate ``enabled: false``):
    NetworkManager writes ``disable_ipv6`` = 1, no link-local address."""
    settings: dict[str, Any] = {"addr-gen-mode": 0, "ignore-auto-dns": True, "route-metric": 0}
    if ip is None:
        settings["method"] = "link-local"
        return settings
    v6 = ip.ipv6
    if not (v6.address or v6.autoconf or v6.dhcpv6):
        return {"method": "disabled"}
    if v6.autoconf and not (v6.address or v6.dhcpv6):
        # SLAAC left to the kernel (accept_ra, autoconf: set by the
        # configurator after activation, as the iproute2 one sets them), so
        # that the report reads it as for any other configurator
        return {"method": "ignore"}
    if v6.autoconf:
        settings["method"] = "auto"
    elif v6.dhcpv6:
        settings["method"] = "dhcp"
    else:
        settings["method"] = "manual"
    if v6.address:
        iface = ipaddress.IPv6Interface(v6.address)
        settings["address-data"] = [{"address": str(iface.ip), "prefix": iface.network.prefixlen}]
    if v6.gateway:
        settings["gateway"] = str(ipaddress.IPv6Address(v6.gateway))
    else:
        settings["never-default"] = True
    return settings


def _ip(device: str, ip: IpConfig | None) -> dict[str, dict[str, Any]]:
    return {"ipv4": ipv4_settings(device, ip), "ipv6": ipv6_settings(ip)}


def bridge_settings(bridge: Bridge) -> dict[str, Any]:
    options = dict(bridge.options)
    settings: dict[str, Any] = {"stp": bridge.stp}
    delay = options.pop("br_forward_delay", None)
    if bridge.stp:  # NetworkManager sets none with STP off: see kernel_forward_delay
        seconds = bridge.forward_delay if delay is None else _seconds(delay, "forward_delay")
        low, high = FORWARD_DELAY_RANGE
        settings["forward-delay"] = min(max(seconds, low), high)
    for key, value in options.items():
        if key not in BRIDGE_OPTIONS:
            name = key.removeprefix("br_")
            raise NetError(
                ErrorCode.BAD_PARAMS,
                f"bridge_opts: {name} cannot be set through NetworkManager (net_configurator = nm)",
            )
        prop, convert = BRIDGE_OPTIONS[key]
        settings[prop] = convert(value)
    return settings


def kernel_forward_delay(bridge: Bridge) -> int | None:
    """With STP off NetworkManager leaves the kernel's forward delay (15 s)
    where the iproute2 configurator sets the network's (1/100 s): set
    through netlink after activation, so that both report the same."""
    if bridge.stp:
        return None
    return dict(bridge.options).get("br_forward_delay", bridge.forward_delay * CENTISECONDS)


def network_profiles(network: Network) -> list[WantedProfile]:
    """The profiles of ``network``, lower devices first. Refuses (before
    anything is sent) what this configurator does not build."""
    top = network.top
    ip = top.ip
    if isinstance(top, Bridge):
        profiles = [
            WantedProfile(
                top.name,
                {
                    "connection": _connection(top.name, "bridge"),
                    "bridge": bridge_settings(top),
                    "802-3-ethernet": {"mtu": top.mtu},
                    **_ip(top.name, ip),
                    "user": _mark(),
                },
                # a bridge without a port has no carrier: without IPv4,
                # what IPv6 it has (a static address) waits for it
                layer2=dynamic(ip) or (top.port is None and _no_ipv4(ip)),
                created=True,
                forward_delay=kernel_forward_delay(top),
            )
        ]
        if top.port is None:
            return profiles
        return [*_device_profiles(network, top.port, top.name, None), *profiles]
    return _device_profiles(network, top, None, ip)


def _device_profiles(
    network: Network, device: Any, master: str | None, ip: IpConfig | None
) -> list[WantedProfile]:
    """The profiles of a bridge's port (``master``) or of a bridgeless
    network's device (``ip``): a NIC, a VLAN or a bond."""
    from configurators.nm_profiles_bond import bond_profiles, vlan_profile

    if isinstance(device, Vlan):
        return [vlan_profile(device, master, ip)]
    if isinstance(device, Bond):
        return bond_profiles(device, master, ip, role=True)
    if not isinstance(device, Nic):
        raise NetError(ErrorCode.BAD_PARAMS, f"network {network.name}: {device.name} unsupported")
    if master is not None:
        return [
            WantedProfile(
                device.name,
                {
                    "connection": _connection(
                        device.name, "802-3-ethernet", master=master, **{"slave-type": "bridge"}
                    ),
                    "802-3-ethernet": {"mtu": device.mtu},
                    "user": _mark(),
                },
                after=(master,),
            )
        ]
    return [
        WantedProfile(
            device.name,
            {
                "connection": _connection(device.name, "802-3-ethernet"),
                "802-3-ethernet": {"mtu": device.mtu},
                **_ip(device.name, ip),
                "user": _mark(),
            },
            layer2=dynamic(ip),
        )
    ]


def _no_ipv4(ip: IpConfig | None) -> bool:
    return ipv4_settings("", ip)["method"] == "disabled"


def dynamic(ip: IpConfig | None) -> bool:
    """Whether activation is awaited up to LAYER2_READY only: an address
    comes later (non-blocking DHCP, DHCPv6, IPv6 autoconf)."""
    if ip is None:
        return False
    return (ip.has_dhcp and not ip.blocking_dhcp) or ip.ipv6.autoconf or ip.ipv6.dhcpv6


def activation_order(profiles: Iterable[WantedProfile]) -> list[WantedProfile]:
    """Masters before their ports (a bridge before its port, a bond before
    its slaves: a port activated first would activate its master itself,
    and the master's own activation then cut the port's), a VLAN's parent
    before it; by name otherwise."""
    by_name = {p.device: p for p in profiles}
    depth: dict[str, int] = {}

    def of(name: str, seen: frozenset[str]) -> int:
        if name not in depth:
            settings = by_name[name].settings
            above = (settings["connection"].get("master"), settings.get("vlan", {}).get("parent"))
            depth[name] = 1 + max(
                (of(n, seen | {name}) for n in above if n in by_name and n not in seen),
                default=-1,
            )
        return depth[name]

    return sorted(by_name.values(), key=lambda p: (of(p.device, frozenset()), p.device))


def same_settings(
    wanted: Mapping[str, Mapping[str, Any]], held: Mapping[str, Mapping[str, Any]]
) -> bool:
    """Whether a held profile already has every wanted key's value (the
    keys NetworkManager fills in with defaults are not compared; a key it
    does not show holds its default, which a wanted 0 / False is)."""
    for name, setting in wanted.items():
        have = held.get(name, {})
        for key, value in setting.items():
            if key not in have and value is not None and not value and _normal(value) == 0:
                continue
            if _normal(have.get(key)) != _normal(value):
                return False
    return True


def _normal(value: Any) -> Any:
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    return value
