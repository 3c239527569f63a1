"""``custom.bridge_opts``: parsed and validated from the table, as netlink
arguments. PURE.

The production agent splits the string on whitespace into ``name=value``
pairs (a later pair of the same name wins), keeps them sorted in its running
configuration, and writes each value to the bridge's sysfs file after
creating it; an unknown option or a value the kernel refuses fails the
request with code 21. netreload refuses the same before changing anything
(frontd, and superd again when it re-reads the plan), then sets the options
with the bridge's creation request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from shared.errors import ErrorCode, NetError
from shared.netmodel.bridge_options_table import (
    BRIDGE_OPTIONS,
    PROTOCOLS,
    STP_FORWARD_DELAY,
    BridgeOption,
    ValueKind,
)

MAX_BRIDGE_OPTS = 64  # pairs in one network's bridge_opts (the table has 30 options)
# what sysfs' kstrtoul(…, 0) reads, but octal (a leading 0 would mean it there)
_NUMBER = re.compile(r"(?:0[xX][0-9a-fA-F]+|0|[1-9][0-9]*)\Z")
_GROUP_ADDR = re.compile(r"01:80:[cC]2:00:00:0([0-9a-fA-F])\Z")


def _bad(message: str) -> NetError:
    return NetError(ErrorCode.BAD_PARAMS, message)


def split_bridge_opts(text: object, what: str) -> dict[str, str]:
    """``"a=1 b=2"`` as ``{"a": "1", "b": "2"}`` (the last of a repeated name)."""
    if not isinstance(text, str):
        raise _bad(f"{what}: bridge_opts must be a string of name=value pairs")
    pairs = text.split()
    if len(pairs) > MAX_BRIDGE_OPTS:
        raise _bad(f"{what}: bridge_opts has {len(pairs)} options, at most {MAX_BRIDGE_OPTS}")
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name or not value:
            raise _bad(f"{what}: bridge_opts {pair[:40]!r} is not name=value")
        out[name] = value
    return out


def canonical_bridge_opts(text: object, what: str, stp: bool) -> str:
    """The sorted ``name=value`` string kept in the running configuration,
    once every option is known and its value acceptable (NetError 21)."""
    opts = split_bridge_opts(text, what)
    bridge_opts_netlink(opts, what, stp)
    return " ".join(f"{name}={value}" for name, value in sorted(opts.items()))


def bridge_opts_netlink(opts: Mapping[str, str], what: str, stp: bool) -> dict[str, Any]:
    """pyroute2 ``link(kind="bridge", …)`` keywords of these options;
    NetError 21 for an unknown option or a value out of its range."""
    out: dict[str, Any] = {}
    for name, text in opts.items():
        option = BRIDGE_OPTIONS.get(name)
        if option is None:
            known = ", ".join(sorted(BRIDGE_OPTIONS))
            raise _bad(f"{what}: unknown bridge option {name[:40]!r} (known: {known})")
        out[option.netlink] = _value(option, text, f"{what}: bridge option {name}")
    delay = out.get("br_forward_delay")
    if stp and delay is not None and not STP_FORWARD_DELAY[0] <= delay <= STP_FORWARD_DELAY[1]:
        low, high = STP_FORWARD_DELAY
        raise _bad(f"{what}: bridge option forward_delay {delay} is out of {low}..{high} "
                   "(1/100 s) with STP on")  # fmt: skip
    return out


def bridge_opts_of(attrs: Mapping) -> dict[str, Any]:
    """The netlink keywords of a canonical network's bridge options ({} for none)."""
    text = (attrs.get("custom") or {}).get("bridge_opts")
    if not text:
        return {}
    name = "network"
    return bridge_opts_netlink(split_bridge_opts(text, name), name, bool(attrs.get("stp")))


def _value(option: BridgeOption, text: str, what: str) -> Any:
    if option.kind is ValueKind.GROUP_ADDR:
        match = _GROUP_ADDR.match(text)
        if match is None or int(match.group(1), 16) in (1, 2, 3):
            raise _bad(f"{what}: {text[:40]!r} is not 01:80:c2:00:00:0X with X other than 1-3")
        return text.lower()
    if not _NUMBER.match(text):
        raise _bad(f"{what}: {text[:40]!r} is not a number")
    value = int(text, 0)
    if option.kind is ValueKind.PROTOCOL:
        if value not in PROTOCOLS:
            raise _bad(f"{what}: {text!r} is not 0x8100 or 0x88a8")
        return value
    if not option.minimum <= value <= option.maximum:
        raise _bad(f"{what}: {text!r} is out of {option.minimum}..{option.maximum}")
    if value & option.forbidden_bits:
        raise _bad(f"{what}: bits {option.forbidden_bits:#x} cannot be set")
    return value
