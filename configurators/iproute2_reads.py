"""What the iproute2 configurator reads from the kernel, as plain dicts, and
how a failed request or file access becomes a ``NetError``.

Pure translations of netlink messages (pyroute2's or :mod:`netlink.query`'s)
and the sysctl/sysfs file access of the current namespace; the caching
around them is :class:`configurators.iproute2_netlink.Kernel`'s.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from netlink import constants, query
from shared import faults
from shared.errors import ErrorCode, NetError

IFF_UP = 0x1
SCOPE_UNIVERSE = 0
_SCALAR = (int, str, bool)
# errnos of an object already gone: address, route, rule, device
GONE = (errno.EADDRNOTAVAIL, errno.ESRCH, errno.ENOENT, errno.ENODEV)

Addresses = dict[tuple[int, int], list[tuple[str, int]]]  # (ifindex, family) → (address, prefixlen)


def kernel_message(exc: BaseException) -> str:
    """The kernel's text for a failed request (``strerror`` of its errno)."""
    if isinstance(exc, NetlinkError):
        return str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def failure(device: str, what: str, exc: BaseException) -> NetError:
    return NetError(ErrorCode.FAILED_IFUP, f"{device}: {what}: {kernel_message(exc)}")


# -- links -------------------------------------------------------------------


def _linkinfo_data(data: Any) -> dict[str, Any]:
    """``IFLA_INFO_DATA`` as ``{"bond_mode": 1, "br_stp_state": 0, ...}``:
    the pyroute2 keyword of each attribute, scalars and lists of scalars."""
    out: dict[str, Any] = {}
    if data is None or isinstance(data, (str, bytes)):
        return out
    for name, value in data.get("attrs", ()):
        if not name.startswith("IFLA_") or name in out:
            continue
        if isinstance(value, _SCALAR):
            out[name[len("IFLA_") :].lower()] = value
        elif isinstance(value, (list, tuple)) and all(isinstance(v, _SCALAR) for v in value):
            out[name[len("IFLA_") :].lower()] = list(value)
    return out


def link_to_dict(msg: Any) -> dict[str, Any]:
    """One RTM_NEWLINK message (pyroute2's) as a plain dict, in the shape
    :func:`netlink.decode.decode_link` gives and live netinfo keeps (the
    keys the configurator reads: name, index, kind, mtu, flags, master,
    link, address, alias, info)."""
    info = msg.get("IFLA_LINKINFO")
    kind = info.get("IFLA_INFO_KIND") if info is not None else None
    data = info.get("IFLA_INFO_DATA") if info is not None else None
    master = msg.get("IFLA_MASTER")
    return {
        "name": msg.get("IFLA_IFNAME"),
        "index": msg["index"],
        "kind": kind,
        "mtu": msg.get("IFLA_MTU"),
        "flags": int(msg["flags"]),
        "master": master or None,
        "link": msg.get("IFLA_LINK"),
        "address": msg.get("IFLA_ADDRESS") or "",
        "alias": msg.get("IFLA_IFALIAS") or None,
        "info": _linkinfo_data(data),
    }


def is_up(dev: dict[str, Any]) -> bool:
    """Whether a link (either producer's dict) is administratively up."""
    return bool(dev["flags"] & IFF_UP)


# -- addresses, routes, rules -------------------------------------------------


def addresses_of(msgs: Iterable[Any]) -> Addresses:
    """pyroute2's RTM_NEWADDR messages by device and family; IPv6 ones
    with global scope only (not link-local)."""
    found: Addresses = {}
    for m in msgs:
        if m["family"] == socket.AF_INET6 and m["scope"] != SCOPE_UNIVERSE:
            continue
        key = (m.get("IFA_LOCAL") or m.get("IFA_ADDRESS"), m["prefixlen"])
        found.setdefault((m["index"], m["family"]), []).append(key)
    return found


