"""Bridge and bond options as the capabilities report shows them: under
the production agent's names (sysfs files), values as strings. PURE."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from shared.errors import NetError
from shared.netmodel.bond_options import canonical_bond_options
from shared.netmodel.bond_options_table import BOND_OPTIONS, BondOption, ValueKind

# IFLA_BR_* (without "br_") whose sysfs name is not derived by the rules in
# _bridge_opt_name.
_BRIDGE_OPT_RENAMES = {
    "mcast_hash_max": "hash_max",
    "mcast_hash_elasticity": "hash_elasticity",
    "vlan_default_pvid": "default_pvid",
}


def bridge_opts(info: Mapping[str, Any]) -> dict[str, str]:
    """Bridge options under their sysfs names, as strings formatted as sysfs
    prints them (the agent reads sysfs). Timers and the bridge and root ids
    are left out: they change all the time or are the bridge's own, and a
    thousand bridges configured alike share one option set."""
    opts = {}
    for key, value in info.items():
        name = _BRIDGE_OPT_NAMES.get(key, _UNSEEN)
        if name is _UNSEEN:
            name = _option_name(key)
        if name is None or isinstance(value, bool) or not isinstance(value, int | str):
            continue
        if name == "vlan_protocol" and isinstance(value, int):
            opts[name] = f"{value:#06x}"
        elif name == "group_fwd_mask" and isinstance(value, int):
            opts[name] = f"{value:#x}"
        else:
            opts[name] = str(value)
    return opts


# linkinfo key → its option's sysfs name, None for what is no option: a
# bridge has some forty keys, the names are derived once, not per bridge
_BRIDGE_OPT_NAMES: dict[str, str | None] = {}
_UNSEEN = object()


def _option_name(key: str) -> str | None:
    name = None
    if key.startswith("br_") and not key.endswith("_timer"):
        name = _bridge_opt_name(key[3:])
    if len(_BRIDGE_OPT_NAMES) < 1024:  # the decoder's keys: a few dozen
        _BRIDGE_OPT_NAMES[key] = name
    return name


def _bridge_opt_name(key: str) -> str:
    if key in _BRIDGE_OPT_RENAMES:
        return _BRIDGE_OPT_RENAMES[key]
    if key.startswith("mcast_"):
        key = "multicast_" + key[len("mcast_") :]
    if key.endswith("_cnt"):
        key = key[: -len("_cnt")] + "_count"
    if key.endswith("_intvl"):
        key = key[: -len("_intvl")] + "_interval"
    return key


def bond_opts(
    info: Mapping[str, Any], names: Mapping[int, str], with_defaults: bool = False
) -> dict[str, str]:
    """Bond options under their option names, as the agent reports them.

    Values are numeric strings (``"mode": "4"``, ``"lacp_rate": "1"``), as
    the kernel gives them; ``primary`` is a device name. Like the production
    agent, options at their default value are left out (unless
    ``with_defaults``), except ``mode`` which is always there.
    """
    opts: dict[str, str] = {}
    for name, opt in BOND_OPTIONS.items():
        if opt.netlink is None or opt.netlink not in info:
            continue
        value = info[opt.netlink]
        if opt.needs_ifindex:
            text = names.get(value, "") if value else ""
        elif isinstance(value, list):
            text = ",".join(sorted(map(str, value), key=ipaddress.ip_address))
        elif isinstance(value, bool):
            text = str(int(value))
        else:
            text = str(value).lower()
        if with_defaults or text != _default_text(opt):
            opts[name] = text
    opts["mode"] = str(int(info.get("bond_mode", 0) or 0))
    return opts


def _default_text(opt: BondOption) -> str:
    if opt.kind is ValueKind.ENUM:
        return str(opt.values.get(opt.default, opt.default))
    return opt.default.lower()


def team_opts(requested: str) -> dict[str, str]:
    """A team's ``opts``: the bonding options it was asked for, canonical
    (``mode`` a number, always there), as the capabilities report them."""
    try:
        opts = dict(
            item.split("=", 1) for item in canonical_bond_options(requested).split() if "=" in item
        )
    except NetError:
        opts = {}
    opts.setdefault("mode", "0")
    return opts
