"""Human-readable rendering of plans and errors for the CLI."""

from __future__ import annotations

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
