"""Bonding options → a teamd configuration (``bonding_driver = team``).

Pure. The engine speaks the bonding driver's options ("mode=1
miimon=100"); with ``[vars] bonding_driver = team`` every legacy bond is a
team device driven by teamd, whose JSON configuration is built here from
those options, one table entry per option that has a team equivalent:

============================  ================================================
bonding                        teamd
============================  ================================================
mode 0 (balance-rr)            runner ``roundrobin``
mode 1 (active-backup)         runner ``activebackup``
mode 2 (balance-xor)           runner ``loadbalance``, ``tx_hash`` from
                               ``xmit_hash_policy``
mode 3 (broadcast)             runner ``broadcast``
mode 4 (802.3ad)               runner ``lacp`` (``active``), ``fast_rate`` from
                               ``lacp_rate``, ``tx_hash`` from
                               ``xmit_hash_policy``
miimon, updelay, downdelay     link watch ``ethtool`` with ``delay_up`` /
                               ``delay_down`` (ms)
arp_interval, arp_ip_target    one link watch ``arp_ping`` per target, its
                               ``interval`` (ms); ``arp_validate`` active /
                               backup / all → ``validate_active`` /
                               ``validate_inactive``
primary (active-backup)        that port's ``prio`` 1, the others' 0
============================  ================================================

Anything else has no team equivalent and is refused with 25 naming the
option: modes 5 and 6 (balance-tlb, balance-alb), the encap and
vlan+srcmac hash policies, arp_validate's filter values, and every other
bonding option. Options are first validated as bonding options
(``bond_options``), so a value is only ever translated if the bonding
driver would take it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from shared.errors import ErrorCode, NetError
from shared.netmodel.bond_options import (
    BOND_OPTIONS,
    mode_number,
    parse_bond_options,
    validate_bond_options,
)

RUNNERS: Mapping[int, str] = MappingProxyType(
    {0: "roundrobin", 1: "activebackup", 2: "loadbalance", 3: "broadcast", 4: "lacp"}
)
# xmit_hash_policy → teamd's tx_hash fields
TX_HASH: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "layer2": ("eth",),
        "layer2+3": ("eth", "ipv4", "ipv6"),
        "layer3+4": ("ipv4", "ipv6", "l4"),
    }
)
ARP_VALIDATE: Mapping[str, tuple[bool, bool]] = MappingProxyType(
    {"none": (False, False), "active": (True, False), "backup": (False, True),
     "all": (True, True)}  # fmt: skip
)


def _fail(bond: str, message: str) -> NetError:
    return NetError(ErrorCode.BAD_BONDING, f"Bond {bond} (team): {message}")


def _named(key: str, value: str) -> str:
    """An enum option's value by name ("1" → "fast" for lacp_rate)."""
    values = BOND_OPTIONS[key].values
    if value in values:
        return value
    return next(name for name, number in values.items() if str(number) == value)


Translator = Callable[[str, str, Mapping[str, str], dict[str, Any]], None]


def _mode(bond: str, value: str, options: Mapping[str, str], config: dict[str, Any]) -> None:
    pass  # the runner is chosen from the mode before the table is applied


def _hash(bond: str, value: str, options: Mapping[str, str], config: dict[str, Any]) -> None:
    policy = _named("xmit_hash_policy", value)
    if policy not in TX_HASH:
        raise _fail(bond, f"xmit_hash_policy={value} has no teamd tx_hash equivalent"
                    f" (one of {', '.join(TX_HASH)})")  # fmt: skip
    config["runner"]["tx_hash"] = list(TX_HASH[policy])


def _lacp_rate(bond: str, value: str, options: Mapping[str, str], config: dict[str, Any]) -> None:
    config["runner"]["fast_rate"] = _named("lacp_rate", value) == "fast"


def _miimon(bond: str, value: str, options: Mapping[str, str], config: dict[str, Any]) -> None:
    if int(value):
        watch = {"name": "ethtool"}
        for key, field in (("updelay", "delay_up"), ("downdelay", "delay_down")):
            if int(options.get(key, "0")):
                watch[field] = int(options[key])
        config["link_watch"] = watch


def _delay(bond: str, value: str, options: Mapping[str, str], config: dict[str, Any]) -> None:
    if int(value) and not int(options.get("miimon", "0")):
        raise _fail(bond, "updelay and downdelay need miimon (the ethtool link watch)")


