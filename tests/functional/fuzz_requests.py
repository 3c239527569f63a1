"""Hypothesis strategies of ``Host.setupNetworks`` params for the fuzz test.

Three families, from the engine's point of view:

* :func:`valid_requests` — requests the lab host can apply (free NICs
  ``veth_2``/``veth_3``, no VLAN or bond: the test kernel has neither
  module), including the loose typing the engine uses ("1500", "true", 1).
* :func:`nearly_valid_requests` — a valid request with exactly one field
  spoiled; each comes with the error codes that field's rule gives.
* :func:`garbage_requests` — wrong top-level types, huge and odd strings,
  path characters and NUL in names, thousands of networks, deep nesting.

Strings never contain the markers the test looks for in error messages
(a rejection echoing the input back would otherwise look like a leak).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from shared.errors import ErrorCode

FREE_NICS = ("veth_2", "veth_3")  # never carry the control path or the base network
BASE_NET = "base0"  # set up once per module on veth_0; requests here leave it alone
BASE_IP = "198.51.100.10"
BASE_ATTRS = {
    "nic": "veth_0",
    "bridged": True,
    "ipaddr": BASE_IP,
    "prefix": 24,
    "gateway": "198.51.100.1",
    "defaultRoute": True,
}
OPTIONS = {"connectivityCheck": False}
VALID_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]{0,14}")  # shared.netmodel.names' rule
LEAK_MARKERS = ("Traceback", 'File "', "Error(", "Exception(")

BAD_PARAMS, BAD_ADDR, BAD_NIC = int(ErrorCode.BAD_PARAMS), int(ErrorCode.BAD_ADDR), int(
    ErrorCode.BAD_NIC
)
USED_NIC, BAD_BONDING, BAD_VLAN = int(ErrorCode.USED_NIC), int(ErrorCode.BAD_BONDING), int(
    ErrorCode.BAD_VLAN
)
BAD_BRIDGE = int(ErrorCode.BAD_BRIDGE)


def has_marker(value: object) -> bool:
    text = json.dumps(value, ensure_ascii=False, allow_nan=True)
    return any(marker in text for marker in LEAK_MARKERS)


# -- building blocks -------------------------------------------------------------

texts = st.text(max_size=24).filter(lambda s: not has_marker(s))
json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | texts
)  # fmt: skip
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
net_names = st.from_regex(r"fz[a-z0-9_]{1,8}", fullmatch=True)


def _loose_int(value: int) -> st.SearchStrategy[Any]:
    """The engine sends numbers as numbers or as decimal strings."""
    return st.sampled_from([value, str(value)])


def _loose_bool(value: bool) -> st.SearchStrategy[Any]:
    spellings = [True, "true", "True", 1, "yes"] if value else [False, "false", "False", 0, "no"]
    return st.sampled_from(spellings)


@st.composite
def valid_network(draw: st.DrawFn, nic: str, index: int) -> dict:
    attrs: dict[str, Any] = {"nic": nic}
    bridged = draw(st.booleans())
    if draw(st.booleans()):
        attrs["bridged"] = draw(_loose_bool(bridged))
    if bridged and draw(st.booleans()):
        attrs["stp"] = draw(_loose_bool(draw(st.booleans())))
    if draw(st.booleans()):
        # >= 1280: IPv6 stays enabled on the device
        attrs["mtu"] = draw(st.integers(1280, 9000).flatmap(_loose_int))
    if draw(st.booleans()):
        host = 10 + index
        attrs["ipaddr"] = f"203.0.113.{host}"
        if draw(st.booleans()):
            attrs["prefix"] = draw(st.integers(8, 30).flatmap(_loose_int))
        else:
            attrs["netmask"] = "255.255.255.0"
        if draw(st.booleans()):
            attrs["gateway"] = "203.0.113.254"
    if draw(st.booleans()):
        attrs["ipv6addr"] = f"2001:db8:{index + 1:x}::{draw(st.integers(1, 0xFFFF)):x}/64"
    if draw(st.booleans()):
        attrs["custom"] = {"fuzz": draw(st.text("abcdefgh-_", max_size=12))}
    return attrs


@st.composite
def valid_requests(draw: st.DrawFn) -> dict:
    """1-2 networks on the free NICs, untagged (one per NIC), no default route."""
    count = draw(st.integers(1, len(FREE_NICS)))
    nics = draw(st.permutations(FREE_NICS))[:count]
    names = draw(st.lists(net_names, min_size=count, max_size=count, unique=True))
    networks = {
        name: draw(valid_network(nic, i))
        for i, (name, nic) in enumerate(zip(names, nics, strict=True))
    }
    options = dict(OPTIONS)
    if draw(st.booleans()):
        options["commitOnSuccess"] = draw(st.booleans())
    return {"networks": networks, "bondings": {}, "options": options}


# -- nearly valid: one field spoiled -------------------------------------------

not_int = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: f != int(f)),
    st.lists(st.integers(), max_size=2), st.dictionaries(texts, st.integers(), max_size=2),
    st.booleans(), texts.filter(lambda s: not s.strip().isdigit()),
)  # fmt: skip
odd_numbers = st.sampled_from(["²", "1500.0", "0x5dc", "1_500", "+1500", "1e3", "15 00"])
bad_mtu = st.integers(max_value=67) | st.integers(min_value=65536) | not_int | odd_numbers
bad_vlan = st.integers(max_value=-1) | st.integers(min_value=4095) | odd_numbers | not_int.filter(
    lambda v: v not in (None, "")  # "no VLAN"
)
not_a_str = st.integers() | st.lists(texts, max_size=2) | st.booleans() | st.dictionaries(
    texts, texts, max_size=2
)
bad_ipv4 = not_a_str | st.sampled_from(
    ["256.1.1.1", "1.2.3", "203.0.113.10/24", "::1", "1.2.3.4 ", " 1.2.3.4", "0x01020304",
     "203.0.113.", "a.b.c.d", "1.2.3.4\n", "1.2.3.4\x00", "１.２.３.４", "../../etc/passwd"]
) | texts.filter(lambda s: s.strip() != "" and "." not in s)  # fmt: skip
bad_prefix = st.integers(max_value=-1) | st.integers(min_value=33) | st.sampled_from(
    ["abc", "24x", "-1", "33", [24], {"p": 24}, True, "²", "1e2"]
)
bad_netmask = st.sampled_from(
    ["255.0.255.0", "0.255.255.255", "255.255.255.1", "255.255.256.0", "24", "mask", 24, [], {}]
)
bad_ipv6 = not_a_str | st.sampled_from(
    ["2001:db8::1/129", "2001:db8::1/-1", "2001:db8::1/abc", "zz::1/64", "203.0.113.1/24",
     "2001:db8:::1/64", "2001:db8::1//64", "2001:db8::1/64/64", "/64",
     "2001:db8::1/²", "2001:db8::1/"]
)  # fmt: skip
known_keys = {
    "nic", "bonding", "vlan", "bridged", "stp", "STP", "mtu", "ipaddr", "netmask", "prefix",
    "gateway", "defaultRoute", "bootproto", "blockingdhcp", "dhcpv6", "ipv6autoconf",
    "ipv6addr", "ipv6gateway", "nameservers", "switch", "custom", "hostQos", "remove",
}  # fmt: skip
unknown_keys = texts.filter(lambda k: k not in known_keys)
not_bool = st.sampled_from(["maybe", "2", 2, -1, 1.5, [], {}, "", "truee", None]) | texts.filter(
    lambda s: s.strip().lower() not in {"true", "false", "yes", "no", "on", "off", "1", "0"}
)
unknown_nics = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True).filter(
    lambda n: not n.startswith("veth_") and n != "lo"
) | st.sampled_from(["../veth_0", "veth_0/", "veth_0\x00", "VETH_0", "veth_9", "."])
bad_names = st.sampled_from(
    ["", ".", "..", "../x", "a/b", "/etc", "x\x00y", "\x00", "-lead", "sixteen_chars_xx",
     "a b", "a:b", "a.b", "bridge\n", "ünïcode", "名前", "..\\x", "~root", "$(id)", "*"]
) | texts.filter(lambda s: not VALID_NAME.fullmatch(s))  # fmt: skip


def _spoil_attr(key: str, values: st.SearchStrategy, codes: set[int]) -> Callable:
    def spoil(draw: st.DrawFn, request: dict, name: str) -> set[int]:
        request["networks"][name][key] = draw(values)
        return codes

    return spoil


def _drop_ipv4(attrs: dict) -> None:
    for key in ("ipaddr", "prefix", "netmask", "gateway"):
        attrs.pop(key, None)


def _spoil_ip(key: str, values: st.SearchStrategy) -> Callable:
    """A complete static IPv4 configuration, then ``key`` spoiled."""

    def spoil(draw: st.DrawFn, request: dict, name: str) -> set[int]:
        attrs = request["networks"][name]
        _drop_ipv4(attrs)
        attrs.update(ipaddr="203.0.113.40", prefix=24, gateway="203.0.113.254")
        if key == "netmask":
            del attrs["prefix"]
        attrs[key] = draw(values)
        # a spoiled value that is not a string fails to_str with BAD_PARAMS
        return {BAD_ADDR, BAD_PARAMS} if key in ("ipaddr", "gateway", "netmask") else {BAD_ADDR}

    return spoil


def _unknown_key(draw: st.DrawFn, request: dict, name: str) -> set[int]:
    request["networks"][name][draw(unknown_keys)] = draw(json_values)
    return {BAD_PARAMS}


def _unknown_nic(draw: st.DrawFn, request: dict, name: str) -> set[int]:
    request["networks"][name]["nic"] = draw(unknown_nics)
    return {BAD_NIC, BAD_PARAMS}  # BAD_PARAMS: not a printable short string


def _nic_of_base(draw: st.DrawFn, request: dict, name: str) -> set[int]:
    request["networks"][name]["nic"] = "veth_0"  # base0 holds it untagged
    # two untagged networks on one NIC: the production agent's 21 ("multiple
    # networks/similar vlans cannot be defined on a single underlying device")
    return {BAD_PARAMS}


def _bad_name(draw: st.DrawFn, request: dict, name: str) -> set[int]:
    bad = draw(bad_names)
    request["networks"][bad] = request["networks"].pop(name)
    return {BAD_PARAMS, BAD_BRIDGE}


def _remove_missing(draw: st.DrawFn, request: dict, name: str) -> set[int]:
    request["networks"][name] = {"remove": draw(_loose_bool(True))}
    return {BAD_BRIDGE}  # the production agent's "does not exist" code


def _remove_with_attrs(draw: st.DrawFn, request: dict, name: str) -> set[int]:
    request["networks"][name]["remove"] = draw(_loose_bool(True))
    return {BAD_PARAMS}  # only 'custom' may go with remove


def _edit_base(draw: st.DrawFn, request: dict, name: str) -> set[int]:
    """The existing base0 edited with one field spoiled: an edit is a removal
    and an addition, and a refused one must leave base0 as it was."""
    key, values, codes = draw(
        st.sampled_from(
            [("mtu", bad_mtu, {BAD_PARAMS}), ("prefix", bad_prefix, {BAD_ADDR}),
             ("gateway", bad_ipv4 | st.just(BASE_IP), {BAD_ADDR, BAD_PARAMS}),
             ("nic", unknown_nics, {BAD_NIC, BAD_PARAMS}), ("vlan", bad_vlan, {BAD_VLAN}),
             ("bridged", not_bool.filter(lambda v: v is not None), {BAD_PARAMS})]
        )
    )  # fmt: skip
    request["networks"][BASE_NET] = {**BASE_ATTRS, key: draw(values)}
    return codes


def _unknown_bond(draw: st.DrawFn, request: dict, name: str) -> set[int]:
    attrs = request["networks"][name]
    del attrs["nic"]
    attrs["bonding"] = draw(st.from_regex(r"bond[a-z0-9]{1,6}", fullmatch=True))
    return {BAD_BONDING}


def _bad_bond(draw: st.DrawFn, request: dict, name: str) -> set[int]:
    spoilt = draw(
        st.sampled_from(
            [{"nics": "veth_2"}, {"nics": [1, 2]}, {"nics": ["veth_9"]}, {"options": 4},
             {"nics": ["veth_2"], "options": "mode=99"}, {"nics": ["veth_2"], "options": "x"},
             {"nics": ["veth_2"], "options": "miimon=-5"}, {"nics": ["veth_2"], "hwaddr": 5},
             {"nics": ["veth_2"], "colour": "red"}, {"nics": ["veth_0"]}]
        )
    )  # fmt: skip
    request["bondings"][draw(st.sampled_from(["bond0", "bond1", "bondfz"]))] = spoilt
    return {BAD_BONDING, BAD_NIC, USED_NIC, BAD_PARAMS}


def _bad_bond_name(draw: st.DrawFn, request: dict, name: str) -> set[int]:
    bad = draw(bad_names | st.sampled_from(["bond", "bond/../x", "bond0\x00", "bond.1", "bönd0"]))
    request["bondings"][bad] = {"nics": ["veth_2"]}
    return {BAD_BONDING}


def _bad_option(draw: st.DrawFn, request: dict, name: str) -> set[int]:
    key, value = draw(
        st.tuples(st.sampled_from(["connectivityCheck", "commitOnSuccess", "_inRollback"]),
                  not_bool)
        | st.tuples(st.just("connectivityTimeout"), st.integers(max_value=-1) | not_int.filter(
            lambda v: not isinstance(v, float) or not -1 < v < 3601))  # else cut, as int() does
        | st.tuples(st.just("connectivityTimeout"), st.integers(min_value=3601))
    )  # fmt: skip
    # (unknown option keys are ignored, as the production agent ignores them)
    request["options"][key] = value
    return {BAD_PARAMS}


def _bad_nameservers(draw: st.DrawFn, request: dict, name: str) -> set[int]:
    value = draw(st.sampled_from([["203.0.113.53"], "203.0.113.53", [5], ["not-an-ip"], {}]))
    request["networks"][name]["nameservers"] = value  # never on a non-default-route net
    return {BAD_PARAMS, BAD_ADDR}


# Well-formed values the kernel refuses: frontd once let them through, superd
# failed (29) and rolled back; frontd refuses them now, before any change.
KERNEL_REFUSES = [
    {"ipaddr": "0.0.0.0", "prefix": 0},
    {"ipaddr": "203.0.113.41", "prefix": 24, "gateway": "0.0.0.0"},
    {"ipv6addr": "::/0"},
    {"ipv6addr": "ff02::1/64"},
    {"ipaddr": "224.0.0.1", "prefix": 24},
    {"ipaddr": "203.0.113.42", "prefix": 24, "gateway": "255.255.255.255"},
    {"ipv6addr": "2001:db8:9::1/64", "ipv6gateway": "ff02::2"},
    {"ipv6addr": "2001:db8:9::1/64", "mtu": 1279, "bridged": False},
]


def _kernel_refuses(draw: st.DrawFn, request: dict, name: str) -> set[int]:
    attrs = request["networks"][name]
    if draw(st.booleans()):
        _drop_ipv4(attrs)
        attrs.pop("ipv6addr", None)
        attrs.update(draw(st.sampled_from(KERNEL_REFUSES)))
    else:  # a bridge named like the loopback device
        request["networks"]["lo"] = {**request["networks"].pop(name), "bridged": True}
    return {BAD_ADDR, BAD_BRIDGE, BAD_PARAMS}


SPOILERS: list[tuple[str, Callable]] = [
    ("mtu", _spoil_attr("mtu", bad_mtu, {BAD_PARAMS})),
    ("vlan", _spoil_attr("vlan", bad_vlan, {BAD_VLAN})),
    ("bridged", _spoil_attr("bridged", not_bool.filter(lambda v: v is not None), {BAD_PARAMS})),
    ("bootproto", _spoil_attr("bootproto", json_values.filter(
        lambda v: v not in ("none", "dhcp")), {BAD_PARAMS})),
    ("switch", _spoil_attr("switch", json_values.filter(
        lambda v: v not in ("legacy", "ovs")), {BAD_PARAMS})),
    ("ipaddr", _spoil_ip("ipaddr", bad_ipv4)),
    ("prefix", _spoil_ip("prefix", bad_prefix)),
    ("netmask", _spoil_ip("netmask", bad_netmask)),
    ("gateway", _spoil_ip("gateway", bad_ipv4 | st.just("203.0.113.40"))),
    ("ipv6addr", _spoil_attr("ipv6addr", bad_ipv6, {BAD_ADDR})),
    ("unknown key", _unknown_key),
    ("unknown nic", _unknown_nic),
    ("nic in use", _nic_of_base),
    ("network name", _bad_name),
    ("remove missing", _remove_missing),
    ("remove with attributes", _remove_with_attrs),
    ("edit base0", _edit_base),
    ("unknown bond", _unknown_bond),
    ("bad bond", _bad_bond),
    ("bond name", _bad_bond_name),
    ("option", _bad_option),
    ("nameservers", _bad_nameservers),
    ("kernel refuses", _kernel_refuses),
]  # fmt: skip


@st.composite
def nearly_valid_requests(draw: st.DrawFn) -> tuple[str, dict, set[int]]:
    """(what was spoiled, the request, the codes that rule may answer)."""
    request = draw(valid_requests())
    what, spoil = draw(st.sampled_from(SPOILERS))
    name = draw(st.sampled_from(sorted(request["networks"])))
    codes = spoil(draw, request, name)
    return what, request, codes


# -- garbage -----------------------------------------------------------------------


def _nested(depth: int, kind: str) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


huge_strings = st.sampled_from(["x", "é", "\x00", "../", "名"]).map(lambda s: s * 300_000)
odd_strings = st.sampled_from(
    ["..", "../..", "/", "\x00", "a\x00b", "\u202e", "\ud7ff", "\ufeff", "0", "-1", "1e9",
     "true", "null", "{}", "[]", "%s%n", "\\", "'", '"']
) | texts  # fmt: skip
garbage_values = (
    json_values | huge_strings | odd_strings
    | st.sampled_from(["list", "dict"]).flatmap(
        lambda kind: st.integers(20, 400).map(lambda d: _nested(d, kind)))
)  # fmt: skip
many_networks = st.integers(5001, 10_000).map(
    lambda n: {f"fz{i}": {"nic": FREE_NICS[i % 2], "bridged": False} for i in range(n)}
)
garbage_networks = (
    garbage_values
    | st.dictionaries(bad_names | odd_strings | huge_strings, garbage_values, max_size=3)
    | st.dictionaries(net_names, garbage_values, min_size=1, max_size=3)
    | st.dictionaries(net_names, st.dictionaries(st.sampled_from(sorted(known_keys)),
                                                 garbage_values, min_size=1, max_size=4),
                      min_size=1, max_size=2)
    | many_networks
)  # fmt: skip
garbage_params = (
    garbage_values
    | st.fixed_dictionaries(
        {"networks": garbage_networks},
        optional={"bondings": garbage_values | st.dictionaries(odd_strings, garbage_values),
                  "options": garbage_values},
    )
    | st.lists(garbage_values, max_size=4)
    | st.dictionaries(texts, garbage_values, max_size=4)
)  # fmt: skip


@st.composite
def garbage_requests(draw: st.DrawFn) -> Any:
    """Any JSON as params (positional when a list). Where options could be
    valid they never ask for a connectivity check: a garbage request that
    happens to be valid must neither wait for the engine (seconds each) nor
    be rolled back (the test of that is apart)."""
    params = draw(garbage_params)
    if isinstance(params, dict) and isinstance(params.get("options", {}), dict):
        params["options"] = {**params.get("options", {}), **OPTIONS}
    elif isinstance(params, list) and params and isinstance(params[0], dict):
        options = params[2] if len(params) > 2 and isinstance(params[2], dict) else {}
        params = [params[0], params[1] if len(params) > 1 else {}, {**options, **OPTIONS}]
    return params
