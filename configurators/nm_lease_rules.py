"""Source routing of a DHCP lease's router under NetworkManager.

A DHCP network without the default route has its profile's
``ipv4.route-table`` set to the network's table
(:func:`shared.source_routing.source_table`): NetworkManager puts the
lease's subnet route and its default route via the router there, and takes
them away with the lease or the profile. The two rules looking the table up
(``from <subnet>`` / ``to <subnet>``, priority
:data:`~shared.source_routing.RULE_PRIORITY`) name the lease's subnet,
which no profile can know in advance: netreload adds them itself, as the
dhclient hook does under the iproute2 configurator, and removes them —

* the configurator, after each change, for the devices of the profiles it
  sent (:meth:`configurators.nm.NmConfigurator.flush`): a blocking DHCP
  network has its lease by then; a network removed, or holding the default
  route now, loses its rules;
* superd's netlink monitor (:class:`LeaseRulesListener`), for what comes
  later: a non-blocking network's lease, a renewal with another subnet.

A lease is given no rules (its routes stay in a table nothing looks up) when
its prefix is shorter than :data:`configurators.dhcp.MIN_LEASE_PREFIX` or
its subnet overlaps the default-route network's, as the hook refuses it.
Rules of a table are only touched while its device holds a lease (or has no
profile any more): a static network's rules are NetworkManager's.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.source_routing import RULE_PRIORITY, source_table

log = logging.getLogger("netreload.nm.lease_rules")

#: (``"from"`` | ``"to"``, network address, prefix length)
Rule = tuple[str, str, int]
MAIN_TABLE = 254
IFA_F_PERMANENT = 0x80
#: the shortest IPv4 prefix a lease may have on a network without the
#: default route (``configurators.dhcp.MIN_LEASE_PREFIX``, the hook's)
MIN_LEASE_PREFIX = 8


@dataclass(frozen=True)
class MainDefault:
    """The main table's default route: its gateway, its device and the
    device's IPv4 addresses ((address, prefixlen))."""

    gateway: str | None = None
    device: str | None = None
    addresses: tuple[tuple[str, int], ...] = field(default=())


def refusal(device: str, address: str, prefixlen: int, main: MainDefault) -> str | None:
    """Why a lease on ``device`` (a network without the default route) may
    not be routed, or None: wider than /:data:`MIN_LEASE_PREFIX`, holding
    the default gateway or overlapping the default-route device's subnets."""
    lease = f"{device}: lease {address}/{prefixlen}"
    if prefixlen < MIN_LEASE_PREFIX:
        return f"{lease}: prefix shorter than /{MIN_LEASE_PREFIX}, no rules"
    if main.device is None or main.device == device:
        return None
    subnet = ipaddress.IPv4Network(f"{address}/{prefixlen}", strict=False)
    if main.gateway and ipaddress.IPv4Address(main.gateway) in subnet:
        return f"{lease} holds the default gateway, no rules"
    for other, plen in main.addresses:
        if subnet.overlaps(ipaddress.IPv4Network(f"{other}/{plen}", strict=False)):
            return f"{lease} overlaps {other}/{plen} of {main.device}, no rules"
    return None


def lease_rules(
    device: str,
    leases: Iterable[tuple[str, int]],
    main: MainDefault,
    refused: set[str] | None = None,
) -> set[Rule]:
    """The rules the leases ((address, prefixlen)) of ``device`` call for;
    why a lease gets none is logged, or added to ``refused`` if given."""
    rules: set[Rule] = set()
    for address, prefixlen in leases:
        why = refusal(device, address, prefixlen, main)
        if why is None:
            subnet = ipaddress.IPv4Network(f"{address}/{prefixlen}", strict=False)
            net = str(subnet.network_address)
            rules |= {("from", net, prefixlen), ("to", net, prefixlen)}
        elif refused is None:
            log.warning("%s", why)
        else:
            refused.add(why)
    return rules


def rule_of(rule: Mapping[str, Any]) -> Rule | None:
    """A kernel rule (``src``/``src_len``/``dst``/``dst_len``) as a
    :data:`Rule`; None for one of another shape."""
    if rule.get("src") and not rule.get("dst"):
        return ("from", rule["src"], rule["src_len"])
    if rule.get("dst") and not rule.get("src"):
        return ("to", rule["dst"], rule["dst_len"])
    return None


def table_rules(rules: Iterable[Mapping[str, Any]], table: int) -> dict[Rule, Mapping]:
    """The source-routing rules looking ``table`` up, by :data:`Rule`."""
    found = {}
    for rule in rules:
        if rule.get("table") == table and rule.get("priority") == RULE_PRIORITY:
            key = rule_of(rule)
            if key is not None:
                found[key] = rule
    return found


