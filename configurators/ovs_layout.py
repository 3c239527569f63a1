"""Networks and bonds → OVSDB rows, as plain data (PURE: no I/O).

The mapping follows the production agent's OVS switch: one OVS bridge per
southbound device (the NIC or bond a network sits on), every network an
*internal port* of that bridge named after the network, tagged with the
network's VLAN; bridged and bridgeless networks look the same in OVSDB
(bridgeless is only how the report shows them). A NIC is the bridge's
southbound port; an OVS bond is a port with several interfaces. A network
without NIC or bond gets a bridge of its own.

Unlike the production agent, bridge names are not random but derived from
the southbound device (``nrbr_`` + 8 hex digits): the objectified rollback
rebuilds a removed bridge under the very name it had, and restore finds it.

State is ``OvsState``: ``{"bridges": {name: {...}}, "ports": {name: {...}},
"interfaces": {name: {...}}}`` with only the columns netreload writes
(see :data:`BRIDGE_COLUMNS` …). The configurator edits a copy of OVSDB's
state with the functions below, then :func:`diff` turns old → new into the
edits of one OVSDB transaction.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

OvsState = dict[str, dict[str, dict[str, Any]]]

OWNER_KEY = "netreload"  # external_ids key marking rows netreload created
NORTHBOUND, SOUTHBOUND, LOCAL = "northbound", "southbound", "local"
BRIDGE_PREFIX = "nrbr_"

BRIDGE_COLUMNS = ("datapath_type", "stp_enable", "external_ids")
PORT_COLUMNS = ("tag", "bond_mode", "lacp", "external_ids")
IFACE_COLUMNS = ("type", "mtu_request")


def empty_state() -> OvsState:
    return {"bridges": {}, "ports": {}, "interfaces": {}}


def bridge_name(southbound: str | None, network: str) -> str:
    """The OVS bridge of ``southbound`` (or of a NIC-less ``network``)."""
    key = f"sb:{southbound}" if southbound else f"net:{network}"
    return BRIDGE_PREFIX + hashlib.sha1(key.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class OvsNetwork:
    """What OVSDB holds of one network."""

    name: str
    southbound: str | None  # the NIC or bond
    southbound_is_bond: bool
    tag: int | None
    mtu: int
    lower_mtu: int  # what the southbound must carry (max of its networks)
    stp: bool

    @property
    def bridge(self) -> str:
        return bridge_name(self.southbound, self.name)

    @classmethod
    def from_attrs(cls, name: str, attrs: Mapping, lower_mtu: int | None) -> OvsNetwork:
        mtu = int(attrs.get("mtu", 1500))
        return cls(
            name=name,
            southbound=attrs.get("nic") or attrs.get("bonding"),
            southbound_is_bond="bonding" in attrs,
            tag=attrs.get("vlan"),
            mtu=mtu,
            lower_mtu=max(mtu, lower_mtu or 0),
            stp=bool(attrs.get("stp", False)) if attrs.get("bridged", True) else False,
        )


@dataclass(frozen=True)
class OvsBond:
    name: str
    slaves: tuple[str, ...]
    bond_mode: str
    lacp: str
    mtu: int

    @property
    def bridge(self) -> str:
        return bridge_name(self.name, self.name)


def _owned(level: str, **extra: str) -> dict[str, str]:
    return {OWNER_KEY: level, **extra}


def _ensure_bridge(state: OvsState, name: str, datapath: str, stp: bool, sb: str) -> None:
    if name in state["bridges"]:
        return
    state["bridges"][name] = {
        "datapath_type": datapath,
        "stp_enable": stp,
        "external_ids": _owned("bridge", southbound=sb),
        "ports": [name],
    }
    # the bridge's local port, as ovs-vsctl add-br makes it
    state["ports"][name] = _port(name, [name], _owned(LOCAL))
    state["interfaces"][name] = {"type": "internal", "mtu_request": None}


def _port(bridge: str, interfaces: list[str], external_ids: dict, **columns: Any) -> dict:
    return {
        "bridge": bridge,
        "interfaces": sorted(interfaces),
        "tag": columns.get("tag"),
        "bond_mode": columns.get("bond_mode"),
        "lacp": columns.get("lacp"),
        "external_ids": external_ids,
    }


def _add_port(state: OvsState, bridge: str, name: str, port: dict) -> None:
    _remove_port(state, name)
    state["ports"][name] = port
    ports = state["bridges"][bridge]["ports"]  # unsorted: a sort per port is O(N²)
    if name not in ports:
        ports.append(name)


def _remove_port(state: OvsState, name: str) -> None:
    port = state["ports"].pop(name, None)
    if port is None:
        return
    for iface in port["interfaces"]:
        state["interfaces"].pop(iface, None)
    bridge = state["bridges"].get(port["bridge"])
    if bridge is not None:
        bridge["ports"] = [p for p in bridge["ports"] if p != name]


def remove_bridge(state: OvsState, name: str) -> None:
    bridge = state["bridges"].pop(name, None)
    for port in list(bridge["ports"] if bridge else ()):
        _remove_port(state, port)


def northbound_ports(state: OvsState, bridge: str) -> list[str]:
    ports = state["bridges"].get(bridge, {}).get("ports", ())
    return [p for p in ports if _level(state["ports"].get(p)) == NORTHBOUND]


def _level(port: Mapping | None) -> str | None:
    return (port or {}).get("external_ids", {}).get(OWNER_KEY)


def add_network(state: OvsState, net: OvsNetwork, datapath: str) -> None:
    """The network's internal port (and its bridge with its southbound port)."""
    bridge = net.bridge
    if net.southbound and net.southbound_is_bond and bridge not in state["bridges"]:
        raise KeyError(f"OVS bond {net.southbound} does not exist")
    _ensure_bridge(state, bridge, datapath, net.stp, net.southbound or "")
    if net.southbound and not net.southbound_is_bond and net.southbound not in state["ports"]:
        port = _port(bridge, [net.southbound], _owned(SOUTHBOUND))
        _add_port(state, bridge, net.southbound, port)
        state["interfaces"][net.southbound] = {"type": "", "mtu_request": net.lower_mtu}
    _add_port(state, bridge, net.name, _port(bridge, [net.name], _owned(NORTHBOUND), tag=net.tag))
    state["interfaces"][net.name] = {"type": "internal", "mtu_request": net.mtu}


