"""The fields of one device's ifcfg file, from the network model (pure).

A file is assembled from three parts (:func:`compose`): the device's own
keys (``DEVICE`` and what makes it a bridge, VLAN or bond), what a network
puts on it (the ``BRIDGE`` it is a port of, or the ``MASTER`` bond it is a
slave of; ``MTU``; the IP configuration on the network's top device), and
``ONBOOT=yes`` with ``NM_CONTROLLED`` (yes when NetworkManager's ifcfg-rh
plugin applies the files, no for the initscripts).

Every device file carries ``DEFROUTE`` and ``IPV6INIT`` (and a device
without IP ``BOOTPROTO=none``) so that neither reader falls back to a
default of its own (DHCP, IPv6 autoconfiguration) on a device netreload
configured without.
"""

from __future__ import annotations

from collections.abc import Mapping

from configurators.ifcfg_format import yes
from shared.errors import ErrorCode, NetError
from shared.netmodel.bond import Bond
from shared.netmodel.bridge import Bridge
from shared.netmodel.ipconfig import IpConfig
from shared.netmodel.vlan import Vlan

# What a network puts on a device (dropped when the network leaves it).
NETWORK_KEYS = frozenset(
    {
        "BRIDGE", "MASTER", "SLAVE", "MTU", "BOOTPROTO", "IPADDR", "NETMASK", "PREFIX",
        "GATEWAY", "DEFROUTE", "IPV6INIT", "IPV6ADDR", "IPV6_DEFAULTGW", "IPV6_AUTOCONF",
        "DHCPV6C", "DNS1", "DNS2", "DNS3", "ONBOOT", "NM_CONTROLLED", "HOTPLUG", "IPV6_DISABLED",
        "NETRELOAD_NETWORK", "IPV4_DHCP_TIMEOUT", "IPV6_DHCP_TIMEOUT", "IPV6_RA_TIMEOUT",
    }
)  # fmt: skip
# The IP block of a network's top device.
IP_KEYS = frozenset(
    {
        "BOOTPROTO", "IPADDR", "NETMASK", "PREFIX", "GATEWAY", "DEFROUTE", "IPV6INIT",
        "IPV6ADDR", "IPV6_DEFAULTGW", "IPV6_AUTOCONF", "DHCPV6C", "DNS1", "DNS2", "DNS3",
        "IPV6_DISABLED", "IPV4_DHCP_TIMEOUT", "IPV6_DHCP_TIMEOUT", "IPV6_RA_TIMEOUT",
    }
)  # fmt: skip
#: NetworkManager's "infinity" for a DHCP or router-advertisement wait
NM_FOREVER = "2147483647"
MAX_NAMESERVERS = 3  # DNS1..DNS3, as the production agent wrote
CENTISECONDS = 100
STP_DELAY_MIN, STP_DELAY_MAX = 2 * CENTISECONDS, 30 * CENTISECONDS


def ip_fields(ip: IpConfig | None) -> dict[str, str]:
    """The IP block of a device: the top device's configuration, or none
    (``BOOTPROTO=none``, no default route, no IPv6)."""
    if ip is None:
        return {"BOOTPROTO": "none", "DEFROUTE": "no", "IPV6INIT": "no"}
    v4, v6 = ip.ipv4, ip.ipv6
    fields: dict[str, str] = {}
    if v4.address is not None and v4.netmask is not None:
        fields["IPADDR"] = v4.address
        fields["NETMASK"] = v4.netmask
        if v4.default_route and v4.gateway:
            fields["GATEWAY"] = v4.gateway
    fields["BOOTPROTO"] = "dhcp" if v4.is_dhcp else "none"
    fields["DEFROUTE"] = yes(v4.default_route and bool(v4.gateway or v4.is_dhcp))
    ipv6 = v6.address is not None or v6.autoconf or v6.dhcpv6
    fields["IPV6INIT"] = yes(ipv6)
    if ipv6:
        if v6.address is not None:
            fields["IPV6ADDR"] = v6.address
            if v6.gateway is not None:
                fields["IPV6_DEFAULTGW"] = v6.gateway
        if v6.dhcpv6:
            fields["DHCPV6C"] = "yes"
        fields["IPV6_AUTOCONF"] = yes(v6.autoconf)
    for number, server in enumerate(ip.nameservers[:MAX_NAMESERVERS], 1):
        fields[f"DNS{number}"] = server
    return fields


