"""Options of an OVS bond (``switch: ovs`` bondings). PURE.

An OVS bond is a port with several interfaces, not a kernel bond: it has
none of the Linux bonding options, only OVS's own Port columns. The option
string keeps the request's ``key=value`` form: ``"bond_mode=balance-slb
lacp=active"``. Canonical form: both keys, in that order, defaults filled
in (OVS's own: ``active-backup``, LACP ``off``). Every failure is
``NetError(BAD_BONDING)`` (25).
"""

from __future__ import annotations

from shared.errors import ErrorCode, NetError
from shared.netmodel.bond_options import parse_bond_options

BOND_MODES = ("active-backup", "balance-slb", "balance-tcp")
LACP_MODES = ("off", "active", "passive")
DEFAULTS = {"bond_mode": "active-backup", "lacp": "off"}
ALLOWED = {"bond_mode": BOND_MODES, "lacp": LACP_MODES}


def parse(text: str, bond: str) -> dict[str, str]:
    """``{"bond_mode": …, "lacp": …}`` of an option string, validated."""
    options = parse_bond_options(text)
    for key, value in options.items():
        if key not in ALLOWED:
            raise NetError(
                ErrorCode.BAD_BONDING,
                f"bond {bond}: option {key!r} is not an OVS bond option "
                f"(expected {', '.join(ALLOWED)})",
            )
        if value not in ALLOWED[key]:
            raise NetError(
                ErrorCode.BAD_BONDING,
                f"bond {bond}: {key}={value!r} is not one of {', '.join(ALLOWED[key])}",
            )
    out = {**DEFAULTS, **options}
    if out["bond_mode"] == "balance-tcp" and out["lacp"] == "off":
        raise NetError(ErrorCode.BAD_BONDING, f"bond {bond}: balance-tcp needs lacp on")
    return out


def canonical(text: str, bond: str) -> str:
    options = parse(text, bond)
    return " ".join(f"{key}={options[key]}" for key in DEFAULTS)