def remove_network(state: OvsState, net: OvsNetwork) -> None:
    """Drop the internal port; a NIC's bridge goes with its last network
    (a bond's stays: the bond outlives its networks)."""
    _remove_port(state, net.name)
    bridge = net.bridge
    if bridge in state["bridges"] and not net.southbound_is_bond:
        if not northbound_ports(state, bridge):
            remove_bridge(state, bridge)


def add_bond(state: OvsState, bond: OvsBond, datapath: str) -> None:
    """The bond's bridge and its bond port (created or changed in place)."""
    bridge = bond.bridge
    _ensure_bridge(state, bridge, datapath, False, bond.name)
    old = state["ports"].get(bond.name)
    port = _port(bridge, list(bond.slaves), _owned("bond"),
                 bond_mode=bond.bond_mode, lacp=bond.lacp)  # fmt: skip
    if old is not None:
        for iface in set(old["interfaces"]) - set(bond.slaves):
            state["interfaces"].pop(iface, None)
        state["ports"][bond.name] = port
    else:
        _add_port(state, bridge, bond.name, port)
    for slave in bond.slaves:
        state["interfaces"][slave] = {"type": "", "mtu_request": bond.mtu}


def remove_bond(state: OvsState, name: str) -> None:
    remove_bridge(state, bridge_name(name, name))


def set_mtu(state: OvsState, device: str, mtu: int) -> bool:
    """mtu_request of a southbound NIC or of every interface of a bond;
    False when OVSDB holds no such port."""
    port = state["ports"].get(device)
    if port is None:
        return False
    for iface in port["interfaces"]:
        state["interfaces"][iface]["mtu_request"] = mtu
    return True


# -- old → new: the edits of one transaction ---------------------------------


def diff(old: OvsState, new: OvsState) -> list[tuple]:
    """Edits taking ``old`` to ``new``, deletions first:

    ``("del_bridge", name)``, ``("del_port", name)``, ``("add_bridge",
    name, columns)``, ``("add_port", bridge, name, columns, {iface:
    columns})``, ``("set_port", name, columns)``, ``("set_iface", name,
    columns)``, ``("set_bridge", name, columns)``. A port whose bridge or
    interface list changed is deleted and added again.
    """
    dels: list[tuple] = []
    adds: list[tuple] = []
    sets: list[tuple] = []
    for name in sorted(old["bridges"]):
        if name not in new["bridges"]:
            dels.append(("del_bridge", name))
    gone_bridges = {e[1] for e in dels}
    for name, port in sorted(old["ports"].items()):
        if port["bridge"] in gone_bridges:
            continue
        other = new["ports"].get(name)
        if other is None or _port_moved(port, other):
            dels.append(("del_port", name))
    for name, bridge in sorted(new["bridges"].items()):
        before = old["bridges"].get(name)
        if before is None:
            adds.append(("add_bridge", name, _columns(bridge, BRIDGE_COLUMNS)))
        elif _columns(before, BRIDGE_COLUMNS) != _columns(bridge, BRIDGE_COLUMNS):
            sets.append(("set_bridge", name, _changed(before, bridge, BRIDGE_COLUMNS)))
    for name, port in sorted(new["ports"].items()):
        before = old["ports"].get(name)
        if before is None or before["bridge"] in gone_bridges or _port_moved(before, port):
            ifaces = {i: _columns(new["interfaces"][i], IFACE_COLUMNS) for i in port["interfaces"]}
            adds.append(("add_port", port["bridge"], name, _columns(port, PORT_COLUMNS), ifaces))
            continue
        if _columns(before, PORT_COLUMNS) != _columns(port, PORT_COLUMNS):
            sets.append(("set_port", name, _changed(before, port, PORT_COLUMNS)))
        for iface in port["interfaces"]:
            was, now = old["interfaces"].get(iface), new["interfaces"][iface]
            if was is None:  # a bond's interface list changed
                continue
            if _columns(was, IFACE_COLUMNS) != _columns(now, IFACE_COLUMNS):
                sets.append(("set_iface", iface, _changed(was, now, IFACE_COLUMNS)))
    return dels + adds + sets


def _port_moved(before: Mapping, after: Mapping) -> bool:
    return before["bridge"] != after["bridge"] or before["interfaces"] != after["interfaces"]


def _columns(row: Mapping, columns: tuple[str, ...]) -> dict:
    return {c: row.get(c) for c in columns}


def _changed(before: Mapping, after: Mapping, columns: tuple[str, ...]) -> dict:
    return {c: after.get(c) for c in columns if before.get(c) != after.get(c)}


def copy_state(state: OvsState) -> OvsState:
    return copy.deepcopy(state)


def owned_bridges(state: OvsState) -> dict[str, str]:
    """Bridges netreload created → their southbound device ("" for none)."""
    return {
        name: bridge["external_ids"].get("southbound", "")
        for name, bridge in state["bridges"].items()
        if bridge["external_ids"].get(OWNER_KEY) == "bridge"
    }