def raw_addresses(strict: socket.socket, index: int | None, family: int) -> Addresses:
    """:func:`addresses_of` through a strict raw socket: with ``index``,
    the kernel sends that device's addresses only. Every family asked for
    has an entry for ``index`` (empty: none)."""
    families = (socket.AF_INET, socket.AF_INET6) if family == socket.AF_UNSPEC else (family,)
    found: Addresses = {}
    if index is not None:
        found.update({(index, fam): [] for fam in families})
    try:
        dumped = list(query.dump(strict, constants.RTM_GETADDR, family, index=index))
    except OSError as exc:
        raise failure(str(index), "read addresses", exc) from None
    for msg in dumped:
        addr = msg.body
        fam = socket.AF_INET6 if addr["family"] == 6 else socket.AF_INET
        if index is not None and addr["index"] != index or fam not in families:
            continue  # a kernel that does not filter
        if fam == socket.AF_INET6 and addr["scope"] != SCOPE_UNIVERSE:
            continue
        found.setdefault((addr["index"], fam), []).append((addr["address"], addr["prefixlen"]))
    return found


def routes_of(msgs: Iterable[Any], table: int) -> list[dict[str, Any]]:
    """pyroute2's RTM_NEWROUTE messages of ``table``, unicast only, as
    ``{dst, dst_len, gateway, oif, priority, prefsrc}``."""
    out = []
    for m in msgs:
        if (m.get("RTA_TABLE") or m["table"]) != table or m["type"] != 1:
            continue
        out.append({
            "dst": m.get("RTA_DST"),
            "dst_len": m["dst_len"],
            "gateway": m.get("RTA_GATEWAY"),
            "oif": m.get("RTA_OIF"),
            "priority": m.get("RTA_PRIORITY") or 0,
            "prefsrc": m.get("RTA_PREFSRC"),
        })  # fmt: skip
    return out


def raw_routes(strict: socket.socket, family: int, table: int) -> list[dict[str, Any]]:
    """:func:`routes_of` through a strict raw socket: the kernel sends that
    table only (pyroute2 would read every table and filter)."""
    try:
        dumped = list(query.dump(strict, constants.RTM_GETROUTE, family, table=table))
    except OSError as exc:
        raise failure(f"table {table}", "read routes", exc) from None
    out = []
    for msg in dumped:
        route = msg.body.route
        if route["table"] != table or route["type"] != 1:
            continue
        out.append({
            "dst": route["dst"],
            "dst_len": route["dst_len"],
            "gateway": route["gateway"],
            "oif": route["oif"],
            "priority": route["priority"],
            "prefsrc": msg.body.prefsrc,
        })  # fmt: skip
    return out


def rules_of(msgs: Iterable[Any]) -> list[dict[str, Any]]:
    """pyroute2's RTM_NEWRULE messages as ``{src, src_len, dst, dst_len,
    table, priority}``."""
    return [
        {
            "src": m.get("FRA_SRC"),
            "src_len": m["src_len"],
            "dst": m.get("FRA_DST"),
            "dst_len": m["dst_len"],
            "table": m.get("FRA_TABLE") or m["table"],
            "priority": m.get("FRA_PRIORITY") or 0,
        }
        for m in msgs
    ]


# -- files of the current namespace (sysctl, sysfs) ---------------------------


def read_value(path: str | Path) -> str | None:
    """The stripped text of a sysctl/sysfs file, None if it does not exist.
    (Plain ``open``: a big request reads and writes thousands of them, and
    pathlib's text layer costs several times the kernel's work.)"""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise failure(os.path.basename(os.path.dirname(path)), f"read {path}", exc) from None
    return data.decode("ascii", errors="replace").strip()


def write_value(device: str, path: str | Path, value: str) -> None:
    faults.step(f"{device}: write {value} to {path}")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, f"{value}\n".encode("ascii"))
        finally:
            os.close(fd)
    except OSError as exc:
        raise failure(device, f"write {value} to {path}", exc) from None
