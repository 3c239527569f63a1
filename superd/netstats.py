"""``Host.getNetworkStatistics``: every device's counters and state, in the
production agent's shape and types.

The report (``HostNetworkStatistics`` of its API schema)::

    {"network": {"<device>": {"name": str, "state": "up" | "down",
                              "rx": str, "tx": str,            # bytes in total
                              "rxDropped": str, "txDropped": str,
                              "rxErrors": str, "txErrors": str,
                              "speed": str,                    # Mb/s, "1000" when unknown
                              "duplex": "full" | "half" | "unknown",
                              "sampleTime": float},            # seconds since the epoch
                 …},
     "rxDropped": str, "txDropped": str}                       # over all devices

Counters are decimal strings (the engine parses them into big integers),
``sampleTime`` a float (the engine divides counter deltas by it for its
rates), ``state`` is "up" when the device is up and running. The agent's
own code sends the two totals as numbers, and swapped; here they are
strings as its schema says, each the sum of its own kind.

Devices, state, kinds, masters and bond modes come from the live netinfo's
link cache; the counters from one RTM_GETSTATS dump per call, asking the
kernel for IFLA_STATS_LINK_64 only (about 200 bytes a device, no other
attribute): the kernel sends no notification when a counter moves, so
counters kept from the last link message would be stale and the engine's
rates wrong. Speed and duplex are sysfs' (``/sys/class/net/<dev>/speed``,
``duplex``): speed read for NICs and, through them, for bonds and VLANs.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

from netlink import query
from netlink.constants import RTM_GETLINK, RTM_GETSTATS
from shared.netinfo_report import IsFakeNic, is_nic
from shared.netmodel.names import IFNAMSIZ_MAX

IFF_UP, IFF_LOOPBACK, IFF_RUNNING = 0x1, 0x8, 0x40
DEFAULT_SPEED = 1000  # what the agent reports when a device's speed is unknown
BAD_SPEEDS = (2**16 - 1, 2**32 - 1)  # sysfs' "unknown"
ACTIVE_BACKUP, BROADCAST = 1, 3  # bond modes
SYS_CLASS_NET = Path("/sys/class/net")

ReadSysfs = Callable[[str, str], str | None]


class Counters(NamedTuple):
    rx: int = 0
    tx: int = 0
    rx_dropped: int = 0
    tx_dropped: int = 0
    rx_errors: int = 0
    tx_errors: int = 0


def dump_counters(sock: socket.socket) -> dict[int, Counters]:
    """Every device's 64-bit counters by ifindex: one RTM_GETSTATS dump on
    ``sock`` (a NETLINK_ROUTE socket used for nothing else meanwhile)."""
    found: dict[int, Counters] = {}
    for msg in query.dump(sock, RTM_GETSTATS):
        stats = msg.body
        if "rx" in stats:
            found[stats["index"]] = Counters(
                stats["rx"], stats["tx"], stats["rx_dropped"], stats["tx_dropped"],
                stats["rx_errors"], stats["tx_errors"],
            )  # fmt: skip
    return found


def collect(links: Iterable[Mapping] | None, is_fake_nic: IsFakeNic, sock: socket.socket) -> dict:
    """The report: counters dumped on ``sock`` now, devices from ``links``
    (the live netinfo's cache) or, without it, from a link dump too."""
    if links is None:
        links = [msg.body for msg in query.dump(sock, RTM_GETLINK)]
    return statistics(links, dump_counters(sock), is_fake_nic)


def read_sysfs(device: str, attribute: str) -> str | None:
    """``/sys/class/net/<device>/<attribute>``, None if it cannot be read
    (a device without it, or down: the kernel answers EINVAL)."""
    if not device or len(device) > IFNAMSIZ_MAX or "/" in device or device in (".", ".."):
        return None  # kernel names never are; a path must not be built from one
    try:
        return (SYS_CLASS_NET / device / attribute).read_text().strip()
    except (OSError, ValueError):
        return None


def _duplex(link: Mapping, sysfs: ReadSysfs) -> str:
    """sysfs' duplex; not read where the kernel answers EINVAL anyway (a
    device that is down, the loopback, a bridge), which the agent reports as
    unknown: on a host of a thousand bridges those reads cost ~150 ms."""
    flags = int(link.get("flags") or 0)
    if not flags & IFF_UP or flags & IFF_LOOPBACK or link.get("kind") == "bridge":
        return "unknown"
    return sysfs(link["name"], "duplex") or "unknown"


def running(link: Mapping) -> bool:
    flags = int(link.get("flags") or 0)
    return bool(flags & IFF_UP and flags & IFF_RUNNING)


class _Speeds:
    """Mb/s per device as the agent computes it: a NIC's own (when up and
    running), a bond's from its slaves and mode, a VLAN's from the device
    under it; 0 for the rest and when unknown."""

    def __init__(self, links: Mapping[int, Mapping], is_fake_nic: IsFakeNic, sysfs: ReadSysfs):
        self.links, self.is_fake_nic, self.sysfs = links, is_fake_nic, sysfs

    def of(self, link: Mapping) -> int:
        if link.get("kind") == "bond":
            return self._bond(link)
        if link.get("kind") == "vlan":
            lower = self.links.get(link.get("link") or -1)
            if lower is not None and lower.get("kind") == "bond":
                return self._bond(lower)
            return self._nic(lower) if lower is not None and self._is_nic(lower) else 0
        return self._nic(link) if self._is_nic(link) else 0

    def _is_nic(self, link: Mapping) -> bool:
        return link.get("kind") != "bond" and is_nic(link, self.is_fake_nic)

    def _nic(self, link: Mapping) -> int:
        if not running(link):
            return 0
        text = self.sysfs(link["name"], "speed")
        try:
            speed = int(text or 0)
        except ValueError:
            return 0
        return 0 if speed <= 0 or speed in BAD_SPEEDS else speed

    def _bond(self, bond: Mapping) -> int:
        slaves = [
            link for link in self.links.values()
            if link.get("master") == bond.get("index") and self._is_nic(link)
        ]  # fmt: skip
        info = bond.get("info") or {}
        mode = info.get("mode", 0)
        if not slaves:
            return 0
        if mode == ACTIVE_BACKUP:
            active = self.links.get(info.get("active_slave") or -1)
            return self._nic(active) if active is not None else 0
        speeds = [self._nic(slave) for slave in slaves]
        return min(speeds) if mode == BROADCAST else sum(speeds)


def statistics(
    links: Iterable[Mapping],
    counters: Mapping[int, Counters],
    is_fake_nic: IsFakeNic,
    sysfs: ReadSysfs = read_sysfs,
    now: float | None = None,
) -> dict:
    """The report (see the module's docstring) of ``links`` (netinfo's link
    dicts) with ``counters`` by ifindex; a device without counters counts 0."""
    by_index = {int(link["index"]): link for link in links}
    speeds = _Speeds(by_index, is_fake_nic, sysfs)
    sample_time = float(time.time() if now is None else now)
    network: dict[str, dict] = {}
    rx_dropped = tx_dropped = 0
    for index, link in sorted(by_index.items()):
        name = link.get("name")
        if not name:
            continue
        count = counters.get(index, Counters())
        rx_dropped += count.rx_dropped
        tx_dropped += count.tx_dropped
        network[name] = {
            "name": name,
            "state": "up" if running(link) else "down",
            "rx": str(count.rx),
            "tx": str(count.tx),
            "rxDropped": str(count.rx_dropped),
            "txDropped": str(count.tx_dropped),
            "rxErrors": str(count.rx_errors),
            "txErrors": str(count.tx_errors),
            "speed": str(speeds.of(link) or DEFAULT_SPEED),
            "duplex": _duplex(link, sysfs),
            "sampleTime": sample_time,
        }
    return {"network": network, "rxDropped": str(rx_dropped), "txDropped": str(tx_dropped)}
