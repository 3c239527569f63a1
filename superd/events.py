"""Network events: what changed on the host, as plain data, and what to do.

Pure (no I/O): the monitor hands over two consecutive live-netinfo states
(:class:`superd.netstate.NetState`) and the hotplug watcher hands over
uevents; this module turns them into event dicts and decides, from the
configured policy, which are reported and which call for an action.

An event is ``{"kind": …, "device": …, …}``:

===================  ======================================================
kind                 when, and what else it carries
===================  ======================================================
``nic_added``        a NIC appeared (hotplug, or moved into the namespace):
                     ``ifindex``; ``networks`` / ``bonds`` of the running
                     configuration that name it
``nic_removed``      a NIC disappeared: ``networks`` / ``bonds`` it carried
``admin_up``         a device was set up (IFF_UP): ``networks`` / ``bonds``
                     whose device it is
``admin_down``       … set down
``link_up``          an administratively up device got its carrier
                     (IFF_LOWER_UP): ``networks`` / ``bonds``
``link_down``        … lost it (cable, peer, switch port)
``address_added``    ``address`` (``a.b.c.d/len`` or IPv6), not link-local
``address_removed``  the same, removed
``device_removed``   a network's own device (bridge, VLAN, bond) vanished
                     behind netreload's back: ``networks``
===================  ======================================================

Loopback is never reported. Changes netreload makes itself are not events:
superd pauses the differ during its transactions and rebases it afterwards
(the engine gets one ``|net|host_conn|no_id`` for the whole request).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.errors import ErrorCode, NetError
from shared.netinfo_report import is_nic, southbound_iface

IFF_UP, IFF_LOOPBACK, IFF_LOWER_UP = 0x1, 0x8, 0x10000

KINDS = (
    "nic_added",
    "nic_removed",
    "admin_up",
    "admin_down",
    "link_up",
    "link_down",
    "address_added",
    "address_removed",
    "device_removed",
)
# What an event may call for, per kind. ``report``: to subscribers (frontd →
# STOMP ``|net|host_conn|no_id``, ``netreload events``); ``ignore``: not even
# that; ``restore``: report, then rebuild the running networks the NIC
# carried (their bridge lost the port when the NIC went away), or enslave it
# to its bond again.
ACTIONS: dict[str, tuple[str, ...]] = {kind: ("report", "ignore") for kind in KINDS}
ACTIONS["nic_added"] = ("report", "ignore", "restore")
DEFAULT_POLICY: dict[str, str] = dict.fromkeys(KINDS, "report")

IsFakeNic = Callable[[str], bool]


def parse_policy(section: Mapping[str, str]) -> dict[str, str]:
    """The ``[events]`` section of the configuration: ``KIND = ACTION``."""
    policy = dict(DEFAULT_POLICY)
    for kind, action in section.items():
        if kind not in ACTIONS:
            raise NetError(
                ErrorCode.BAD_PARAMS,
                f"configuration: [events] {kind!r} is not an event kind ({', '.join(KINDS)})",
            )
        action = action.strip()
        if action not in ACTIONS[kind]:
            raise NetError(
                ErrorCode.BAD_PARAMS,
                f"configuration: [events] {kind} = {action!r}, "
                f"expected one of {', '.join(ACTIONS[kind])}",
            )
        policy[kind] = action
    return policy


def link_state_events(name: str, old_flags: int, new_flags: int) -> list[dict[str, Any]]:
    """Admin state first; carrier only while the device stays up (setting a
    device down drops its carrier too: that is one event, admin_down)."""
    was_up, is_up = bool(old_flags & IFF_UP), bool(new_flags & IFF_UP)
    if was_up != is_up:
        return [{"kind": "admin_up" if is_up else "admin_down", "device": name}]
    had, has = bool(old_flags & IFF_LOWER_UP), bool(new_flags & IFF_LOWER_UP)
    if is_up and had != has:
        return [{"kind": "link_up" if has else "link_down", "device": name}]
    return []


def _addresses(addrs: Iterable[Mapping[str, Any]]) -> set[str]:
    out = set()
    for addr in addrs:
        if addr["family"] == 6 and ipaddress.IPv6Address(addr["address"]).is_link_local:
            continue  # every device up has one: noise
        out.add(f"{addr['address']}/{addr['prefixlen']}")
    return out


@dataclass(frozen=True)
class Usage:
    """Who in the running configuration uses a device name."""

    networks: tuple[str, ...] = ()
    bonds: tuple[str, ...] = ()

    def as_fields(self) -> dict[str, list[str]]:
        return {"networks": list(self.networks), "bonds": list(self.bonds)}


def usage(device: str, running: Mapping[str, Any]) -> Usage:
    """Networks and bonds of ``running`` built on ``device`` (as their NIC,
    bond, VLAN device or own bridge), bonds that enslave it, and networks on
    those bonds."""
    networks, bonds = set(), set()
    for bond, attrs in running.get("bonds", {}).items():
        if device == bond or device in attrs.get("nics", ()):
            bonds.add(bond)
    for net, attrs in running.get("networks", {}).items():
        lower = attrs.get("nic") or attrs.get("bonding")
        devices = {lower, southbound_iface(attrs)}
        if attrs.get("bridged", True):
            devices.add(net)
        if device in devices or attrs.get("bonding") in bonds:
            networks.add(net)
    return Usage(tuple(sorted(networks)), tuple(sorted(bonds)))


def state_events(
    old_links: Mapping[int, Mapping[str, Any]],
    old_addrs: Mapping[int, Iterable[Mapping[str, Any]]],
    new_links: Mapping[int, Mapping[str, Any]],
    new_addrs: Mapping[int, Iterable[Mapping[str, Any]]],
    is_fake_nic: IsFakeNic,
    nic_presence: bool = True,
    touched: Iterable[int] | None = None,
) -> list[dict[str, Any]]:
    """Events between two states, in ifindex order, before :func:`with_usage`.
    ``nic_presence``: report NICs appearing and vanishing (False when uevents
    report them). ``touched``: the ifindexes that may differ between them
    (the live netinfo knows; None: any, every device is compared)."""
    events: list[dict[str, Any]] = []
    indexes = set(old_links) | set(new_links) if touched is None else touched
    for index in sorted(indexes):
        old, new = old_links.get(index), new_links.get(index)
        if old is new and old_addrs.get(index) is new_addrs.get(index):
            continue  # a state copies what did not change: same objects
        link = new if new is not None else old
        assert link is not None
        if link.get("flags", 0) & IFF_LOOPBACK:
            continue
        name = link["name"]
        if old is None or new is None:
            if is_nic(link, is_fake_nic):
                if nic_presence:
                    events.append(nic_event(name, index, added=new is not None))
            elif new is None:
                events.append({"kind": "device_removed", "device": name})
            if new is None:
                continue
        else:
            events += link_state_events(name, old.get("flags", 0), new.get("flags", 0))
        before = _addresses(old_addrs.get(index, ())) if old is not None else set()
        after = _addresses(new_addrs.get(index, ()))
        for cidr in sorted(after - before):
            events.append({"kind": "address_added", "device": name, "address": cidr})
        for cidr in sorted(before - after):
            events.append({"kind": "address_removed", "device": name, "address": cidr})
    return events


def nic_event(name: str, ifindex: int | None, added: bool) -> dict[str, Any]:
    event: dict[str, Any] = {"kind": "nic_added" if added else "nic_removed", "device": name}
    if ifindex is not None:
        event["ifindex"] = ifindex
    return event


_WITH_USAGE = frozenset(
    {"nic_added", "nic_removed", "admin_up", "admin_down", "link_up", "link_down",
     "device_removed"}
)  # fmt: skip


def with_usage(events: Iterable[dict[str, Any]], running: Mapping[str, Any]) -> list[dict]:
    """Name the running networks and bonds each device event concerns; drop
    the removal of a device no network used (not netreload's business)."""
    out = []
    for event in events:
        if event["kind"] in _WITH_USAGE:
            used = usage(event["device"], running)
            if event["kind"] == "device_removed" and not (used.networks or used.bonds):
                continue
            event = {**event, **used.as_fields()}
        out.append(event)
    return out


def reported(events: Iterable[dict[str, Any]], policy: Mapping[str, str]) -> list[dict]:
    return [e for e in events if policy.get(e["kind"], "report") != "ignore"]


def restore_targets(events: Iterable[dict[str, Any]], policy: Mapping[str, str]) -> set[str]:
    """What a NIC that came back calls for, when the policy says ``restore``:
    the networks directly on it (their bridge lost it as a port, their VLAN
    device went with it), or the bonds that enslave it. The kernel releases
    a vanishing NIC from its bond and does not enslave it again when it
    returns; the bond was kept, with its other NICs and its networks, so
    the bond alone is named (network and bond names: ``superd.repair`` tells
    them apart by the running configuration)."""
    targets: set[str] = set()
    if policy.get("nic_added") != "restore":
        return targets
    for event in events:
        if event["kind"] == "nic_added":
            targets.update(event.get("bonds") or event.get("networks", ()))
    return targets
