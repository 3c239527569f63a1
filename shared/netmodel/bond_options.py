"""Bonding options: parse, validate, canonicalize, and turn into netlink.

Pure functions over the table in ``bond_options_table``; nothing here touches
the kernel. The production agent's option string ("mode=4 miimon=100") is
parsed into a dict, validated against the bond's mode, and then either
compared (canonical form), applied (pyroute2 keywords, plus the few sysfs
files for options the pinned pyroute2 cannot carry) or verified (what sysfs
prints against what was asked).

Every failure is ``NetError(BAD_BONDING)`` (25) naming the bond, the option
and the value.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping

from shared.errors import ErrorCode, NetError
from shared.netmodel.bond_options_table import (
    BOND_MODES,
    BOND_OPTIONS,
    DEFAULT_MODE,
    MAX_TARGETS,
    MODE_NAMES,
    BondOption,
    ValueKind,
)

__all__ = [
    "BOND_MODES",
    "BOND_OPTIONS",
    "BondOption",
    "canonical_bond_options",
    "describe",
    "mode_number",
    "netlink_bond_attrs",
    "parse_bond_options",
    "sysfs_only_bond_values",
    "sysfs_value_matches",
    "validate_bond_options",
]

_DECIMAL = re.compile(r"[0-9]+", re.ASCII)
_MAC = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}", re.ASCII)
_IFNAMSIZ_MAX = 15
# the kernel's dev_valid_name(): no '/', ':' or white space, not "." / ".."
_IFNAME_FORBIDDEN = frozenset("/:") | frozenset(" \t\n\r\f\v")
# the two names for one kernel setting (IFLA_BOND_NUM_PEER_NOTIF)
_ALIASES = ("num_grat_arp", "num_unsol_na")


def _fail(message: str) -> NetError:
    return NetError(ErrorCode.BAD_BONDING, message)


# -- parsing ----------------------------------------------------------------


def parse_bond_options(text: str) -> dict[str, str]:
    """``"mode=4 miimon=100"`` -> ``{"mode": "4", "miimon": "100"}``.

    Whitespace-separated ``key=value`` tokens; an empty string is no options.
    A token without ``=`` (or with an empty key) and a repeated key are
    refused, naming the token.
    """
    if not isinstance(text, str):
        raise _fail(f"Bonding options must be a string, not {type(text).__name__}")
    options: dict[str, str] = {}
    for token in text.split():
        key, sep, value = token.partition("=")
        if not sep or not key:
            raise _fail(f"Bonding option {token!r} is not of the form key=value")
        if key in options:
            raise _fail(f"Bonding option {key!r} is given twice (at {token!r})")
        options[key] = value
    return options


# -- validation -------------------------------------------------------------


def _allowed(opt: BondOption) -> str:
    """What ``opt`` accepts, for error messages and documentation."""
    if opt.kind is ValueKind.ENUM:
        return ", ".join(f"{name} ({num})" for name, num in opt.values.items())
    if opt.kind is ValueKind.INT:
        return f"an integer from {opt.minimum} to {opt.maximum}"
    if opt.kind is ValueKind.IFNAME:
        return "an interface name, or nothing to clear it"
    if opt.kind is ValueKind.MAC:
        return "a MAC address xx:xx:xx:xx:xx:xx that is not multicast"
    family = "IPv4" if opt.kind is ValueKind.IPV4_LIST else "IPv6"
    return f"up to {MAX_TARGETS} distinct {family} addresses separated by ','"


def _enum_number(opt: BondOption, value: str) -> int | None:
    """The number a named or numeric enum value stands for, or None."""
    if value in opt.values:
        return opt.values[value]
    if _DECIMAL.fullmatch(value) and int(value) in opt.values.values():
        return int(value)
    return None


def _targets(opt: BondOption, value: str) -> list[str] | None:
    """The addresses of a target list in canonical text form, or None."""
    if value == "":
        return []
    parsed: list[str] = []
    for item in value.split(","):
        if "%" in item:  # no IPv6 zone index
            return None
        try:
            address = ipaddress.ip_address(item)
        except ValueError:
            return None
        if opt.kind is ValueKind.IPV4_LIST:
            # the kernel refuses 0.0.0.0/8 and the limited broadcast address
            if address.version != 4 or address.packed[0] == 0:
                return None
            if address == ipaddress.IPv4Address("255.255.255.255"):
                return None
        elif address.version != 6 or address.is_unspecified:
            return None
        parsed.append(str(address))
    if len(parsed) > MAX_TARGETS or len(set(parsed)) != len(parsed):
        return None
    return parsed


def _value_ok(opt: BondOption, value: str) -> bool:
    if opt.kind is ValueKind.ENUM:
        return _enum_number(opt, value) is not None
    if opt.kind is ValueKind.INT:
        return bool(_DECIMAL.fullmatch(value)) and (opt.minimum <= int(value) <= opt.maximum)
    if opt.kind is ValueKind.IFNAME:
        return value == "" or (
            len(value) <= _IFNAMSIZ_MAX
            and value not in (".", "..")
            and not _IFNAME_FORBIDDEN & set(value)
            and value.isprintable()
        )
    if opt.kind is ValueKind.MAC:
        # the low bit of the first octet marks a multicast address
        return bool(_MAC.fullmatch(value)) and not int(value[:2], 16) & 1
    return _targets(opt, value) is not None


def mode_number(options: Mapping[str, str]) -> int:
    """The bond's mode as a number (balance-rr when ``mode`` is absent).

    The value must already be valid; see ``validate_bond_options``.
    """
    value = options.get("mode")
    if value is None:
        return DEFAULT_MODE
    number = _enum_number(BOND_OPTIONS["mode"], value)
    if number is None:
        raise _fail(f"Bonding mode {value!r} is not valid")
    return number


def _mode_text(modes: frozenset[int]) -> str:
    return ", ".join(f"{MODE_NAMES[m]} ({m})" for m in sorted(modes))


def validate_bond_options(bond_name: str, options: dict[str, str]) -> dict[str, str]:
    """Check ``options`` for bond ``bond_name``; return them normalized.

    Refused: a key the bonding driver does not document, a value outside the
    option's set or range, an option the bond's mode (balance-rr when absent)
    does not allow, an option netreload has no way to set, the two names of
    the peer-notification count with different values, and miimon together
    with arp_interval (the kernel keeps whichever it was given last).
    The result keeps the given order and spelling, except ``mode``, which
    becomes its number ("802.3ad" -> "4").
    """
    for key, value in options.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise _fail(f"Bond {bond_name}: option {key!r}={value!r} must be given as strings")
        opt = BOND_OPTIONS.get(key)
        if opt is None:
            raise _fail(f"Bond {bond_name}: unknown bonding option {key!r}")
        if not _value_ok(opt, value):
            raise _fail(
                f"Bond {bond_name}: value {value!r} is not valid for bonding "
                f"option {key}; allowed: {_allowed(opt)}"
            )
    mode = mode_number(options)
    for key in options:
        opt = BOND_OPTIONS[key]
        if mode not in opt.modes:
            raise _fail(
                f"Bond {bond_name}: bonding option {key} is not valid in mode "
                f"{MODE_NAMES[mode]} ({mode}); it is valid only in "
                f"{_mode_text(opt.modes)}"
            )
        if opt.sysfs is None and opt.netlink is None:
            raise _fail(
                f"Bond {bond_name}: bonding option {key} cannot be set by "
                "netreload (the kernel takes it only over netlink, and the "
                "installed pyroute2 does not know its attribute)"
            )
    first, second = _ALIASES
    if first in options and second in options:
        if int(options[first]) != int(options[second]):
            raise _fail(
                f"Bond {bond_name}: {first}={options[first]} and "
                f"{second}={options[second]} set the same kernel value "
                "differently"
            )
    if int(options.get("miimon", "0")) and int(options.get("arp_interval", "0")):
        raise _fail(
            f"Bond {bond_name}: miimon={options['miimon']} and "
            f"arp_interval={options['arp_interval']} cannot both be enabled; "
            "the kernel would keep only one of the two monitors"
        )
    normalized = dict(options)
    if "mode" in normalized:
        normalized["mode"] = str(mode)
    return normalized


def _canonical_value(opt: BondOption, value: str) -> str:
    if opt.kind is ValueKind.ENUM:
        return str(_enum_number(opt, value))
    if opt.kind is ValueKind.INT:
        return str(int(value))
    if opt.kind is ValueKind.MAC:
        return value.lower()
    if opt.kind in (ValueKind.IPV4_LIST, ValueKind.IPV6_LIST):
        targets = _targets(opt, value) or []
        return ",".join(sorted(targets, key=ipaddress.ip_address))
    return value


def canonical_bond_options(text: str, bond_name: str = "(unnamed)") -> str:
    """A stable spelling of an option string, for comparing two of them.

    ``mode`` first as a number, the other options sorted by name; named
    values become numbers, integers lose leading zeros, MAC addresses are
    lower case and target lists sorted, so "mode=802.3ad lacp_rate=fast"
    and "lacp_rate=1 mode=4" give the same string. Options are validated
    first (``bond_name`` only serves the error message); absent options are
    not filled in with their defaults.
    """
    options = validate_bond_options(bond_name, parse_bond_options(text))
    parts = [f"mode={options['mode']}"] if "mode" in options else []
    for key in sorted(k for k in options if k != "mode"):
        parts.append(f"{key}={_canonical_value(BOND_OPTIONS[key], options[key])}")
    return " ".join(parts)


# -- applying ---------------------------------------------------------------


def _netlink_value(opt: BondOption, value: str) -> object:
    if opt.kind is ValueKind.ENUM:
        return _enum_number(opt, value)
    if opt.kind is ValueKind.INT:
        return int(value)
    if opt.kind is ValueKind.MAC:
        # the attribute is the 6 raw bytes; a text MAC would be sent as text
        return bytes.fromhex(value.replace(":", ""))
    if opt.kind in (ValueKind.IPV4_LIST, ValueKind.IPV6_LIST):
        return _targets(opt, value) or []
    return value  # IFNAME: resolved by the caller (see needs_ifindex)


def netlink_bond_attrs(
    options: Mapping[str, str],
    ifindex_of: Callable[[str], int] | None = None,
) -> dict[str, object]:
    """Keyword arguments for ``IPRoute.link("add"/"set", kind="bond", ...)``.

    ``options`` must be valid (``validate_bond_options``). Enumerations
    become their numbers, ``ad_actor_system`` its 6 bytes and
    ``arp_ip_target`` a list of addresses. ``primary`` (``needs_ifindex`` in
    the table) needs an ifindex: ``ifindex_of`` maps a name to it; without
    one the name is left in place, which is fine for showing a plan but not
    for the kernel. An empty ``primary`` becomes 0, which clears it.
    Options the pinned pyroute2 cannot carry are left out; see
    ``sysfs_only_bond_values``.
    """
    attrs: dict[str, object] = {}
    for key, value in options.items():
        opt = BOND_OPTIONS[key]
        if opt.netlink is None:
            continue
        converted = _netlink_value(opt, value)
        if opt.needs_ifindex:
            if value == "":
                converted = 0
            elif ifindex_of is not None:
                converted = ifindex_of(value)
        attrs[opt.netlink] = converted
    return attrs


def sysfs_only_bond_values(options: Mapping[str, str]) -> dict[str, str]:
    """``{sysfs file: text to write}`` for the valid options that
    ``netlink_bond_attrs`` leaves out, to be written after the bond exists
    and its mode is set (files under ``/sys/class/net/<bond>/bonding/``)."""
    return {
        opt.sysfs: value
        for key, value in options.items()
        if (opt := BOND_OPTIONS[key]).netlink is None and opt.sysfs is not None
    }


# -- verifying --------------------------------------------------------------


def sysfs_value_matches(key: str, wanted: str, sysfs_text: str) -> bool:
    """Whether the text of ``/sys/class/net/<bond>/bonding/<key>`` shows
    ``wanted`` ("802.3ad 4" shows "4" and "802.3ad"; "fast 1" shows "fast").

    Caveats from the kernel: updelay, downdelay and peer_notif_delay read
    back rounded down to a multiple of miimon (0 when miimon is 0), and the
    802.3ad actor files read back empty outside 802.3ad or without
    CAP_NET_ADMIN, and ``primary`` reads back empty until that device is
    one of the bond's slaves. A ``wanted`` that is not a valid value never matches.
    """
    opt = BOND_OPTIONS.get(key)
    if opt is None:
        raise _fail(f"Unknown bonding option {key!r}")
    shown = sysfs_text.strip()
    if not _value_ok(opt, wanted):
        return False
    if opt.kind is ValueKind.ENUM:
        number = _enum_number(opt, wanted)
        # "name number" for most, the bare number for the on/off flags
        return any(_enum_number(opt, token) == number for token in shown.split())
    if opt.kind is ValueKind.INT:
        return bool(_DECIMAL.fullmatch(shown)) and int(shown) == int(wanted)
    if opt.kind is ValueKind.MAC:
        return shown.lower() == wanted.lower()
    if opt.kind is ValueKind.IFNAME:
        return shown == wanted
    # target lists: the kernel prints them space-separated, in slot order
    want = {ipaddress.ip_address(a) for a in (_targets(opt, wanted) or [])}
    try:
        have = {ipaddress.ip_address(a) for a in shown.split()}
    except ValueError:
        return False
    return want == have


# -- documentation ----------------------------------------------------------


def describe() -> list[dict[str, object]]:
    """One row per option, in table order, for documentation and the CLI."""
    return [
        {
            "name": opt.name,
            "help": opt.help,
            "allowed": _allowed(opt),
            "default": opt.default,
            "modes": [MODE_NAMES[m] for m in sorted(opt.modes)],
            "sysfs": opt.sysfs,
            "netlink": opt.netlink,
            "needs_ifindex": opt.needs_ifindex,
        }
        for opt in BOND_OPTIONS.values()
    ]
