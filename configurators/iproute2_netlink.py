"""The pyroute2 edge of the iproute2 configurator: reads, writes, errors.

Everything the iproute2 configurator asks the kernel goes through
:class:`Kernel`: reads come back as plain dicts, and every write is one
netlink request whose failure becomes ``NetError(FAILED_IFUP,
"<device>: <what failed>: <kernel message>")``. Callers compare before they
write, so re-applying a state the kernel already holds sends nothing.

The sysctl and sysfs files (IPv6 autoconf, bonding options pyroute2 cannot
carry) are per network namespace: they are read and written from the
namespace the process runs in, like the netlink socket.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from configurators.iproute2_reads import (
    IFF_UP,
    addresses_of,
    failure,
    is_up,
    link_to_dict,
    raw_addresses,
    raw_routes,
    read_value,
    routes_of,
    rules_of,
)
from netlink import constants, encode, query
from shared import faults
from shared.errors import ErrorCode, NetError
from shared.netmodel.ownership import OWNER_ALIAS

RTNH_F_ONLINK = 0x4
MAIN_TABLE = 254
SCOPE_LINK = 253
ADDRESS_READS = 16  # devices read one by one in a transaction before one dump of all
LINK_READS = 16  # the same for links (a big request: not thousands of round trips)


def _set_up(dev: dict[str, Any], up: bool) -> None:
    dev["flags"] = dev["flags"] | IFF_UP if up else dev["flags"] & ~IFF_UP


class Kernel:
    """Reads as plain dicts, writes with errors mapped to ``NetError``.

    ``raw``: a NETLINK_ROUTE socket in ``ipr``'s namespace for the requests
    :mod:`netlink.encode` encodes and for link reads (decoded by
    :mod:`netlink.decode`), several times cheaper than pyroute2's; None:
    everything through ``ipr``.
    """

    def __init__(self, ipr: Any, raw: socket.socket | None = None) -> None:
        self.ipr = ipr
        self.raw = raw
        # Inside a transaction superd is the only writer of static addresses,
        # so what was read stays exact with our own writes: each device is
        # read once, by a dump of its own addresses (the kernel filters: a
        # one-network change on a host of thousands reads one device), and
        # past ADDRESS_READS devices one dump of all serves the rest (a big
        # request: not thousands of round trips).
        self._addresses: dict[tuple[int, int], list[tuple[str, int]]] | None = None
        self._addresses_of: set[int] = set()  # devices read (with _addresses not None)
        self._all_addresses = False  # one dump of every device's read
        self._caching = False
        # sysctl files this transaction read or wrote (path → value): read
        # again, they would only say the same (superd is the only writer).
        self._sysctls: dict[str, str] = {}
        # Devices read in this transaction, kept in step with our own link
        # writes (by name; their ifindex → name): one read per device.
        self._devs: dict[str, dict[str, Any]] = {}
        self._dev_names: dict[int, str] = {}
        # Past LINK_READS reads, one dump of every link: _devs then holds
        # every device (_all_links) but those created since and not read
        # yet (_unread), and a name in neither does not exist.
        self._link_reads = 0
        self._dumped_links = False
        self._all_links = False
        self._unread: set[str] = set()
        # IPv4 rules, read once per transaction and kept in step with our
        # own rule writes (a thousand source-routed networks: one dump)
        self._rules: list[dict[str, Any]] | None = None
        # route dumps of one table, filtered by the kernel (NETLINK_GET_STRICT_CHK)
        self._strict: socket.socket | None = None

    def close(self) -> None:
        if self._strict is not None:
            self._strict.close()
            self._strict = None

    @property
    def caching(self) -> bool:
        """Whether the per-transaction caches are on (inside a transaction)."""
        return self._caching

    def cache_addresses(self, enabled: bool) -> None:
        """Turn the per-transaction caches on (begin) or off (end)."""
        self._caching = enabled
        self._addresses = None
        self._addresses_of, self._all_addresses = set(), False
        self._rules = None
        self._sysctls = {}
        self.forget_links()
        self._link_reads, self._dumped_links = 0, False

    def _forget(self, method: str, args: tuple, kwargs: dict[str, Any]) -> None:
        """A link write: what we hold may be stale. Setting a device up or
        down changes that device only; so does creating one without a
        master (only the new device is unknown); anything else (a
        deletion, an MTU or a master) can change others too (a bridge
        follows its ports' MTU, a bond sets the NICs it releases down)."""
        if method != "link" or (args and args[0] in ("get", "dump")):
            return
        if args and args[0] == "add" and "master" not in kwargs and kwargs.get("ifname"):
            name = kwargs["ifname"]
            dev = self._devs.pop(name, None)
            if dev is not None:
                self._dev_names.pop(dev["index"], None)
            if self._all_links:
                self._unread.add(name)
            return
        if not self._devs:
            return
        if args and args[0] == "set" and set(kwargs) <= {"index", "ifname", "state", "ifalias"}:
            name = kwargs.get("ifname") or self._dev_names.get(kwargs.get("index", -1))
            self._devs.pop(name, None)
            if name is not None and self._all_links:
                self._unread.add(name)
            return
        self.forget_links()

    def forget_links(self) -> None:
        """Another process changed links (teamd): read them afresh."""
        self._devs, self._dev_names = {}, {}
        self._all_links, self._unread = False, set()

    def created(self, dev: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
        """The link the kernel echoed for its creation (``request(...,
        echo=True)``), held as if read; None when it echoed nothing."""
        if dev is None or dev.get("name") != name:
            return None
        if self._caching:
            self._devs[name], self._dev_names[dev["index"]] = dev, name
            self._unread.discard(name)
        return dev

    def sysctl(self, path: str | Path) -> str | None:
        """A sysctl file's value (:func:`read_value`), read once per transaction."""
        key = os.fspath(path)
        if key in self._sysctls:
            return self._sysctls[key]
        value = read_value(key)
        if value is not None:
            self.wrote(key, value)
        return value

    def wrote(self, path: str | Path, value: str) -> None:
        """``path`` holds ``value`` now (written, or known to be)."""
        if self._caching:
            self._sysctls[os.fspath(path)] = value

    def _holds_addresses(self, index: int) -> bool:
        return self._addresses is not None and (
            self._all_addresses or index in self._addresses_of
        )

    def address_added(self, index: int, family: int, key: tuple[str, int]) -> None:
        if self._holds_addresses(index):
            entry = self._addresses.setdefault((index, family), [])
            if key not in entry:
                entry.append(key)

    def addresses_dropped(self, index: int, family: int) -> None:
        """The device lost every address of ``family`` (IPv6 disabled)."""
        if self._holds_addresses(index):
            self._addresses[(index, family)] = []

    def address_removed(self, index: int, family: int, key: tuple[str, int]) -> None:
        if self._addresses is not None and key in self._addresses.get((index, family), []):
            self._addresses[(index, family)].remove(key)

    # -- requests ---------------------------------------------------------
    def request(
        self,
        device: str,
        what: str,
        method: str,
        *args: Any,
        tolerate: tuple[int, ...] = (),
        echo: bool = False,
        **kwargs: Any,
    ) -> Any:
        """``ipr.<method>(*args, **kwargs)``; an errno in ``tolerate`` (an
        object already gone, say) returns None instead of failing.
        ``echo``: the link the kernel sends back (encoded requests only;
        :func:`netlink.encode.transact`), else None."""
        message = encode.encode(method, args, kwargs) if self.raw is not None else None
        self._forget(method, args, kwargs)
        faults.step(f"{device}: {what}")
        try:
            if message is not None:
                return encode.transact(self.raw, message, echo=echo)
            result = getattr(self.ipr, method)(*args, **kwargs)
            return None if echo else result
        except NetlinkError as exc:
            if exc.code in tolerate:
                return None
            raise failure(device, what, exc) from None
        except OSError as exc:  # from the raw socket
            if exc.errno in tolerate:
                return None
            raise failure(device, what, exc) from None

    # -- links ------------------------------------------------------------
    def device(self, name: str) -> dict[str, Any] | None:
        """``{name, index, kind, mtu, up, master, link, address, data}`` of
        device ``name``, or None when there is none. ``kind`` is the link
        kind (``None`` for a plain NIC), ``master`` the ifindex of its
        bridge or bond, ``link`` the lower device of a VLAN, ``data`` the
        kind's attributes by pyroute2 keyword (``br_stp_state``,
        ``bond_mode``, ``vlan_id`` ...). Inside a transaction the same dict
        comes back for the same device until a link write changes it."""
        if name in self._devs:
            return self._devs[name]
        if self._all_links and name not in self._unread:
            return None  # the dump did not have it, nor did we create it since
        if self._caching and not self._dumped_links and self._link_reads >= LINK_READS:
            self._read_all_links()  # once per transaction: a removal invalidates it
            return self.device(name)
        dev = self._read_device(name)
        if self._caching:
            self._link_reads += 1
            self._unread.discard(name)
            if dev is not None:
                self._devs[name], self._dev_names[dev["index"]] = dev, name
        return dev

    def _read_all_links(self) -> None:
        """One dump for every device read from now on in this transaction."""
        links = self.links()
        self._devs = {dev["name"]: dev for dev in links}
        self._dev_names = {dev["index"]: dev["name"] for dev in links}
        self._all_links, self._unread, self._dumped_links = True, set(), True

    def _read_device(self, name: str) -> dict[str, Any] | None:
        if self.raw is not None:
            try:
                link = query.get_link(self.raw, name=name)
            except OSError as exc:
                raise failure(name, "read link", exc) from None
            return link
        try:
            msgs = self.ipr.link("get", ifname=name)
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                return None
            raise failure(name, "read link", exc) from None
        return link_to_dict(msgs[0]) if msgs else None

    def require(
        self, name: str, code: ErrorCode = ErrorCode.FAILED_IFUP, role: str = "device"
    ) -> dict[str, Any]:
        dev = self.device(name)
        if dev is None:
            raise NetError(code, f"{name}: {role} does not exist")
        return dev

    def links(self) -> list[dict[str, Any]]:
        if self.raw is not None:
            try:
                dumped = query.dump(self.raw, constants.RTM_GETLINK)
                return [m.body for m in dumped if m.family == socket.AF_UNSPEC]
            except OSError as exc:
                raise failure("links", "dump links", exc) from None
        try:
            return [link_to_dict(m) for m in self.ipr.get_links()]
        except NetlinkError as exc:
            raise failure("links", "dump links", exc) from None

    def link_indexes(self) -> dict[str, int]:
        """{name: ifindex} of every link: inside a transaction whose one
        dump (:meth:`device`, past ``LINK_READS``) and own writes account
        for every device, from what is held (a big request: no second dump
        of thousands of links); else from a dump."""
        if self._caching and self._all_links and self._unread <= self._devs.keys():
            return {name: dev["index"] for name, dev in self._devs.items()}
        return {link["name"]: link["index"] for link in self.links()}

    def ports_of(self, index: int) -> list[dict[str, Any]]:
        """The devices enslaved to ifindex ``index`` (bond slaves, bridge ports)."""
        return [link for link in self.links() if link["master"] == index]

    def set_link(self, dev: dict[str, Any], what: str, **changes: Any) -> None:
        self.request(dev["name"], what, "link", "set", index=dev["index"], **changes)
        # Up or down, the alias: what the kernel now holds, known without asking it.
        if "ifalias" in changes:
            dev["alias"] = changes["ifalias"]
        if self._caching and set(changes) <= {"state", "ifalias"}:
            if "state" in changes:
                _set_up(dev, changes["state"] == "up")
            self._devs[dev["name"]], self._dev_names[dev["index"]] = dev, dev["name"]

    # -- ownership (shared.netmodel.ownership) -----------------------------
    def owned(self, dev: dict[str, Any]) -> bool:
        """Whether the device carries netreload's mark."""
        return dev.get("alias") == OWNER_ALIAS

    def mark(self, dev: dict[str, Any]) -> None:
        """Give a device netreload just created its mark (the kernel ignores
        an alias sent with the creation itself). If that fails, the device
        is deleted again: an unmarked device is never netreload's.

        Cheapest while the device is down and in a request of its own: on
        an up device the alias change is a NETDEV_CHANGE whose IPv6 handling
        (``rt6_sync_up``) walks the namespace's whole IPv6 routing table,
        ~0.1–0.2 ms at 1,000 bridges and 1–2 ms at 3,000 against ~10 µs
        down; sent with the up, the kernel walks it twice (the up, then the
        change). benchmarks/README.md, round 8."""
        try:
            self.set_link(dev, "mark as netreload's", ifalias=OWNER_ALIAS)
        except NetError:
            self.delete_link(dev)
            raise

    def ensure_mtu(self, dev: dict[str, Any], mtu: int) -> None:
        if dev["mtu"] != mtu:
            self.set_link(dev, f"set mtu {mtu}", mtu=mtu)
            dev["mtu"] = mtu

    def ensure_up(self, dev: dict[str, Any]) -> None:
        if not is_up(dev):
            self.set_link(dev, "set up", state="up")
            _set_up(dev, True)

    def ensure_down(self, dev: dict[str, Any]) -> None:
        if is_up(dev):
            self.set_link(dev, "set down", state="down")
            _set_up(dev, False)

    def delete_link(self, dev: dict[str, Any]) -> None:
        self.request(
            dev["name"], "delete", "link", "del", index=dev["index"], tolerate=(errno.ENODEV,)
        )

    # -- addresses, routes, rules -----------------------------------------
    def addresses(self, index: int, family: int) -> list[tuple[str, int]]:
        """(address, prefixlen) of the device's addresses of ``family``;
        IPv6 ones with global scope only (not link-local)."""
        if self._caching:
            if self._addresses is None:
                self._addresses = {}
            if not self._holds_addresses(index):
                if len(self._addresses_of) < ADDRESS_READS:
                    self._addresses.update(self._read_addresses(index))
                    self._addresses_of.add(index)
                else:
                    held = self._addresses
                    self._addresses = self._read_addresses()
                    for (device, _), _keys in held.items():  # ours: as exact, and newer
                        for fam in (socket.AF_INET, socket.AF_INET6):
                            self._addresses[(device, fam)] = held.get((device, fam), [])
                    self._all_addresses = True
            return list(self._addresses.get((index, family), []))
        return self._read_addresses(index, family).get((index, family), [])

    def _read_addresses(
        self, index: int | None = None, family: int = socket.AF_UNSPEC
    ) -> dict[tuple[int, int], list[tuple[str, int]]]:
        if self.raw is not None:
            return raw_addresses(self._strict_socket(), index, family)
        filters = {} if index is None else {"index": index}
        try:
            msgs = self.ipr.get_addr(family=family, **filters)
        except NetlinkError as exc:
            raise failure(str(index), "read addresses", exc) from None
        return addresses_of(msgs)

    def routes(self, family: int, table: int) -> list[dict[str, Any]]:
        """Unicast routes of ``table`` as ``{dst, dst_len, gateway, oif,
        priority, prefsrc}``."""
        if self.raw is not None:
            return raw_routes(self._strict_socket(), family, table)
        try:
            msgs = self.ipr.route("dump", family=family, table=table)
        except NetlinkError as exc:
            raise failure(f"table {table}", "read routes", exc) from None
        return routes_of(msgs, table)

    def _strict_socket(self) -> socket.socket:
        if self._strict is None:
            self._strict = query.strict(socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))
        return self._strict

    def rules(self, family: int) -> list[dict[str, Any]]:
        """Policy rules as ``{src, src_len, dst, dst_len, table, priority}``
        (IPv4 ones read once per transaction)."""
        if self._caching and family == socket.AF_INET and self._rules is not None:
            return list(self._rules)
        try:
            msgs = self.ipr.get_rules(family=family)
        except NetlinkError as exc:
            raise failure("rules", "read rules", exc) from None
        rules = rules_of(msgs)
        if self._caching and family == socket.AF_INET:
            self._rules = rules
        return list(rules)

    def rules_changed(self) -> None:
        """Someone else (a DHCP client's hook) may have written rules."""
        self._rules = None

    def rule_added(self, rule: dict[str, Any]) -> None:
        """Our write: the cached rules (if any) say so without a dump."""
        if self._rules is not None:
            self._rules.append(rule)

    def rule_removed(self, rule: dict[str, Any]) -> None:
        if self._rules is not None and rule in self._rules:
            self._rules.remove(rule)