def rule_spec(rule: Rule, table: int) -> dict[str, Any]:
    way, net, plen = rule
    spec = {"src": net, "src_len": plen} if way == "from" else {"dst": net, "dst_len": plen}
    return {"family": socket.AF_INET, "table": table, "priority": RULE_PRIORITY, **spec}


def sync_device(kernel: Any, device: str, leased: bool) -> None:
    """Bring the rules of ``device``'s table to what its lease calls for
    (``leased``: a DHCP network without the default route; otherwise it has
    none) through ``kernel`` (:class:`configurators.iproute2_netlink.Kernel`).
    """
    table = source_table(device)
    kernel.rules_changed()
    have = table_rules(kernel.rules(socket.AF_INET), table)
    wanted: set[Rule] = set()
    dev = kernel.device(device)
    if leased and dev is not None:
        wanted = lease_rules(device, kernel.addresses(dev["index"], socket.AF_INET),
                             main_default(kernel))  # fmt: skip
    for rule in sorted(set(have) - wanted):
        kernel.request(device, f"remove rule {rule[0]} {rule[1]}/{rule[2]} lookup {table}",
                       "rule", "del", tolerate=(2,), **rule_spec(rule, table))  # fmt: skip
    for rule in sorted(wanted - set(have)):
        kernel.request(device, f"add rule {rule[0]} {rule[1]}/{rule[2]} lookup {table}",
                       "rule", "add", tolerate=(17,), **rule_spec(rule, table))  # fmt: skip
    kernel.rules_changed()


def route_table(settings: Mapping[str, Mapping[str, Any]] | None) -> int:
    """A profile's ``ipv4.route-table`` (0: the main table)."""
    return int((settings or {}).get("ipv4", {}).get("route-table") or 0)


def sync_sent(
    kernel: Any, wanted: Mapping[str, int], held: Mapping[str, int], gone: Iterable[str] = ()
) -> None:
    """After a change: the rules of the devices whose profile (``wanted``)
    routes a lease in a table of its own, of those whose profile did
    (``held``: the ``route-table`` of the profiles held before), and of
    those dropped without a profile any more (``gone``: a checkpoint
    rollback deleted it; no profile, no rules NetworkManager would keep)."""
    gone = set(gone) - set(wanted)
    for name in sorted({*wanted, *held, *gone}):
        if wanted.get(name) or held.get(name) or name in gone:
            sync_device(kernel, name, leased=bool(wanted.get(name)))


def main_default(kernel: Any) -> MainDefault:
    """The main table's default route as ``kernel`` reads it."""
    for route in kernel.routes(socket.AF_INET, MAIN_TABLE):
        if route["dst_len"] == 0 and route.get("oif"):
            names = {link["index"]: link["name"] for link in kernel.links()}
            addresses = tuple(kernel.addresses(route["oif"], socket.AF_INET))
            return MainDefault(route.get("gateway"), names.get(route["oif"]), addresses)
    return MainDefault()


class LeaseRulesListener:
    """superd's netlink monitor listener (``LiveNetinfo.listeners``): keeps
    the rules of every device holding a DHCP lease whose routes are in the
    device's own table (a NetworkManager profile with ``route-table``), as
    each new kernel state shows them; the tables it saw routing a lease
    lose their rules with the lease (unless a static address took over:
    NetworkManager's rules then). Called in the monitor thread: it only
    writes when the state differs from what it calls for."""

    def __init__(self, ipr_factory: Any = None) -> None:
        self._factory = ipr_factory
        self._ipr: Any = None
        self._mine: set[int] = set()  # tables seen routing a lease
        self._refused: set[str] = set()  # the leases given none, as logged
        self._last: Any = None  # the previous state and its main default
        self._main = MainDefault()

    def _socket(self) -> Any:
        if self._ipr is None:
            if self._factory is not None:
                self._ipr = self._factory()
            else:
                from pyroute2 import IPRoute

                self._ipr = IPRoute()
        return self._ipr

    def on_state(self, state: Any) -> None:
        main = main_of(state)
        devices = self._devices(state, main)
        self._last, self._main = state, main
        refused: set[str] = set()
        found = changes(state, self._mine, refused, devices, main)
        for why in sorted(refused - self._refused):  # once per lease, not per state
            log.warning("%s", why)
        self._refused = refused if devices is None else self._refused | refused
        for table, (add, delete) in found.items():
            for rule in delete:
                self._write("del", rule, table)
            for rule in add:
                self._write("add", rule, table)

    def _devices(self, state: Any, main: MainDefault) -> dict[int, str] | None:
        """{ifindex: name} of the devices whose rules ``state`` may call
        for anew (a monitor batch touches a few on a host of thousands):
        those whose link or addresses the batch changed (``state.touched``),
        whose routes it changed (nothing else decides a device's rules but
        the rules and the main table's default route); None (every device)
        after a full dump, for a first state, when the rules or the main
        table's default route changed."""
        last = self._last
        if last is None or state.touched is None or main != self._main:
            return None
        if state.rules is not last.rules and state.rules != last.rules:
            return None
        indexes = set(state.touched)
        if state.by_oif is not last.by_oif:  # routes changed: whose (inner maps are copied)
            old = last.by_oif
            indexes.update(i for i, inner in state.by_oif.items() if old.get(i) is not inner)
            indexes.update(old.keys() - state.by_oif.keys())
        devices = {}
        for index in indexes:
            link = state.links.get(index) or last.links.get(index)
            if link is not None:
                devices[index] = link["name"]
        return devices

    def _write(self, how: str, rule: Rule, table: int) -> None:
        try:
            self._socket().rule(how, **rule_spec(rule, table))
            log.info("%s rule %s %s/%d lookup %d", how, *rule, table)
        except Exception as error:  # EEXIST / ENOENT: the configurator was first
            if getattr(error, "code", None) not in (2, 17):
                log.warning("cannot %s rule %s %s/%d lookup %d: %s", how, *rule, table, error)

    def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None


