"""OVS networks and bonds in the capabilities report. PURE.

The kernel report (``shared.netinfo_report``) sees an OVS network's
internal port as a device of its own (it carries the network's IP
configuration, and its MTU); what OVSDB holds — which bridge, which
southbound port, which tag, which bond interfaces — comes from OVSDB's
state (the plain data of ``configurators.ovs_layout``). This module lays
the second over the first, as the production agent reported OVS networks:

* ``networks[net]``: ``switch: ovs``, ``ports`` and ``southbound`` = the
  southbound port (NIC, bond, or ``<nic>.<tag>`` for a tagged network, with
  ``vlanid`` the tag), ``stp`` of the bridge;
* ``bridges[net]`` for a bridged network, ``vlans["<nic>.<tag>"]`` for a
  tagged one — devices that do not exist in the kernel but are what a
  legacy network of the same attributes would show;
* a bridgeless network's IP attributes on its NIC/bond/VLAN entry, which
  becomes its ``iface``;
* ``bondings[bond]`` for an OVS bond: its interfaces as ``slaves``, its
  ``bond_mode`` and ``lacp`` as ``opts``, ``switch: ovs``.

Entries of the kernel report may be shared between reports: every entry
changed here is a copy.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from configurators.ovs_layout import OvsNetwork, OvsState, bridge_name
from shared.netinfo_report import empty_ip_info, southbound_iface, stp_text

SHARED_ATTRS = (
    "mtu", "addr", "netmask", "ipv4addrs", "ipv6addrs", "gateway", "ipv6gateway",
    "ipv4defaultroute", "ipv6autoconf", "dhcpv4", "dhcpv6",
)  # fmt: skip


def digest(state: OvsState) -> str:
    """A short name of ``state``, for report caches and tokens."""
    text = json.dumps(state, sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def has_ovs(running: Mapping) -> bool:
    return any(
        attrs.get("switch") == "ovs"
        for section in ("networks", "bonds")
        for attrs in (running.get(section) or {}).values()
    )


def overlay(caps: dict, ovs: OvsState, running: Mapping) -> dict:
    """A copy of ``caps`` with the OVS networks and bonds of ``running``."""
    out = {key: (dict(value) if isinstance(value, dict) else value) for key, value in caps.items()}
    for name, attrs in (running.get("bonds") or {}).items():
        if attrs.get("switch") == "ovs":
            _bond(out, name, ovs)
    for name, attrs in (running.get("networks") or {}).items():
        if attrs.get("switch") == "ovs":
            _network(out, name, attrs, ovs)
    return out


def _bond(out: dict, name: str, ovs: OvsState) -> None:
    port = ovs["ports"].get(name)
    if port is None or port["bridge"] != bridge_name(name, name):
        out["bondings"].pop(name, None)
        return
    mtus = [ovs["interfaces"].get(i, {}).get("mtu_request") for i in port["interfaces"]]
    entry = empty_ip_info(max((m for m in mtus if m), default=1500))
    entry.update(
        hwaddr="",
        slaves=list(port["interfaces"]),
        active_slave="",
        opts={"bond_mode": port["bond_mode"] or "active-backup", "lacp": port["lacp"] or "off"},
        switch="ovs",
        speed=0,
    )
    out["bondings"][name] = entry


def _network(out: dict, name: str, attrs: Mapping, ovs: OvsState) -> None:
    net = OvsNetwork.from_attrs(name, attrs, None)
    entry: dict[str, Any] = dict(out["networks"].get(name) or empty_ip_info(net.mtu))
    entry.pop("vlanid", None)
    port = ovs["ports"].get(name)
    bridge = ovs["bridges"].get(net.bridge)
    bridged = bool(attrs.get("bridged", True))
    entry["switch"] = "ovs"
    if port is None or bridge is None or port["bridge"] != net.bridge:
        entry.update(ports=[], missing=True)
        entry["southbound"] = None if bridged else southbound_iface(attrs)
        out["networks"][name] = entry
        return
    tag = port["tag"]
    southbound = net.southbound if net.southbound in bridge["ports"] else None
    lower = f"{southbound}.{tag}" if southbound and tag is not None else southbound
    entry["ports"] = [lower] if lower else []
    entry["southbound"] = lower if bridged else lower or southbound_iface(attrs)
    shared = {key: entry[key] for key in SHARED_ATTRS if key in entry}
    if tag is not None:
        if southbound:
            entry["vlanid"] = tag
            vlan = {**empty_ip_info(net.mtu), "iface": southbound, "vlanid": tag}
            if not bridged:
                vlan.update(shared)
            out["vlans"][lower] = vlan
    if bridged:
        entry["stp"] = stp_text(bridge["stp_enable"])
        entry["iface"] = name
        out["bridges"][name] = {**shared, "ports": list(entry["ports"]),
                                "stp": entry["stp"], "opts": {}}  # fmt: skip
    elif lower:
        entry["iface"] = entry["interface"] = lower
        for section in ("nics", "bondings"):
            if tag is None and lower in out[section]:
                out[section][lower] = {**out[section][lower], **shared}
    out["networks"][name] = entry
