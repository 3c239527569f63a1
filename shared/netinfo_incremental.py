"""The capabilities report after a small change, at the cost of the change.

:class:`IncrementalBuilder` builds the report as
:class:`shared.netinfo_report.ReportBuilder` does — the very same entry
functions — but, told which devices changed since its last report (the
live netinfo's states say which ifindexes each batch touched), it rebuilds
only what depends on them instead of walking every device and network of
the host:

* a changed device (link or addresses, added, removed, renamed), the
  device it is or was a port of (its ``ports``/``slaves``), the VLAN
  devices on it (their ``iface``), the devices whose gateway or default
  route changed (the routes' part, from the few default routes);
* the networks whose top device is one of those, whose attributes changed
  in the running configuration, or whose NIC appeared or went
  (``missing_nics``);
* bonds and teams every time (few; their entries name other devices);
  DHCP marks every time (as many as networks configured with DHCP).

Anything else — the first report, an unknown change (a full dump), other
bonds in the running configuration, other policy rules, another NIC
predicate, a change of many devices — is a full build. PURE, thread-safe
(one build at a time); reports are shared: read-only. The sections a
change writes are :class:`shared.layered.Layered` over the last report's
(a full build's are dicts): mappings, not dicts — what needs real dicts
(orjson) takes ``shared.layered.plain`` of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from shared.layered import Layered
from shared.netinfo_report import (
    IsFakeNic,
    ReportBuilder,
    _bond_entry,
    _device_entry,
    _IpIndex,
    _mark_dhcp,
    _mark_missing_nics,
    _network_entry,
    _team_entry,
    network_iface,
)
from shared.source_routing import rule_tables

SECTIONS = ("bridges", "bondings", "vlans", "nics")
MANY = 64  # changed devices (or a quarter of them all) above which a full build is as cheap
HISTORY = 32  # reports whose changes are remembered (see changes_between)
LAYERED_ABOVE = 64  # entries above which a written section is layered, not copied
Changes = dict[str, set[str]]  # section → names whose entry may differ


class _Last:
    """What the last report was built from, indexed for the next update."""

    def __init__(self, links: Mapping[int, dict], running: Mapping[str, Any], ip: _IpIndex,
                 looked_up: frozenset, is_fake_nic: IsFakeNic, report: dict) -> None:  # fmt: skip
        self.links, self.running, self.ip, self.looked_up = links, running, ip, looked_up
        self.is_fake_nic, self.report = is_fake_nic, report
        self.version: int | None = None  # of the state built from
        self.names: dict[int, str] = {}
        self.by_name: dict[str, dict] = {}
        self.members: dict[int, set[str]] = {}
        self.uppers: dict[int, set[int]] = {}  # lower device → the VLAN devices on it
        self.section_of: dict[str, str] = {}
        self.bonds: set[int] = set()  # bond and team devices: rebuilt every time
        self.ipv6 = 0  # devices with IPv6
        for link in links.values():
            self.add_link(link)
        self.by_iface: dict[str, set[str]] = {}
        self.by_lower: dict[str, set[str]] = {}
        self.dynamic: dict[str, None] = {}
        for name, attrs in (running.get("networks") or {}).items():
            self.add_network(name, attrs)
        for section in SECTIONS:
            for name in report[section]:
                self.section_of[name] = section

    def add_link(self, link: dict) -> None:
        index, name = link["index"], link["name"]
        self.names[index], self.by_name[name] = name, link
        if link.get("master"):
            self.members.setdefault(link["master"], set()).add(name)
        if link.get("link") is not None:
            self.uppers.setdefault(link["link"], set()).add(index)
        if link.get("kind") in ("bond", "team"):
            self.bonds.add(index)
        self.ipv6 += link.get("ipv6conf") is not None

    def drop_link(self, link: dict) -> None:
        index, name = link["index"], link["name"]
        self.names.pop(index, None)
        if self.by_name.get(name) is link:
            del self.by_name[name]
        if link.get("master"):
            self.members.get(link["master"], set()).discard(name)
        if link.get("link") is not None:
            self.uppers.get(link["link"], set()).discard(index)
        self.bonds.discard(index)
        self.ipv6 -= link.get("ipv6conf") is not None

    def add_network(self, name: str, attrs: Mapping[str, Any]) -> None:
        self.by_iface.setdefault(network_iface(name, attrs), set()).add(name)
        for lower in self._lowers(attrs):
            self.by_lower.setdefault(lower, set()).add(name)
        if attrs.get("bootproto") == "dhcp" or attrs.get("dhcpv6"):
            self.dynamic[name] = None

    def drop_network(self, name: str, attrs: Mapping[str, Any]) -> None:
        self.by_iface.get(network_iface(name, attrs), set()).discard(name)
        for lower in self._lowers(attrs):
            self.by_lower.get(lower, set()).discard(name)
        self.dynamic.pop(name, None)

    def _lowers(self, attrs: Mapping[str, Any]) -> list[str]:
        if attrs.get("nic"):
            return [attrs["nic"]]
        bonds = self.running.get("bonds") or {}
        return list((bonds.get(attrs.get("bonding")) or {}).get("nics", ()))


class IncrementalBuilder:
    """:meth:`build` with ``changed``: see the module docstring."""

    def __init__(self) -> None:
        self._full = ReportBuilder()
        self._last: _Last | None = None
        self._lock = threading.Lock()
        self.full_builds = 0  # how many builds walked the whole host
        # (report, what may differ from the report before it; None: a full build)
        self._history: list[tuple[dict, Changes | None]] = []

    def changes_between(self, old: dict, new: dict) -> Changes | None:
        """Per section (``networks`` and the device sections), the names
        whose entries may differ between two reports this builder made
        (an entry named may also be equal); None when not known. For a
        delta between them at the cost of the change."""
        with self._lock:
            history = list(self._history)
        where = {id(report): i for i, (report, _) in enumerate(history)}
        if id(old) not in where or id(new) not in where:
            return None
        low, high = sorted((where[id(old)], where[id(new)]))
        out: Changes = {section: set() for section in ("networks", *SECTIONS)}
        for _, changes in history[low + 1 : high + 1]:
            if changes is None:
                return None
            for section, names in changes.items():
                out[section] |= names
        return out

    def _record(self, report: dict, changes: Changes | None) -> dict:
        if changes is None:  # no delta spans a full build: the reports before it,
            self._history.clear()  # the whole host before a big change, are let go
        self._history.append((report, changes))
        del self._history[:-HISTORY]
        return report

    def build(
        self,
        links: Mapping[int, dict],
        addresses: Mapping[int, Sequence[Mapping[str, Any]]],
        routes: Iterable[Mapping[str, Any]],
        running: Mapping[str, Any],
        nameservers: Iterable[str],
        is_fake_nic: IsFakeNic,
        rules: Iterable[Mapping[str, Any]] = (),
        version: int | None = None,
        changed_between: Callable[[int, int], Collection[int] | None] | None = None,
        networks_changed: Callable[[Mapping, Mapping], Collection[str] | None] | None = None,
    ) -> dict:
        """The report of the state ``version``; ``changed_between(old,
        new)``: the ifindexes whose link or addresses may differ between
        two versions (None: unknown); ``networks_changed(old running, new
        running)``: the networks whose attributes may differ between two
        running configurations (the running store's log; None: unknown, every
        network is compared)."""
        looked_up = rule_tables(rules)
        routes = list(routes)
        with self._lock:
            last = self._last
            changed = None
            if last is not None and None not in (version, last.version, changed_between):
                changed = changed_between(last.version, version)  # type: ignore[misc,arg-type]
            if (
                changed is None
                or last is None
                or len(changed) > max(MANY, len(links) // 4)
                or last.is_fake_nic != is_fake_nic  # a bound method: a new object each time
                or last.looked_up != looked_up
                or (last.running.get("bonds") or {}) != (running.get("bonds") or {})
            ):
                self.full_builds += 1
                report = self._full.build(links.values(), addresses, routes, running,
                                          nameservers, is_fake_nic, rules)  # fmt: skip
                ip = _IpIndex(addresses, routes, looked_up)
                self._last = _Last(links, running, ip, looked_up, is_fake_nic, report)
                self._last.version = version
                return self._record(report, None)
            last.version = version
            try:
                hint = networks_changed(last.running, running) if networks_changed else None
                return self._update(last, links, addresses, routes, running, nameservers, changed,
                                    hint)  # fmt: skip
            except BaseException:
                self._last = None  # half updated: the next build is a full one
                raise

    def _update(self, last: _Last, links: Mapping[int, dict],
                addresses: Mapping[int, Sequence[Mapping[str, Any]]], routes: list,
                running: Mapping[str, Any], nameservers: Iterable[str],
                changed: Collection[int], hint: Collection[str] | None = None) -> dict:  # fmt: skip
        ip = _IpIndex(addresses, routes, last.looked_up)
        dirty = set(changed) | _route_changes(last.ip, ip)
        names: set[str] = set()  # of the devices whose entries change, old and new
        for index in list(dirty):
            old, new = last.links.get(index), links.get(index)
            dirty.update(last.uppers.get(index, ()))  # VLANs on it: their iface
            for link in (old, new):
                if link is not None:
                    names.add(link["name"])
                    if link.get("master"):
                        dirty.add(link["master"])  # its ports
            if old is not new:
                if old is not None:
                    last.drop_link(old)
                if new is not None:
                    last.add_link(new)
        last.links, last.ip = links, ip
        todo = self._running_changes(last, running, hint)
        before, after = last.running.get("networks") or {}, running.get("networks") or {}
        for name in todo:  # their devices lose or gain DHCP marks
            for attrs in (before.get(name), after.get(name)):
                if attrs is not None and (link := last.by_name.get(network_iface(name, attrs))):
                    dirty.add(link["index"])
        last.running = running
        rebuilt: dict[str, tuple[str, dict]] = {}
        for index in dirty | last.bonds:
            link = links.get(index)
            if link is None:
                continue
            names.add(link["name"])
            section, entry = self._entry(link, last, ip, running)
            if section is not None:
                rebuilt[link["name"]] = (section, entry)
        gone = [
            (section, name)
            for name in names
            if (section := last.section_of.get(name)) is not None
            and rebuilt.get(name, ("",))[0] != section  # gone, renamed or not of that kind any more
        ]  # fmt: skip
        for _, name in gone:
            del last.section_of[name]
        written = {section for section, _ in gone} | {s for s, _ in rebuilt.values()}
        for name in last.dynamic:  # _mark_dhcp may mark its top device's entry
            iface = network_iface(name, running["networks"][name])
            written.add(rebuilt[iface][0] if iface in rebuilt else last.section_of.get(iface, ""))
        if running.get("bonds"):  # _mark_missing_nics may mark a bond's entry
            written.add("bondings")
        # a section the change does not write is shared with the last report
        # (read-only); the others are layered over it (the change's entries
        # copied, not the host's: shared.layered)
        sections = {s: _writable(last.report[s]) if s in written else last.report[s]
                    for s in SECTIONS}  # fmt: skip
        for section, name in gone:
            del sections[section][name]
        for name, (section, entry) in rebuilt.items():
            sections[section][name] = entry
            last.section_of[name] = section
        for name in names:
            todo |= last.by_iface.get(name, set()) | last.by_lower.get(name, set())
        networks = self._networks(last, running, todo, ip)
        devices = names | rebuilt.keys()
        for name in last.dynamic:  # marked: the network and its top device
            attrs = running["networks"][name]
            devices.add(network_iface(name, attrs))
        changes: Changes = {section: devices for section in SECTIONS}
        changes["networks"] = todo | last.dynamic.keys()
        _mark_missing_nics({}, sections["bondings"], {"bonds": running.get("bonds") or {}},
                           last.by_name)  # fmt: skip
        _mark_dhcp(list(last.dynamic), networks, sections, running)
        report = {
            "networks": networks,
            **sections,
            "nameservers": list(nameservers),
            "supportsIPv6": last.ipv6 > 0,
        }
        last.report = report
        return self._record(report, changes)

    def _entry(self, link: dict, last: _Last, ip: _IpIndex,
               running: Mapping[str, Any]) -> tuple[str | None, dict]:  # fmt: skip
        """(section, entry) of one device, as ReportBuilder.build makes it."""
        if link.get("kind") == "bond":
            return "bondings", _bond_entry(link, last.members, last.names, ip)
        if link.get("kind") == "team":
            requested = ((running.get("bonds") or {}).get(link["name"]) or {}).get("options", "")
            return "bondings", _team_entry(link, last.members, ip, requested)
        section, entry = _device_entry(link, last.members, last.names, ip, last.is_fake_nic)
        if section == "bridges":
            entry["opts"] = self._full._shared_opts(entry["opts"])
        return section, entry

    @staticmethod
    def _running_changes(
        last: _Last, running: Mapping[str, Any], hint: Collection[str] | None = None
    ) -> set[str]:
        """The networks added, removed or changed since the last report;
        the indexes of networks follow (``last.running`` is still the old).
        ``hint``: the only networks that may differ (the others are not
        looked at: a one-network change on a host of thousands)."""
        old_nets = last.running.get("networks") or {}
        new_nets = running.get("networks") or {}
        if old_nets is new_nets:
            return set()
        if hint is not None:
            todo = {n for n in hint if old_nets.get(n) is not new_nets.get(n)}
            todo = {n for n in todo if n not in old_nets or n not in new_nets
                    or old_nets[n] != new_nets[n]}  # fmt: skip
        else:
            todo = {n for n, a in new_nets.items() if old_nets.get(n) is not a}
            todo = {n for n in todo if n not in old_nets or old_nets[n] != new_nets[n]}
            todo |= old_nets.keys() - new_nets.keys()
        for name in todo:
            if name in old_nets:
                last.drop_network(name, old_nets[name])
            if name in new_nets:
                last.add_network(name, new_nets[name])
        return todo

    @staticmethod
    def _networks(last: _Last, running: Mapping[str, Any], todo: set[str],
                  ip: _IpIndex) -> Mapping[str, dict]:  # fmt: skip
        """The networks, those named ``todo`` built again."""
        new_nets = running.get("networks") or {}
        networks = last.report["networks"]
        if todo or last.dynamic:  # layered only when written: the networks
            networks = _writable(networks)  # changed, DHCP marks (_mark_dhcp)
        fresh: dict[str, dict] = {}
        for name in todo:
            attrs = new_nets.get(name)
            if attrs is None:
                networks.pop(name, None)
            else:
                fresh[name] = _network_entry(name, attrs, last.by_name, last.members, ip)
        mine = {"networks": {n: new_nets[n] for n in fresh}, "bonds": running.get("bonds") or {}}
        _mark_missing_nics(fresh, {}, mine, last.by_name)
        networks.update(fresh)
        return networks


def _writable(section: Mapping[str, dict]) -> dict | Layered:
    """A writable copy of a report's section, layered over it when large:
    the last report's own (read-only, never written again) becomes the base;
    a small one is copied (cheaper than a Layered's copy and reads)."""
    if isinstance(section, Layered) or len(section) <= LAYERED_ABOVE:
        return section.copy()  # type: ignore[attr-defined]
    return Layered(section)  # type: ignore[arg-type]


def _route_changes(old: _IpIndex, new: _IpIndex) -> set[int]:
    """The devices whose gateway or default route changed."""
    out: set[int] = set()
    for family in (4, 6):
        before, after = old.gateways[family], new.gateways[family]
        out |= {i for i in before.keys() | after.keys() if before.get(i) != after.get(i)}
    out |= old.default_oifs[4] ^ new.default_oifs[4]
    return out
