"""The capabilities report's contract: every key and its type. PURE.

The engine parses ``Host.getNetworkCapabilities`` (and the network part of
``Host.getCapabilities``) with casts — ``(String)``, ``(Integer)``,
``(Boolean)``, ``(Object[])`` — so a key of another type than the production
agent reports breaks the engine's host monitoring. This module states,
as our own table, what the agent's published API schema and its netinfo
code say each entry holds, and :func:`problems` checks a whole report
against it. The unit, functional and VM lanes run it on every host shape
they build.

Notable facts (the agent's schema, checked against its code):

* ``mtu`` is a decimal *string* in every section (the agent stringifies it
  for the engine); ``vlanid`` and ``speed`` are integers;
* ``stp`` is ``'on'`` or ``'off'``; ``opts`` (bridges and bonds) map
  option names to strings;
* a network has ``southbound`` (its NIC, bond or VLAN device; None for a
  bridge without one) and ``vlanid`` when that is a VLAN; a bridgeless
  one ``interface``;
* ``netConfigDirty`` is ``'True'`` or ``'False'`` (a string), in the
  answers of both verbs.

Keys the agent reports beyond its schema (``southbound``, ``vlanid``,
``speed`` of a bond, ``ad_*``, ``permhwaddr``) are listed as the agent
sends them. netreload's own additions are few and marked below:
``missing`` (a network whose top device is gone) and ``missing_nics``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], str | None]  # None when the value fits, else what is wrong


def _is(kind: type, label: str) -> Check:
    def check(value: Any) -> str | None:
        # bool is an int in Python, never in JSON
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            return None
        return f"{value!r} is not {label}"

    return check


STR = _is(str, "a string")
INT = _is(int, "an integer")
BOOL = _is(bool, "a boolean")


def UINT_STR(value: Any) -> str | None:  # noqa: N802 - a type name
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return None
    return f"{value!r} is not a decimal string"


def one_of(*allowed: Any) -> Check:
    def check(value: Any) -> str | None:
        if any(type(value) is type(a) and value == a for a in allowed):
            return None
        return f"{value!r} is not one of {', '.join(map(repr, allowed))}"

    return check


def list_of(item: Check) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, list):
            return f"{value!r} is not a list"
        for element in value:
            wrong = item(element)
            if wrong:
                return wrong
        return None

    return check


def or_none(inner: Check) -> Check:
    def check(value: Any) -> str | None:
        return None if value is None else inner(value)

    return check


def STRING_MAP(value: Any) -> str | None:  # noqa: N802 - a type name
    if not isinstance(value, dict):
        return f"{value!r} is not an object"
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            return f"{key!r}: {item!r} is not a string to string"
    return None


def OBJECT(value: Any) -> str | None:  # noqa: N802 - a type name
    return None if isinstance(value, dict) else f"{value!r} is not an object"


STRS = list_of(STR)
STP = one_of("on", "off")
SWITCH = one_of("legacy", "ovs")
TRUE_FALSE = one_of("True", "False")


def _vlan_id(value: Any) -> str | None:
    wrong = INT(value)
    if wrong is None and not 0 <= value <= 4094:
        return f"{value!r} is not a VLAN id"
    return wrong


# name → (check, required)
Spec = Mapping[str, tuple[Check, bool]]

IP_INFO: Spec = {
    "addr": (STR, True),
    "netmask": (STR, True),
    "ipv4addrs": (STRS, True),
    "ipv6addrs": (STRS, True),
    "gateway": (STR, True),
    "ipv6gateway": (STR, True),
    "ipv4defaultroute": (BOOL, True),
    "ipv6autoconf": (BOOL, True),
    "dhcpv4": (BOOL, True),
    "dhcpv6": (BOOL, True),
    "mtu": (UINT_STR, True),
}

NIC: Spec = {
    **IP_INFO,
    "hwaddr": (STR, True),
    "speed": (INT, True),
    "permhwaddr": (STR, False),  # bond slaves only
    "ad_aggregator_id": (UINT_STR, False),  # 802.3ad bond slaves only
    "qos": (list_of(OBJECT), False),
}

BOND: Spec = {
    **IP_INFO,
    "hwaddr": (STR, True),
    "slaves": (STRS, True),
    "active_slave": (STR, True),
    "opts": (STRING_MAP, True),
    "switch": (SWITCH, True),
    "speed": (INT, True),
    "ad_aggregator_id": (UINT_STR, False),  # 802.3ad with an active aggregator
    "ad_partner_mac": (STR, False),
    "qos": (list_of(OBJECT), False),
    "missing_nics": (STRS, False),  # netreload: slaves the host lost
}

VLAN: Spec = {**IP_INFO, "iface": (STR, True), "vlanid": (_vlan_id, True)}

BRIDGE: Spec = {
    **IP_INFO,
    "ports": (STRS, True),
    "stp": (STP, True),
    "opts": (STRING_MAP, True),
}

_NETWORK: Spec = {
    **IP_INFO,
    "iface": (STR, True),
    "switch": (SWITCH, True),
    "vlanid": (_vlan_id, False),
    "hostQos": (OBJECT, False),
    "missing": (one_of(True), False),  # netreload: its top device is gone
    "missing_nics": (STRS, False),  # netreload: its NIC(s) are gone
}

BRIDGED_NETWORK: Spec = {
    **_NETWORK,
    "bridged": (one_of(True), True),
    "ports": (STRS, True),
    "stp": (STP, True),
    "southbound": (or_none(STR), True),
}

BRIDGELESS_NETWORK: Spec = {
    **_NETWORK,
    "bridged": (one_of(False), True),
    "interface": (STR, True),
    "southbound": (STR, True),
    "ports": (STRS, False),  # an OVS network's southbound port, as the agent
}

SECTIONS: Mapping[str, Spec] = {
    "nics": NIC,
    "bondings": BOND,
    "vlans": VLAN,
    "bridges": BRIDGE,
}


def entry_problems(entry: Any, spec: Spec, where: str) -> list[str]:
    """What in one entry does not fit ``spec``."""
    if not isinstance(entry, dict):
        return [f"{where}: {entry!r} is not an object"]
    found = []
    for key, (check, required) in spec.items():
        if key not in entry:
            if required:
                found.append(f"{where}: {key} is missing")
            continue
        wrong = check(entry[key])
        if wrong:
            found.append(f"{where}.{key}: {wrong}")
    found += [f"{where}: unknown key {key!r}" for key in entry if key not in spec]
    return found


def network_problems(entry: Any, where: str) -> list[str]:
    if not isinstance(entry, dict):
        return [f"{where}: {entry!r} is not an object"]
    if entry.get("bridged") is True:
        return entry_problems(entry, BRIDGED_NETWORK, where)
    if entry.get("bridged") is False:
        return entry_problems(entry, BRIDGELESS_NETWORK, where)
    return [f"{where}.bridged: {entry.get('bridged')!r} is not a boolean"]


def problems(report: Any, answer: bool = True) -> list[str]:
    """Everything in ``report`` that differs from the contract; empty when
    it fits. ``answer``: a verb's answer, which carries ``netConfigDirty``
    (superd's own report does not); other keys of ``Host.getCapabilities``
    (the host's, not the network's) are not checked here."""
    if not isinstance(report, dict):
        return [f"the report {report!r} is not an object"]
    found = []
    for section, spec in (*SECTIONS.items(), ("networks", None)):
        entries = report.get(section)
        if not isinstance(entries, dict):
            found.append(f"{section}: {entries!r} is not an object")
            continue
        for name, entry in entries.items():
            where = f"{section}.{name}"
            found += (
                network_problems(entry, where) if spec is None
                else entry_problems(entry, spec, where)
            )  # fmt: skip
    for key, check in (("nameservers", STRS), ("supportsIPv6", BOOL)):
        wrong = check(report.get(key)) if key in report else "missing"
        if wrong:
            found.append(f"{key}: {wrong}")
    if answer:
        wrong = TRUE_FALSE(report["netConfigDirty"]) if "netConfigDirty" in report else "missing"
        if wrong:
            found.append(f"netConfigDirty: {wrong}")
    return found