def _arp_interval(
    bond: str, value: str, options: Mapping[str, str], config: dict[str, Any]
) -> None:
    if not int(value):
        return
    targets = [t for t in options.get("arp_ip_target", "").split(",") if t]
    if not targets:
        raise _fail(bond, "arp_interval needs arp_ip_target (the arp_ping link watch)")
    active, inactive = ARP_VALIDATE[_arp_validate_name(bond, options)]
    config["link_watch"] = [
        {"name": "arp_ping", "interval": int(value), "target_host": target,
         "validate_active": active, "validate_inactive": inactive}
        for target in targets
    ]  # fmt: skip


def _arp_validate_name(bond: str, options: Mapping[str, str]) -> str:
    name = _named("arp_validate", options.get("arp_validate", "none"))
    if name not in ARP_VALIDATE:
        raise _fail(bond, f"arp_validate={options['arp_validate']} has no teamd equivalent"
                    f" (one of {', '.join(ARP_VALIDATE)})")  # fmt: skip
    return name


def _arp_validate(
    bond: str, value: str, options: Mapping[str, str], config: dict[str, Any]
) -> None:
    name = _arp_validate_name(bond, options)
    if name != "none" and not int(options.get("arp_interval", "0")):
        raise _fail(bond, "arp_validate needs arp_interval")


def _arp_target(bond: str, value: str, options: Mapping[str, str], config: dict[str, Any]) -> None:
    if value and not int(options.get("arp_interval", "0")):
        raise _fail(bond, "arp_ip_target needs arp_interval")


def _primary(bond: str, value: str, options: Mapping[str, str], config: dict[str, Any]) -> None:
    if value:
        config["primary"] = value  # resolved into port priorities by teamd_config


#: bonding option → (the modes it is translated in, how)
TEAM_OPTIONS: Mapping[str, tuple[frozenset[int], Translator]] = MappingProxyType(
    {
        "mode": (frozenset(RUNNERS), _mode),
        "xmit_hash_policy": (frozenset({2, 4}), _hash),
        "lacp_rate": (frozenset({4}), _lacp_rate),
        "miimon": (frozenset(RUNNERS), _miimon),
        "updelay": (frozenset(RUNNERS), _delay),
        "downdelay": (frozenset(RUNNERS), _delay),
        "arp_interval": (frozenset(RUNNERS) - {4}, _arp_interval),
        "arp_ip_target": (frozenset(RUNNERS) - {4}, _arp_target),
        "arp_validate": (frozenset({1}), _arp_validate),
        "primary": (frozenset({1}), _primary),
    }
)


def runner_config(bond: str, options_text: str) -> dict[str, Any]:
    """The teamd configuration (without ``device`` and ``ports``) of a bond's
    options, or NetError(25) naming the first option with no team
    equivalent."""
    options = validate_bond_options(bond, parse_bond_options(options_text))
    mode = mode_number(options)
    if mode not in RUNNERS:
        raise _fail(bond, f"mode={options.get('mode', mode)} has no teamd runner"
                    f" (modes {', '.join(f'{m} {r}' for m, r in RUNNERS.items())})")  # fmt: skip
    config: dict[str, Any] = {"runner": {"name": RUNNERS[mode]}}
    if mode == 4:
        config["runner"]["active"] = True
    for key, value in options.items():
        entry = TEAM_OPTIONS.get(key)
        if entry is None:
            raise _fail(bond, f"bonding option {key} has no teamd equivalent")
        modes, translate = entry
        if mode not in modes:
            raise _fail(bond, f"bonding option {key} has no teamd equivalent with runner"
                        f" {RUNNERS[mode]}")  # fmt: skip
        translate(bond, value, options, config)
    return config


def teamd_config(name: str, options_text: str, ports: tuple[str, ...] = ()) -> dict[str, Any]:
    """The whole teamd JSON configuration of team ``name`` (``ports``
    matter only for a ``primary``: teamd's port priorities)."""
    config = runner_config(name, options_text)
    primary = config.pop("primary", None)
    out: dict[str, Any] = {"device": name, **config}
    if primary is not None:
        out["ports"] = {port: {"prio": 1 if port == primary else 0} for port in ports}
    return out