def bridge_base(bridge: Bridge) -> dict[str, str]:
    options = dict(bridge.options)
    delay = options.pop("br_forward_delay", bridge.forward_delay * CENTISECONDS)
    if bridge.stp:  # the kernel (and NetworkManager) take 2..30 s with STP on
        delay = min(max(delay, STP_DELAY_MIN), STP_DELAY_MAX)
    if options:
        raise NetError(
            ErrorCode.BAD_PARAMS,
            f"bridge {bridge.name}: bridge_opts {', '.join(k.removeprefix('br_') for k in options)}"
            " are not supported by the ifcfg configurator",
        )
    return {
        "DEVICE": bridge.name,
        "TYPE": "Bridge",
        "DELAY": str(delay // CENTISECONDS),
        "STP": "on" if bridge.stp else "off",
    }


def vlan_base(vlan: Vlan) -> dict[str, str]:
    if vlan.device is None:
        raise NetError(ErrorCode.BAD_VLAN, f"vlan {vlan.name}: needs a nic or bond")
    return {
        "DEVICE": vlan.name,
        "VLAN": "yes",
        "PHYSDEV": vlan.device.name,
        "VLAN_ID": str(vlan.tag),
    }


def bond_base(bond: Bond) -> dict[str, str]:
    options = " ".join(f"{key}={value}" for key, value in bond.parsed_options.items())
    fields = {"DEVICE": bond.name, "TYPE": "Bond", "BONDING_MASTER": "yes"}
    fields["BONDING_OPTS"] = options or "mode=0"  # the kernel's default, said
    if bond.hwaddr:
        fields["MACADDR"] = bond.hwaddr
    return fields


def nic_base(name: str) -> dict[str, str]:
    return {"DEVICE": name}


def compose(
    base: Mapping[str, str],
    *,
    nm_controlled: bool,
    mtu: int | None = None,
    bridge: str | None = None,
    master: str | None = None,
    ip: IpConfig | None = None,
    network: str | None = None,
) -> dict[str, str]:
    """A whole file's fields: ``base`` (:func:`bridge_base` …), then the
    network's part, then ``ONBOOT`` and ``NM_CONTROLLED``. A port (of a
    bridge) or slave (of a bond) has no IP block: its master carries it."""
    fields = {k: v for k, v in base.items() if k not in NETWORK_KEYS}
    if network is not None:
        # a bridgeless network's name is not its device's: said for the
        # upgrade to unified persistence (both readers ignore the key)
        fields["NETRELOAD_NETWORK"] = network
    if bridge is not None:
        fields["BRIDGE"] = bridge
    if master is not None:
        fields["MASTER"] = master
        fields["SLAVE"] = "yes"
    if mtu is not None:
        fields["MTU"] = str(mtu)
    if bridge is None and master is None:
        fields.update(ip_fields(ip))
        if nm_controlled:
            fields.update(nm_ip_fields(fields))
    fields["ONBOOT"] = "yes"
    fields["NM_CONTROLLED"] = yes(nm_controlled)
    if base.get("TYPE") == "Bridge" or base.get("VLAN") == "yes":
        fields["HOTPLUG"] = "no"  # no udev-triggered ifup of a half-made stack
    return fields


def nm_ip_fields(fields: Mapping[str, str]) -> dict[str, str]:
    """What NetworkManager needs said to behave as the production agent's
    networks do: IPV6INIT=no alone reads as "leave IPv6 to the kernel"
    (autoconfiguration on), so IPv6 is disabled outright; a DHCP client or
    router solicitation goes on until answered, as the production agent's
    non-blocking DHCP does, instead of failing the device after a timeout."""
    extra = {}
    if fields.get("IPV6INIT") == "no":
        extra["IPV6_DISABLED"] = "yes"
    if fields.get("BOOTPROTO") == "dhcp":
        extra["IPV4_DHCP_TIMEOUT"] = NM_FOREVER
    if fields.get("DHCPV6C") == "yes":
        extra["IPV6_DHCP_TIMEOUT"] = NM_FOREVER
    if fields.get("IPV6_AUTOCONF") == "yes":
        extra["IPV6_RA_TIMEOUT"] = NM_FOREVER
    return extra


def is_dynamic(fields: Mapping[str, str]) -> bool:
    """The device gets (some of) its IP configuration from the network."""
    return (
        fields.get("BOOTPROTO") == "dhcp"
        or fields.get("DHCPV6C") == "yes"
        or fields.get("IPV6_AUTOCONF") == "yes"
    )


def base_of(fields: Mapping[str, str]) -> dict[str, str]:
    """The device's own keys of a file (what :func:`compose` started from)."""
    return {k: v for k, v in fields.items() if k not in NETWORK_KEYS}
