"""Human-readable rendering of plans and errors for the CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the caps rendering must not import the planning pipeline
    from shared.netmodel.plan import Plan


def _describe_attrs(attrs: dict) -> str:
    parts = []
    lower = attrs.get("nic") or attrs.get("bonding")
    if lower:
        parts.append(f"on {lower}")
    if "vlan" in attrs:
        parts.append(f"vlan {attrs['vlan']}")
    if "bridged" in attrs:
        parts.append("bridged" if attrs["bridged"] else "bridgeless")
    if "mtu" in attrs:
        parts.append(f"mtu {attrs['mtu']}")
    if attrs.get("bootproto") == "dhcp":
        parts.append("dhcp")
    elif "ipaddr" in attrs:
        parts.append(f"{attrs['ipaddr']}/{attrs.get('netmask', '')}")
    if attrs.get("ipv6addr"):
        parts.append(attrs["ipv6addr"])
    if attrs.get("defaultRoute"):
        parts.append("default route")
    if "nics" in attrs:
        parts.append(f"nics {','.join(attrs['nics'])}")
    if attrs.get("options"):
        parts.append(f"options '{attrs['options']}'")
    return ", ".join(parts)


def render_plan(plan: Plan) -> str:
    if plan.is_empty:
        return "Nothing to change: the host already matches the request."
    rows = [("#", "operation", "object", "details")]
    for index, op in enumerate(plan.operations, 1):
        if op["op"] == "set_mtu":
            rows.append((str(index), op["op"], op["device"], f"mtu {op['mtu']}"))
        else:
            rows.append((str(index), op["op"], op["name"], _describe_attrs(op["attrs"])))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3]
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    ]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)


def render_caps(caps: dict) -> str:
    """Networks, then devices, as tables."""
    nets = [("network", "iface", "bridged", "ports", "mtu", "ipv4", "ipv6", "default route")]
    for name, net in sorted(caps.get("networks", {}).items()):
        nets.append((
            name, net.get("iface", ""), "yes" if net.get("bridged") else "no",
            ",".join(net.get("ports", [])), str(net.get("mtu", "")),
            ",".join(net.get("ipv4addrs", [])) + (" (dhcp)" if net.get("dhcpv4") else ""),
            ",".join(net.get("ipv6addrs", [])),
            net.get("gateway", "") if net.get("ipv4defaultroute") else "",
        ))  # fmt: skip
    devices = [("device", "kind", "mtu", "addresses", "details")]
    for kind, section in (("nic", "nics"), ("bond", "bondings"), ("vlan", "vlans"),
                          ("bridge", "bridges")):  # fmt: skip
        for name, dev in sorted(caps.get(section, {}).items()):
            if kind == "bond":
                details = f"slaves {','.join(dev.get('slaves', []))}"
            elif kind == "vlan":
                details = f"{dev.get('iface')} id {dev.get('vlanid')}"
            elif kind == "bridge":
                details = f"ports {','.join(dev.get('ports', []))}"
            else:
                details = dev.get("hwaddr", "")
            addrs = ",".join(dev.get("ipv4addrs", []) + dev.get("ipv6addrs", []))
            devices.append((name, kind, str(dev.get("mtu", "")), addrs, details))
    parts = [_table(nets) if len(nets) > 1 else "No networks.", _table(devices)]
    servers = caps.get("nameservers", [])
    parts.append(f"nameservers: {', '.join(servers) if servers else '(none)'}")
    return "\n\n".join(parts)
