"""The NetworkManager profiles of bonds, their slaves and VLANs, computed
purely from the model (the building blocks are :mod:`configurators.nm_profiles`').

* a bond: ``bond`` with its options translated to NetworkManager's option
  dict (:func:`nm_bond_options`: named values where NetworkManager wants
  them, ``updelay``/``downdelay`` rounded down to a multiple of miimon as
  the kernel does; an option NetworkManager 1.42 has no key for —
  :data:`NOT_IN_NM` — is refused with 25 before anything is sent), its MTU
  and ``hwaddr`` (``802-3-ethernet``), and a *role*: a bridge's port
  (``master``/``slave-type``), the IP configuration of the untagged
  bridgeless network on it, or none (IPv4 disabled, IPv6 link-local).
  A bond changed by ``create_bond``/``modify_bond`` alone keeps the role its
  held profile has (:func:`with_role`), so that editing a bond's options
  does not take it out of its bridge;
* a bond's slave: ``802-3-ethernet`` with ``master`` the bond and
  ``slave-type`` bond, the bond's MTU; it follows the bond's reactivation;
* a VLAN: ``vlan`` (``parent``: the NIC or bond, ``id``), its MTU, and a
  bridge's port or the bridgeless network's IP configuration. A NIC under
  a VLAN gets no profile of its own (NetworkManager activates a VLAN over
  a managed NIC it holds no profile for): it is set ``Managed``, up, and
  its MTU goes through the kernel.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from configurators.nm_profiles import WantedProfile, _connection, _ip, _mark, dynamic
from shared.errors import ErrorCode, NetError
from shared.netmodel.bond import Bond
from shared.netmodel.bond_options import (
    BOND_OPTIONS,
    MODE_NAMES,
    mode_number,
    validate_bond_options,
)
from shared.netmodel.bond_options_table import ValueKind
from shared.netmodel.ipconfig import IpConfig
from shared.netmodel.nic import Nic
from shared.netmodel.vlan import Vlan

#: bonding options the kernel has and NetworkManager 1.42's bond setting
#: has no key for
NOT_IN_NM = frozenset({"arp_missed_max", "lacp_active", "ns_ip6_target", "coupled_control"})
#: on/off options NetworkManager takes as 0/1
_NUMERIC_ENUMS = frozenset({"use_carrier", "all_slaves_active", "tlb_dynamic_lb"})
_MIIMON_MULTIPLES = ("updelay", "downdelay")
#: the keys of a profile's role, kept from the held profile when a bond is
#: changed without its network: (setting, key)
ROLE_CONNECTION_KEYS = ("master", "slave-type")
ROLE_IP_KEYS = frozenset(
    {
        "method",
        "address-data",
        "gateway",
        "route-data",
        "routing-rules",
        "never-default",
        "dhcp-timeout",
        "may-fail",
        "ignore-auto-dns",
        "route-metric",
        "addr-gen-mode",
    }
)


def nm_bond_options(bond: Bond) -> dict[str, str]:
    """The bond's options as NetworkManager's ``bond.options``; 25 naming
    the option when NetworkManager cannot express one."""
    options = validate_bond_options(bond.name, bond.parsed_options)
    refused = sorted(set(options) & NOT_IN_NM)
    if refused:
        raise NetError(
            ErrorCode.BAD_BONDING,
            f"bond {bond.name}: bonding option {', '.join(refused)} cannot be set through "
            "NetworkManager (net_configurator = nm)",
        )
    out = {"mode": MODE_NAMES[mode_number(options)]}
    miimon = int(options.get("miimon", "0"))
    for key, value in options.items():
        if key == "mode":
            continue
        opt = BOND_OPTIONS[key]
        if opt.kind is ValueKind.ENUM:
            number = int(value) if value.isdigit() else opt.values[value]
            if key in _NUMERIC_ENUMS:
                value = str(number)
            else:
                value = next(name for name, n in opt.values.items() if n == number)
        elif opt.kind is ValueKind.INT:
            value = str(int(value))
            if key in _MIIMON_MULTIPLES:
                # NetworkManager refuses what the kernel rounds down
                value = str(int(value) // miimon * miimon if miimon else 0)
        elif opt.kind is ValueKind.MAC:
            value = value.lower()
        if key == "primary" and value == "":
            continue  # no primary
        out[key] = value
    return out


def check_bonds(bonds: Mapping[str, Mapping]) -> None:
    """Before any change: the bonds NetworkManager could not build as asked."""
    for name, attrs in sorted(bonds.items()):
        nm_bond_options(Bond.from_attrs(name, dict(attrs), 1500))


def bond_profiles(
    bond: Bond, master: str | None = None, ip: IpConfig | None = None, role: bool = False
) -> list[WantedProfile]:
    """The bond's profile and its slaves'. ``role`` False: the bond keeps
    the role its held profile has (:func:`with_role`); True: ``master``
    (a bridge) or else ``ip`` (None: no IP of its own)."""
    if not bond.slaves:  # a network on a bond the running configuration does not define
        raise NetError(
            ErrorCode.BAD_BONDING,
            f"bond {bond.name}: not netreload's; NetworkManager does not take over a bond "
            "netreload did not define (net_configurator = nm)",
        )
    ethernet: dict[str, Any] = {"mtu": bond.mtu}
    if bond.hwaddr:
        ethernet["cloned-mac-address"] = bond.hwaddr
    settings: dict[str, dict[str, Any]] = {
        "connection": _connection(bond.name, "bond"),
        "bond": {"options": nm_bond_options(bond)},
        "802-3-ethernet": ethernet,
        "user": _mark(),
    }
    profile = WantedProfile(bond.name, settings, created=True, inherit_role=not role)
    if role:
        profile = _with_own_role(profile, master, ip)
    slaves = [
        WantedProfile(
            nic,
            {
                "connection": _connection(
                    nic, "802-3-ethernet", master=bond.name, **{"slave-type": "bond"}
                ),
                "802-3-ethernet": {"mtu": bond.mtu},
                "user": _mark(),
            },
            after=(bond.name,),
        )  # fmt: skip
        for nic in bond.slaves
    ]
    return [profile, *slaves]


def _with_own_role(
    profile: WantedProfile, master: str | None, ip: IpConfig | None
) -> WantedProfile:
    settings = dict(profile.settings)
    connection = {k: v for k, v in settings["connection"].items() if k not in ROLE_CONNECTION_KEYS}
    for name in ("ipv4", "ipv6"):
        settings.pop(name, None)
    if master is not None:
        connection.update(master=master, **{"slave-type": "bridge"})
    else:
        settings.update(_ip(profile.device, ip))
    settings["connection"] = connection
    return replace(
        profile,
        settings=settings,
        inherit_role=False,
        layer2=master is None and dynamic(ip),
        plain=master is None and ip is None,
        after=(master,) if master is not None else (),
    )


def with_role(
    profile: WantedProfile, held: Mapping[str, Mapping[str, Any]] | None
) -> WantedProfile:
    """A bond profile changed without its network: the role of the profile
    NetworkManager holds (none when it holds none)."""
    if not profile.inherit_role:
        return profile
    if held is None:
        return _with_own_role(profile, None, None)
    master = held.get("connection", {}).get("master") or None
    if master is not None:
        return _with_own_role(profile, master, None)
    settings = dict(profile.settings)
    for name in ("ipv4", "ipv6"):
        settings[name] = {k: v for k, v in held.get(name, {}).items() if k in ROLE_IP_KEYS}
    ipv4, ipv6 = settings["ipv4"], settings["ipv6"]
    plain = ipv4.get("method") == "disabled" and ipv6.get("method") in ("link-local", None)
    # an address that comes later (non-blocking DHCP, DHCPv6, autoconf):
    # its reactivation is awaited up to LAYER2_READY, as when it was added
    layer2 = bool(
        (ipv4.get("method") == "auto" and ipv4.get("may-fail", True))
        or ipv6.get("method") in ("auto", "dhcp", "ignore")
    )
    return replace(profile, settings=settings, inherit_role=False, plain=plain, layer2=layer2)


def keep_role(new: WantedProfile, old: WantedProfile | None) -> WantedProfile:
    """``new`` (a bond changed) with the role ``old`` (wanted earlier in the
    transaction: a network added or removed on the bond) gave it."""
    if old is None or old.inherit_role or not new.inherit_role:
        return new
    settings = dict(new.settings)
    connection = {k: v for k, v in settings["connection"].items() if k not in ROLE_CONNECTION_KEYS}
    connection.update({k: v for k, v in old.settings["connection"].items()
                       if k in ROLE_CONNECTION_KEYS})  # fmt: skip
    settings["connection"] = connection
    for name in ("ipv4", "ipv6"):
        settings.pop(name, None)
        if name in old.settings:
            settings[name] = old.settings[name]
    return replace(
        new,
        settings=settings,
        inherit_role=False,
        layer2=old.layer2,
        plain=old.plain,
        after=old.after,
    )


def vlan_profile(vlan: Vlan, master: str | None, ip: IpConfig | None) -> WantedProfile:
    """A VLAN on a NIC or bond: a bridge's port (``master``) or the
    bridgeless network's device (``ip``)."""
    lower = vlan.device
    assert lower is not None  # validated
    extra = {"master": master, "slave-type": "bridge"} if master is not None else {}
    settings: dict[str, dict[str, Any]] = {
        "connection": _connection(vlan.name, "vlan", **extra),
        "vlan": {"parent": lower.name, "id": vlan.tag},
        "802-3-ethernet": {"mtu": vlan.mtu},
        "user": _mark(),
    }
    if master is None:
        settings.update(_ip(vlan.name, ip))
    return WantedProfile(
        vlan.name,
        settings,
        layer2=master is None and dynamic(ip),
        created=True,
        parent_nic=lower.name if isinstance(lower, Nic) else None,
        after=(master,) if master is not None else (),
    )
