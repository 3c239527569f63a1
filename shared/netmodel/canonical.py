"""Request → canonical attributes.

The engine sends loosely typed attributes with defaults left out; every
later step (validation, plan, persistence, comparison with the running
configuration) works on the canonical form built here, so two requests that
mean the same thing compare equal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from configurators import registry
from shared.errors import ErrorCode, NetError
from shared.netmodel import addresses, bond_options, host_qos, ovs_bond_options
from shared.netmodel.bridge_options import canonical_bridge_opts
from shared.netmodel.device import DEFAULT_MTU, MAX_MTU, MIN_MTU
from shared.netmodel.host_qos import canonical_host_qos
from shared.netmodel.values import to_bool, to_dict, to_int, to_str, to_truncated_int
from shared.netmodel.vlan import MAX_VLAN_TAG
from shared.wire import to_json

NETWORK_KEYS = frozenset(
    {
        "nic", "bonding", "vlan", "bridged", "stp", "STP", "mtu", "ipaddr",
        "netmask", "prefix", "gateway", "defaultRoute", "bootproto",
        "blockingdhcp", "dhcpv6", "ipv6autoconf", "ipv6addr", "ipv6gateway",
        "nameservers", "switch", "custom", "hostQos", "remove",
    }
)  # fmt: skip
BOND_KEYS = frozenset({"nics", "options", "hwaddr", "switch", "remove"})
OPTION_DEFAULTS: dict[str, object] = {
    "connectivityCheck": True,
    "connectivityTimeout": 4,
    "commitOnSuccess": False,
    "_inRollback": False,
}
MAX_CONNECTIVITY_TIMEOUT = 3600
# Bounds on what a request may carry beyond device attributes. A network's
# custom properties (ethtool_opts, bridge_opts) and host QoS are a few hundred
# bytes; kept as sent, they travel in every plan, sit in superd's running
# configuration and on disk, so they must not grow without bound (7 MiB of
# custom keys cost superd 240 MiB before these limits).
FREE_FORM_KEYS = ("custom", "hostQos")
MAX_FREE_FORM_BYTES = 8 * 1024  # each free-form attribute of a network, as JSON
MAX_NAMESERVERS = 16  # the resolver reads 3
MAX_BOND_NICS = 256
MAX_BOND_OPTIONS = 4096  # characters


def _bad(message: str) -> NetError:
    return NetError(ErrorCode.BAD_PARAMS, message)


def _is_remove(attrs: Mapping, what: str, allowed_with_remove: frozenset[str]) -> bool:
    if "remove" not in attrs:
        return False
    remove = to_bool(attrs["remove"], f"{what}: remove")
    extra = set(attrs) - allowed_with_remove - {"remove"}
    if remove and extra:
        raise _bad(
            f"{what}: no attribute but 'custom' may go with remove: {sorted(extra)}"
        )
    return remove


def _unknown_keys(attrs: Mapping, known: frozenset[str], what: str) -> None:
    unknown = [k for k in attrs if k not in known]
    if unknown:
        shown = ", ".join(repr(k)[:40] for k in sorted(map(str, unknown))[:5])
        raise _bad(f"{what}: unknown attribute(s) {shown}")


def _switch(attrs: Mapping, what: str) -> str:
    switch = attrs.get("switch", "legacy")
    if switch == "legacy":  # always valid; the registry asked only otherwise
        return switch
    switches = registry.switches()
    if switch not in switches:
        raise _bad(f"{what}: switch {switch!r} is not one of {', '.join(switches)}")
    return switch


def _nameservers(value: object, what: str) -> list[str]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise _bad(f"{what}: nameservers must be a list of addresses")
    if len(value) > MAX_NAMESERVERS:
        raise NetError(
            ErrorCode.BAD_ADDR,
            f"{what}: {len(value)} nameservers, at most {MAX_NAMESERVERS}",
        )
    return [to_str(v, f"{what}: nameserver", ErrorCode.BAD_ADDR, 64) for v in value]


def canonicalize_network(
    name: str, attrs: object, host_nameservers: Sequence[str] = ()
) -> dict | None:
    """Canonical attributes of one network, or None for a removal."""
    what = f"network {name}"
    attrs = to_dict(attrs, what)
    _unknown_keys(attrs, NETWORK_KEYS, what)
    if _is_remove(attrs, what, frozenset({"custom"})):
        return None
    out: dict = {}
    for key in ("nic", "bonding"):
        if key in attrs:
            out[key] = to_str(attrs[key], f"{what}: {key}", ErrorCode.BAD_PARAMS, 64)
    if "vlan" in attrs and attrs["vlan"] not in (None, ""):
        out["vlan"] = to_int(
            attrs["vlan"], f"{what}: vlan", 0, MAX_VLAN_TAG, ErrorCode.BAD_VLAN
        )
    out["bridged"] = to_bool(attrs.get("bridged", True), f"{what}: bridged")
    if out["bridged"]:
        stp = attrs["stp"] if "stp" in attrs else attrs.get("STP", False)
        out["stp"] = to_bool(stp, f"{what}: stp")
    elif "stp" in attrs or "STP" in attrs:
        raise _bad(f"{what}: stp is only meaningful on a bridged network")
    out["mtu"] = to_int(attrs.get("mtu", DEFAULT_MTU), f"{what}: mtu", MIN_MTU, MAX_MTU)
    _canonicalize_ipv4(attrs, out, what)
    _canonicalize_ipv6(attrs, out, what)
    out["switch"] = _switch(attrs, what)
    if "nameservers" in attrs:
        out["nameservers"] = _nameservers(attrs["nameservers"], what)
    elif out["defaultRoute"] and out["bootproto"] != "dhcp":
        out["nameservers"] = list(host_nameservers)
    else:
        out["nameservers"] = []
    for key in FREE_FORM_KEYS:
        if key in attrs:
            out[key] = _plain_json(attrs[key], f"{what}: {key}")
    _canonicalize_bridge_opts(out, what)
    _canonicalize_host_qos(out, what)
    if "blockingdhcp" in attrs:
        out["blockingdhcp"] = to_bool(attrs["blockingdhcp"], f"{what}: blockingdhcp")
    return out


def _canonicalize_bridge_opts(out: dict, what: str) -> None:
    """``custom.bridge_opts``, the one custom property netreload applies: a
    bridged legacy network's only (there is no Linux bridge to set them on
    otherwise: the agent fails those with 21 too), every option known and
    its value in range, kept sorted as the agent keeps it."""
    custom = out.get("custom")
    if not isinstance(custom, dict) or custom.get("bridge_opts") in (None, ""):
        return
    if not out["bridged"] or out["switch"] != "legacy":
        raise _bad(f"{what}: bridge_opts needs a bridged network on the legacy switch")
    text = canonical_bridge_opts(custom["bridge_opts"], what, out["stp"])
    out["custom"] = {**custom, "bridge_opts": text}


def _canonicalize_host_qos(out: dict, what: str) -> None:
    """``hostQos`` checked curve by curve (``host_qos``); shaping needs a
    NIC or bond under a legacy network (HFSC on that device)."""
    if "hostQos" not in out:
        return
    out["hostQos"] = canonical_host_qos(out["hostQos"], what)
    if not host_qos.shaping(out):
        return
    if not (out.get("nic") or out.get("bonding")):
        raise _bad(f"{what}: hostQos needs a nic or a bonding to shape")
    if out["switch"] != "legacy":
        raise _bad(
            f"{what}: hostQos is applied on legacy networks only, not on switch {out['switch']!r}"
        )


def free_form_bytes(networks: Iterable[Mapping | None]) -> int:
    """The JSON size of the free-form attributes of these canonical networks
    (None: a removal)."""
    return sum(
        len(to_json(attrs[key]))
        for attrs in networks
        if attrs is not None
        for key in FREE_FORM_KEYS
        if key in attrs
    )


def _plain_json(value: object, what: str) -> dict:
    """A free-form attribute is kept as sent, into the plan to superd and the
    persisted files: it must be JSON that orjson writes (integers of at most
    64 bits, at most 254 levels deep), or superd's frame could not be built,
    and at most ``MAX_FREE_FORM_BYTES`` of it."""
    value = to_dict(value, what)
    try:
        size = len(to_json(value))
    except TypeError:  # orjson.JSONEncodeError
        raise _bad(
            f"{what}: not plain JSON (an integer beyond 64 bits or nested too deeply)"
        ) from None
    if size > MAX_FREE_FORM_BYTES:
        raise _bad(f"{what}: {size} bytes of JSON, at most {MAX_FREE_FORM_BYTES}")
    return value


def _canonicalize_ipv4(attrs: Mapping, out: dict, what: str) -> None:
    bootproto = attrs.get("bootproto", "none")
    if bootproto not in ("none", "dhcp"):
        raise _bad(f"{what}: bootproto {bootproto!r} is not one of none, dhcp")
    out["bootproto"] = bootproto
    out["defaultRoute"] = to_bool(
        attrs.get("defaultRoute", False), f"{what}: defaultRoute"
    )
    for key in ("ipaddr", "netmask", "gateway"):
        if attrs.get(key) not in (None, ""):
            out[key] = to_str(attrs[key], f"{what}: {key}", ErrorCode.BAD_ADDR, 64)
    if attrs.get("prefix") not in (None, ""):
        if "netmask" in out:
            raise _bad(f"{what}: both prefix and netmask given")
        out["netmask"] = addresses.prefix_to_netmask(attrs["prefix"], what)


def _canonicalize_ipv6(attrs: Mapping, out: dict, what: str) -> None:
    out["dhcpv6"] = to_bool(attrs.get("dhcpv6", False), f"{what}: dhcpv6")
    out["ipv6autoconf"] = to_bool(
        attrs.get("ipv6autoconf", False), f"{what}: ipv6autoconf"
    )
    if attrs.get("ipv6addr") not in (None, ""):
        out["ipv6addr"] = addresses.validate_ipv6_cidr(attrs["ipv6addr"], what)
    if attrs.get("ipv6gateway") not in (None, "", "::"):
        out["ipv6gateway"] = addresses.compressed_ipv6(
            to_str(attrs["ipv6gateway"], f"{what}: ipv6gateway", ErrorCode.BAD_ADDR, 64)
        )


def canonicalize_bond(name: str, attrs: object) -> dict | None:
    """Canonical attributes of one bond, or None for a removal."""
    what = f"bond {name}"
    attrs = to_dict(attrs, what)
    _unknown_keys(attrs, BOND_KEYS, what)
    if _is_remove(attrs, what, frozenset()):
        return None
    nics = attrs.get("nics", [])
    if not isinstance(nics, list) or not all(isinstance(n, str) for n in nics):
        raise NetError(ErrorCode.BAD_BONDING, f"{what}: nics must be a list of names")
    if not nics:  # the production agent's code: 21, missing or empty alike
        raise _bad(f"{what}: must specify nics for bonding")
    if len(nics) > MAX_BOND_NICS:
        raise NetError(
            ErrorCode.BAD_BONDING, f"{what}: {len(nics)} nics, at most {MAX_BOND_NICS}"
        )
    out: dict = {"nics": sorted(nics), "switch": _switch(attrs, what)}
    options = attrs.get("options", "")
    if not isinstance(options, str):
        raise NetError(ErrorCode.BAD_BONDING, f"{what}: options must be a string")
    if len(options) > MAX_BOND_OPTIONS:
        raise NetError(
            ErrorCode.BAD_BONDING,
            f"{what}: options of {len(options)} characters, at most {MAX_BOND_OPTIONS}",
        )
    if out["switch"] == "ovs":  # a port of OVS, not a kernel bond: OVS's options
        out["options"] = ovs_bond_options.canonical(options, name)
    else:
        out["options"] = bond_options.canonical_bond_options(options, name)
    if attrs.get("hwaddr") not in (None, ""):
        out["hwaddr"] = to_str(
            attrs["hwaddr"], f"{what}: hwaddr", ErrorCode.BAD_BONDING, 17
        ).lower()
    return out


def canonicalize_options(options: object, strict: bool = False) -> dict:
    """The options netreload knows, canonical. Other keys are left out, as
    the production agent ignores them (an engine may send options of a
    newer agent); ``strict`` (a plan superd checks, which frontd wrote
    canonical): they are refused."""
    options = to_dict(options if options is not None else {}, "options")
    if strict:
        _unknown_keys(options, frozenset(OPTION_DEFAULTS), "options")
    out = dict(OPTION_DEFAULTS)
    for key in ("connectivityCheck", "commitOnSuccess", "_inRollback"):
        if key in options:
            out[key] = to_bool(options[key], f"options: {key}")
    if "connectivityTimeout" in options:
        out["connectivityTimeout"] = to_truncated_int(
            options["connectivityTimeout"],
            "options: connectivityTimeout",
            0,
            MAX_CONNECTIVITY_TIMEOUT,
        )
    return out


def persisted_form(attrs: Mapping) -> dict:
    """What persistence and comparisons keep: ``blockingdhcp`` is transient."""
    return {k: v for k, v in attrs.items() if k != "blockingdhcp"}