def main_of(state: Any) -> MainDefault:
    """The main table's default route in a monitor state (its few default
    routes are indexed: no walk over the devices)."""
    for ident in state.defaults:
        if ident[:2] == (4, MAIN_TABLE):
            for entry in state.routes[ident].values():
                oif = entry.route.get("oif")
                link = state.links.get(oif)
                if link is not None:
                    return MainDefault(entry.route.get("gateway"), link["name"], _v4(state, oif))
    return MainDefault()


def changes(
    state: Any,
    mine: set[int],
    refused: set[str] | None = None,
    devices: Mapping[int, str] | None = None,
    main: MainDefault | None = None,
) -> dict[int, tuple[list[Rule], list[Rule]]]:
    """{table: (rules to add, rules to delete)} for a monitor state
    (:class:`superd.netstate.NetState`); ``mine``: the tables seen routing
    a lease before, whose rules go when their lease does (updated: the
    tables routing a lease now added, those left alone dropped);
    ``refused``: collects why a lease gets none. ``devices`` ({ifindex:
    name}): look at these only (what a batch may have changed, the tables
    of ``mine`` among them); None: every link. ``main``: the state's
    :func:`main_of`, if known."""
    if devices is None:
        by_index: Mapping[int, str] = {index: link["name"] for index, link in state.links.items()}
        tables = None
    else:
        by_index = devices
        tables = {source_table(name) for name in devices.values()}
    main = main_of(state) if main is None else main
    out: dict[int, tuple[list[Rule], list[Rule]]] = {}
    seen: set[int] = set()
    for index, name in by_index.items():
        table = source_table(name)
        if not any(ident[:2] == (4, table) for ident in state.by_oif.get(index, {})):
            continue  # no route through it in its table
        leases = _v4(state, index, dynamic=True)
        if not leases:
            continue
        seen.add(table)
        mine.add(table)  # its rules go with the lease, whoever added them
        wanted = lease_rules(name, leases, main, refused)
        have = set(table_rules(state.rules, table))
        if wanted != have:
            out[table] = (sorted(wanted - have), sorted(have - wanted))
    for table in sorted(mine - seen):
        if tables is not None and table not in tables:
            continue  # its device not looked at: as it was
        static = any(source_table(name) == table and _v4(state, index, permanent=True)
                     for index, name in by_index.items())  # fmt: skip
        have = sorted(table_rules(state.rules, table))
        if not static and have:
            out[table] = ([], have)
        else:
            mine.discard(table)
    return out


def _v4(
    state: Any, index: int, dynamic: bool = False, permanent: bool = False
) -> tuple[tuple[str, int], ...]:
    """A device's global IPv4 addresses in a monitor state: all, the
    leased ones (``dynamic``: with a lifetime) or the static ones."""
    found = []
    for a in state.addresses.get(index, ()):
        if a.get("family") != 4 or a.get("scope", 0) != 0:
            continue
        fixed = bool(a.get("flags", 0) & IFA_F_PERMANENT)
        if (dynamic and fixed) or (permanent and not fixed):
            continue
        found.append((a["address"], a["prefixlen"]))
    return tuple(found)
