"""Verification: the kernel, read back, against what a plan asked for.

Pure: compares a capabilities report with the plan, so it is tested without
root. A mismatch is an error, and the transaction rolls back.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Mapping

from shared.netinfo_report import southbound_iface, stp_is_on
from shared.netmodel import bond_options, ovs_bond_options
from shared.netmodel.addresses import netmask_to_prefix
from shared.netmodel.names import vlan_device_name
from shared.netmodel.ownership import network_devices


def _expected_iface(name: str, attrs: Mapping) -> str:
    """The network's top device, as the model builds it (its rule without
    a model: a big change verifies thousands of networks): its bridge (an
    OVS network's internal port) when bridged, else the NIC, bond or VLAN
    device under it, on either switch (a bridgeless OVS network's address
    is reported on that device)."""
    return name if attrs.get("bridged", True) else southbound_iface(attrs)


def _device(caps: Mapping, name: str) -> Mapping | None:
    for section in ("bridges", "vlans", "bondings", "nics"):
        if name in caps.get(section, {}):
            return caps[section][name]
    return None


def _holds(cidrs: list[str], cidr: str) -> bool:
    """Whether ``cidr`` is among ``cidrs``, compared as addresses, not text
    (``2001:0db8::0001/64`` is ``2001:db8::1/64``)."""
    if cidr in cidrs:
        return True
    try:
        wanted = ipaddress.ip_interface(cidr)
        return any(ipaddress.ip_interface(c) == wanted for c in cidrs)
    except ValueError:
        return False


def network_mismatches(
    name: str, attrs: Mapping, caps: Mapping, down: Collection[str] = ()
) -> list[str]:
    """What the kernel (``caps``) does not show of network ``name``.
    ``down``: netreload's devices the kernel holds administratively down
    (``superd.admin_state``; the report has no link state): the network's
    own bridge or VLAN device among them is a mismatch too, netreload
    always sets them up (a rebuild finishes a creation cut short)."""
    problems: list[str] = []
    if down:  # a verification passes none: no walk of the network's devices
        problems += [f"network {name}: {dev} is down" for dev in network_devices(name, attrs)
                     if dev in down]  # fmt: skip
    iface = _expected_iface(name, attrs)
    device = _device(caps, iface)
    if device is None:
        return [f"network {name}: device {iface} is missing"]
    lower = attrs.get("nic") or attrs.get("bonding")
    port = vlan_device_name(lower, attrs["vlan"]) if lower and "vlan" in attrs else lower
    if attrs.get("bridged", True):
        expected_ports = [port] if port else []
        ports = [p for p in device.get("ports", []) if p == port or not expected_ports]
        if ports != expected_ports:
            problems.append(
                f"network {name}: bridge ports {device.get('ports')} lack {expected_ports}"
            )
        if stp_is_on(device.get("stp")) != bool(attrs.get("stp", False)):
            problems.append(f"network {name}: stp is {device.get('stp')}")
    if "vlan" in attrs and lower:
        vlan = caps.get("vlans", {}).get(port)
        if vlan is None or int(vlan.get("vlanid", -1)) != attrs["vlan"]:
            problems.append(f"network {name}: vlan {port} with id {attrs['vlan']} is missing")
    if int(device.get("mtu", 0)) != attrs.get("mtu", 1500):
        problems.append(f"network {name}: mtu {device.get('mtu')} != {attrs.get('mtu')}")
    if "ipaddr" in attrs:
        cidr = f"{attrs['ipaddr']}/{netmask_to_prefix(attrs['netmask'])}"
        if cidr not in device.get("ipv4addrs", []):
            problems.append(f"network {name}: address {cidr} missing on {iface}")
        if attrs.get("defaultRoute") and attrs.get("gateway"):
            if not device.get("ipv4defaultroute") or device.get("gateway") != attrs["gateway"]:
                problems.append(f"network {name}: default route via {attrs['gateway']} missing")
        elif attrs.get("gateway") and device.get("gateway") != attrs["gateway"]:
            # reported from the network's table, found through its rules
            problems.append(f"network {name}: source routing via {attrs['gateway']} missing")
    if "ipv6addr" in attrs and not _holds(device.get("ipv6addrs", []), attrs["ipv6addr"]):
        problems.append(f"network {name}: address {attrs['ipv6addr']} missing on {iface}")
    if bool(device.get("ipv6autoconf")) != bool(attrs.get("ipv6autoconf", False)):
        problems.append(f"network {name}: ipv6autoconf is {device.get('ipv6autoconf')}")
    return problems


def bond_mismatches(
    name: str, attrs: Mapping, caps: Mapping, down: Collection[str] = ()
) -> list[str]:
    """What the kernel (``caps``) does not show of bond ``name``. ``down``:
    as :func:`network_mismatches`' — a legacy bond netreload made that is
    held down is a mismatch (netreload always sets it up; a rebuild
    finishes a creation cut short). Its NICs are the administrator's: one
    held down is not (they are never in ``down``, and not looked for)."""
    bond = caps.get("bondings", {}).get(name)
    if bond is None:
        return [f"bond {name} is missing"]
    problems = []
    if name in down and attrs.get("switch") != "ovs":  # an OVS bond is no kernel device
        problems.append(f"bond {name} is down")
    if sorted(bond.get("slaves", [])) != sorted(attrs.get("nics", [])):
        problems.append(f"bond {name}: slaves {bond.get('slaves')} != {attrs.get('nics')}")
    if attrs.get("switch") == "ovs":
        wanted_ovs = ovs_bond_options.parse(attrs.get("options", ""), name)
        opts = bond.get("opts", {})
        for key, value in wanted_ovs.items():
            if opts.get(key) != value:
                problems.append(f"bond {name}: {key} {opts.get(key)} != {value}")
        return problems
    wanted = bond_options.parse_bond_options(attrs.get("options", ""))
    mode = str(bond_options.mode_number(wanted))
    if str(bond.get("opts", {}).get("mode", "0")) != mode:
        problems.append(f"bond {name}: mode {bond.get('opts', {}).get('mode')} != {mode}")
    return problems


def plan_mismatches(plan_ops: list[Mapping], running: Mapping, caps: Mapping) -> list[str]:
    """What the kernel does not show of the operations just applied."""
    problems: list[str] = []
    nets = running.get("networks", {})
    added = {op["name"] for op in plan_ops if op["op"] == "add_network"}
    used: set[str] | None = None  # the top devices of the running networks
    for op in plan_ops:
        kind = op["op"]
        if kind == "add_network":
            problems += network_mismatches(op["name"], op["attrs"], caps)
        elif kind in ("add_bond", "edit_bond"):
            problems += bond_mismatches(op["name"], op["attrs"], caps)
        elif kind == "remove_bond" and op["name"] in caps.get("bondings", {}):
            problems.append(f"bond {op['name']} still exists")
        elif kind == "remove_network" and op["name"] not in added:
            iface = _expected_iface(op["name"], op["attrs"])
            lower = op["attrs"].get("nic") or op["attrs"].get("bonding")
            if iface == lower or _device(caps, iface) is None:
                continue  # gone, as it should (the usual case: no walk over the host)
            if used is None:
                # the model's rule, without a model per network of the host
                used = {_expected_iface(n, a) for n, a in nets.items()}
            if iface not in used:
                problems.append(f"network {op['name']}: device {iface} still exists")
        elif kind == "set_mtu":
            device = _device(caps, op["device"])
            if device is not None and int(device.get("mtu", 0)) != op["mtu"]:
                problems.append(f"{op['device']}: mtu {device.get('mtu')} != {op['mtu']}")
    return problems
