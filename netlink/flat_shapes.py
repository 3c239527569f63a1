"""Address and route messages decoded by their compiled shape.

The same idea as :mod:`netlink.link_shapes` for messages with one level of
attributes: a host's addresses (or routes) of one family send messages of
one shape. The shape of a message (every attribute header, checked) is
compiled into two structs, and a message of the same length whose headers
are the compiled ones is decoded by one ``unpack_from`` as
:func:`netlink.decode._walk_addr` / ``_walk_route`` would decode it. Routes
with several next hops (``RTA_MULTIPATH``) and malformed messages are
always walked.
"""

from __future__ import annotations

import socket
from typing import Any, NamedTuple

from netlink.constants import (
    IFA_ADDRESS,
    IFA_FLAGS,
    IFA_LOCAL,
    IFADDR,
    RTA_DST,
    RTA_GATEWAY,
    RTA_MULTIPATH,
    RTA_OIF,
    RTA_PREFSRC,
    RTA_PRIORITY,
    RTA_TABLE,
    RTMSG,
)
from netlink.link_shapes import Layout, NotCompiled, first


class RouteMsg(NamedTuple):
    route: dict  # as superd.netinfo.route_to_dict
    rtm_flags: int
    tos: int
    src_len: int
    prefsrc: str | None


_new = tuple.__new__  # a RouteMsg without NamedTuple's Python-level __new__


def _ip(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def _address(layout: Layout, span: tuple[int, int] | None) -> int | None:
    """An address's value number; only the sizes the walk decodes without error."""
    if span is not None and span[1] - span[0] not in (4, 16):
        raise NotCompiled
    return layout.raw(span)


class AddrShape:
    """One compiled shape of address message."""

    def __init__(self, data: bytes, offset: int, end: int) -> None:
        layout = Layout(data[offset:end])
        for start, fmt in ((0, "B"), (1, "B"), (2, "B"), (3, "B"), (4, "I")):  # ifaddrmsg
            layout.value(start, 4 if fmt == "I" else 1, fmt)
        a = first(layout.walk(IFADDR.size, end - offset))
        self.address = _address(layout, a.get(IFA_LOCAL) or a.get(IFA_ADDRESS))
        self.flags = layout.fixed(a.get(IFA_FLAGS), 4, "I")
        self.check, self.expected, self.struct, self.values = layout.compile()

    def decode(self, data: bytes, offset: int) -> tuple[int, dict] | None:
        if self.check.unpack_from(data, offset) != self.expected:
            return None
        v = self.values(self.struct.unpack_from(data, offset))
        family = v[0]
        return family, {
            "index": v[4],
            "family": 6 if family == socket.AF_INET6 else 4,
            "address": _ip(v[self.address]) if self.address is not None else "",
            "prefixlen": v[1],
            "flags": v[self.flags] if self.flags is not None else v[2],
            "scope": v[3],
        }


class RouteShape:
    """One compiled shape of route message (one next hop)."""

    def __init__(self, data: bytes, offset: int, end: int) -> None:
        layout = Layout(data[offset:end])
        # rtmsg: family, dst_len, src_len, tos, table, (protocol, scope), type, flags
        for start in (0, 1, 2, 3, 4, 7):
            layout.value(start, 1, "B")
        layout.value(8, 4, "I")
        a = first(layout.walk(RTMSG.size, end - offset))
        if RTA_MULTIPATH in a:
            raise NotCompiled
        self.table = layout.fixed(a.get(RTA_TABLE), 4, "I")
        self.dst = _address(layout, a.get(RTA_DST))
        self.gateway = _address(layout, a.get(RTA_GATEWAY))
        self.oif = layout.fixed(a.get(RTA_OIF), 4, "I")
        self.priority = layout.fixed(a.get(RTA_PRIORITY), 4, "I")
        self.prefsrc = _address(layout, a.get(RTA_PREFSRC))
        self.check, self.expected, self.struct, self.values = layout.compile()

    def decode(self, data: bytes, offset: int) -> tuple[int, RouteMsg] | None:
        if self.check.unpack_from(data, offset) != self.expected:
            return None
        v = self.values(self.struct.unpack_from(data, offset))
        family = v[0]
        route = {
            "family": 6 if family == socket.AF_INET6 else 4,
            "table": v[self.table] if self.table is not None else v[4],
            "type": v[5],
            "dst": _ip(v[self.dst]) if self.dst is not None else None,
            "dst_len": v[1],
            "gateway": _ip(v[self.gateway]) if self.gateway is not None else None,
            "oif": v[self.oif] if self.oif is not None else None,
            "priority": (v[self.priority] if self.priority is not None else None) or 0,
            "nexthops": [],
        }
        prefsrc = _ip(v[self.prefsrc]) if self.prefsrc is not None else None
        return family, _new(RouteMsg, (route, v[6], v[3], v[2], prefsrc))


def _compiled(kind: type) -> Any:
    def compile_shape(data: bytes, offset: int, end: int) -> Any:
        try:
            return kind(data, offset, end)
        except NotCompiled:
            return None

    return compile_shape


compile_addr = _compiled(AddrShape)
compile_route = _compiled(RouteShape)
