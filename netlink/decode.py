"""rtnetlink messages straight from bytes into netinfo's plain dicts.

The live netinfo decodes every link, address and route notification and
dump; pyroute2 builds a full object per message and attribute, which at a
thousand devices costs seconds. This decoder reads only what the report
uses, with :mod:`struct`, and yields the same dicts as
:func:`superd.netinfo.link_to_dict`, :func:`addr_to_dict` and
:func:`route_to_dict` (a functional test compares the two on a live
namespace). Linkinfo data of bridges, bonds and VLANs is decoded by the
attribute tables pyroute2 declares, so both agree on names and types.
A link message of a shape already seen (same length, attributes, kind) is
decoded by that shape's compiled struct (:mod:`netlink.link_shapes`).

:mod:`netlink.query` sends the requests (a dump, one link) on a raw
NETLINK_ROUTE socket and decodes the answers with :func:`messages`.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.ifinfmsg.plugins.bond import bond as bond_nla
from pyroute2.netlink.rtnl.ifinfmsg.plugins.vlan import vlan as vlan_nla

from netlink.constants import (
    AD_INFO_AGGREGATOR,
    AD_INFO_PARTNER_MAC,
    ADDRESS,
    AF_SPEC,
    BE16,
    BE32,
    BOND_AD_INFO,
    BOND_SLAVE,
    DEVCONF,
    FIBRULE,
    FRA_DST,
    FRA_IIFNAME,
    FRA_OIFNAME,
    FRA_PRIORITY,
    FRA_SRC,
    FRA_TABLE,
    IF_STATS_MSG,
    IFA_ADDRESS,
    IFA_FLAGS,
    IFA_LOCAL,
    IFADDR,
    IFALIAS,
    IFINFO,
    IFLA_STATS_LINK_64,
    IFNAME,
    INET6_CONF,
    INFO_DATA,
    INFO_KIND,
    INFO_SLAVE_DATA,
    INFO_SLAVE_KIND,
    LINK,
    LINK_NETNSID,
    LINKINFO,
    MASTER,
    MTU,
    NLA,
    NLA_TYPE_MASK,
    NLMSG,
    NLMSG_DONE,
    NLMSG_ERROR,
    OPERSTATE,
    OPERSTATES,
    PARENT_DEV_NAME,
    PERM_ADDRESS,
    RT_TABLE_LOCAL,
    RTA_DST,
    RTA_GATEWAY,
    RTA_MULTIPATH,
    RTA_OIF,
    RTA_PREFSRC,
    RTA_PRIORITY,
    RTA_TABLE,
    RTM_DELADDR,
    RTM_DELLINK,
    RTM_DELROUTE,
    RTM_DELRULE,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWQDISC,
    RTM_NEWROUTE,
    RTM_NEWRULE,
    RTM_NEWSTATS,
    RTMSG,
    RTNH,
    S32,
    STATS64,
    TCA_KIND,
    TCMSG,
    U8,
    U16,
    U32,
    U64,
)
from netlink.flat_shapes import RouteMsg, compile_addr, compile_route
from netlink.link_shapes import ShapeCache, compile_link
from shared.caches import forget_me


class Message(NamedTuple):
    type: int  # RTM_NEWLINK …
    flags: int  # nlmsg_flags
    seq: int
    family: int
    body: Any  # link dict, address dict, RouteMsg; or the errno of an NLMSG_ERROR


def _attrs(data: bytes, start: int, end: int) -> dict[int, tuple[int, int]]:
    """attribute type → (start, end) of its payload; the first one wins."""
    out: dict[int, tuple[int, int]] = {}
    unpack, mask = _NLA_UNPACK, NLA_TYPE_MASK  # locals: the hottest loop of a dump
    while start + 4 <= end:
        length, kind = unpack(data, start)
        if length < 4:
            break
        kind &= mask
        if kind not in out:
            out[kind] = (start + 4, start + length)
        start += (length + 3) & ~3
    return out


_NLA_UNPACK = NLA.unpack_from


def _asciiz(data: bytes, span: tuple[int, int]) -> str:
    raw = data[span[0] : span[1]]
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def _hex(data: bytes, span: tuple[int, int]) -> str:
    return data[span[0] : span[1]].hex(":")


def _ip(data: bytes, span: tuple[int, int]) -> str:
    raw = data[span[0] : span[1]]
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw)
    return socket.inet_ntop(socket.AF_INET6, raw)


def _u32(data: bytes, span: tuple[int, int] | None) -> int | None:
    return U32.unpack_from(data, span[0])[0] if span else None


def _ip_list(data: bytes, span: tuple[int, int]) -> list[str]:
    return [_ip(data, inner) for inner in _all_attrs(data, *span)]


def _all_attrs(data: bytes, start: int, end: int) -> Iterator[tuple[int, int]]:
    while start + 4 <= end:
        length, _ = NLA.unpack_from(data, start)
        if length < 4:
            return
        yield start + 4, start + length
        start += (length + 3) & ~3


_SCALARS: dict[str, Callable[[bytes, tuple[int, int]], Any]] = {
    "uint8": lambda d, s: U8.unpack_from(d, s[0])[0],
    "uint16": lambda d, s: U16.unpack_from(d, s[0])[0],
    "uint32": lambda d, s: U32.unpack_from(d, s[0])[0],
    "uint64": lambda d, s: U64.unpack_from(d, s[0])[0],
    "int32": lambda d, s: S32.unpack_from(d, s[0])[0],
    "be16": lambda d, s: BE16.unpack_from(d, s[0])[0],
    "be32": lambda d, s: BE32.unpack_from(d, s[0])[0],
    "asciiz": _asciiz,
    "l2addr": _hex,
    "hex": _hex,
    "ipaddr": _ip,
    "*ipaddr": _ip_list,
    "flag": lambda d, s: True,
}
# Linkinfo data never reported: changing timers (``*_TIMER``, by name) and
# ids decoded as structs. superd.netinfo's pyroute2 path skips the same.
INFO_SKIPPED = frozenset({"IFLA_BR_BRIDGE_ID", "IFLA_BR_ROOT_ID", "IFLA_BR_MULTI_BOOLOPT",
                          "IFLA_BOND_AD_INFO"})  # fmt: skip


# Fixed-size integers are unpacked in place (no call per attribute: a
# bridge's linkinfo has some forty of them, a dump of a thousand bridges
# decodes them all).
_UNPACKERS: dict[str, Callable[[bytes, int], tuple]] = {
    "uint8": U8.unpack_from,
    "uint16": U16.unpack_from,
    "uint32": U32.unpack_from,
    "uint64": U64.unpack_from,
    "int32": S32.unpack_from,
    "be16": BE16.unpack_from,
    "be32": BE32.unpack_from,
}


def _info_table(nla_map: tuple) -> dict[int, tuple[str, Callable, bool]]:
    """code → (key, decoder, whether the decoder is a struct's unpack_from)."""
    table = {}
    for code, entry in enumerate(nla_map):
        if isinstance(entry[0], int):
            code, entry = entry[0], entry[1:]
        name, kind = entry[0], entry[1]
        if name in INFO_SKIPPED or name.endswith("_TIMER") or kind not in _SCALARS:
            continue
        key = name[len("IFLA_") :].lower()
        if kind in _UNPACKERS:
            table[code] = (key, _UNPACKERS[kind], True)
        else:
            table[code] = (key, _SCALARS[kind], False)
    return table


_INFO_TABLES = {
    "bridge": _info_table(ifinfmsg.ifinfo.bridge_data.nla_map),
    "bond": _info_table(bond_nla.nla_map),
    "vlan": _info_table(vlan_nla.nla_map),
}


# Equal linkinfo data (a thousand bridges configured alike) is one dict:
# readers treat decoded messages as read-only.
_SHARED: dict[tuple, dict[str, Any]] = {}


def _shared(value: dict[str, Any]) -> dict[str, Any]:
    try:
        key = tuple(value.items())
        if len(_SHARED) > 4096:
            _SHARED.clear()
        return _SHARED.setdefault(key, value)
    except TypeError:  # an unhashable value (a list): kept apart
        return value


def _info_data(data: bytes, span: tuple[int, int] | None, kind: str | None) -> dict[str, Any]:
    table = _INFO_TABLES.get(kind or "")
    if table is None or span is None:
        return {}
    out: dict[str, Any] = {}
    ad_span = None
    # one walk, decoding as it goes (as _attrs walks: the first one wins)
    start, end = span
    unpack, mask = _NLA_UNPACK, NLA_TYPE_MASK
    while start + 4 <= end:
        length, code = unpack(data, start)
        if length < 4:
            break
        entry = table.get(code & mask)
        if entry is not None:
            key, decode, direct = entry
            if key not in out:
                inner = (start + 4, start + length)
                out[key] = decode(data, inner[0])[0] if direct else decode(data, inner)
        elif code & mask == BOND_AD_INFO and ad_span is None:
            ad_span = (start + 4, start + length)
        start += (length + 3) & ~3
    if kind == "bond" and ad_span is not None:
        ad_info = _attrs(data, *ad_span)
        if AD_INFO_AGGREGATOR in ad_info:
            aggregator = U16.unpack_from(data, ad_info[AD_INFO_AGGREGATOR][0])[0]
            out["bond_ad_info_aggregator"] = aggregator
        if AD_INFO_PARTNER_MAC in ad_info:
            out["bond_ad_info_partner_mac"] = _hex(data, ad_info[AD_INFO_PARTNER_MAC])
    return _shared(out)


_NO_SLAVE_INFO: dict[str, Any] = {}  # shared by every link that is no bond slave: read-only


def _slave_info(data: bytes, span: tuple[int, int] | None, slave_kind: str | None) -> dict:
    """A bond slave's permanent address and 802.3ad aggregator, {} for the rest."""
    if slave_kind != "bond" or span is None:
        return _NO_SLAVE_INFO
    out = {}
    for code, inner in _attrs(data, *span).items():
        if code in BOND_SLAVE:
            key, kind = BOND_SLAVE[code]
            out[key] = _SCALARS[kind](data, inner)
    return _shared(out)


def _ipv6_conf(data: bytes, span: tuple[int, int] | None) -> dict[str, int] | None:
    if span is None:
        return None
    inet6 = _attrs(data, *span).get(socket.AF_INET6)
    if inet6 is None:
        return None
    conf = _attrs(data, *inet6).get(INET6_CONF)
    if conf is None:
        return {}
    return _devconf(data[conf[0] : conf[1]], (conf[1] - conf[0]) // 4)


def _devconf(raw: bytes, count: int) -> dict[str, int]:
    """The IPv6 devconf array (``count`` values) decoded: devices
    configured alike send the same bytes, one shared read-only dict."""
    decoded = _DEVCONFS.get(raw)
    if decoded is None:
        decoded = _shared({
            key: U32.unpack_from(raw, 4 * index)[0]
            for key, index in DEVCONF.items()
            if index < count
        })  # fmt: skip
        if len(_DEVCONFS) > 4096:
            _DEVCONFS.clear()
        _DEVCONFS[raw] = decoded
    return decoded


# the raw IPV6 devconf array → its decoded (shared, read-only) dict
_DEVCONFS: dict[bytes, dict[str, int]] = {}


def decode_link(data: bytes, offset: int, end: int) -> tuple[int, dict]:
    """A link message as :func:`_walk_link` decodes it: by a compiled shape
    of the same length when one matches (:mod:`netlink.link_shapes`), else
    walked (and, the second time its length comes, its shape compiled)."""
    return _LINKS.decode(data, offset, end)


def _walk_link(data: bytes, offset: int, end: int) -> tuple[int, dict]:
    family, ifi_type, index, flags, _ = IFINFO.unpack_from(data, offset)
    a = _attrs(data, offset + IFINFO.size, end)
    info = _attrs(data, *a[LINKINFO]) if LINKINFO in a else {}
    kind = _asciiz(data, info[INFO_KIND]) if INFO_KIND in info else None
    slave_kind = _asciiz(data, info[INFO_SLAVE_KIND]) if INFO_SLAVE_KIND in info else None
    lower = _u32(data, a.get(LINK))
    if LINK_NETNSID in a or lower == index:
        lower = None
    operstate = U8.unpack_from(data, a[OPERSTATE][0])[0] if OPERSTATE in a else 0
    return family, {
        "name": _asciiz(data, a[IFNAME]) if IFNAME in a else "",
        "index": index,
        "kind": kind,
        "slave_kind": slave_kind,
        "master": _u32(data, a.get(MASTER)) or None,
        "link": lower or None,
        "mtu": _u32(data, a.get(MTU)) or 0,
        "address": _hex(data, a[ADDRESS]) if ADDRESS in a else "",
        "permaddr": (_hex(data, a[PERM_ADDRESS]) or None) if PERM_ADDRESS in a else None,
        "operstate": OPERSTATES[operstate] if operstate < len(OPERSTATES) else "UNKNOWN",
        "flags": flags,
        "ifi_type": ifi_type,
        "parent_dev": _asciiz(data, a[PARENT_DEV_NAME]) if PARENT_DEV_NAME in a else None,
        "alias": _asciiz(data, a[IFALIAS]) if IFALIAS in a else None,
        "info": _info_data(data, info.get(INFO_DATA), kind),
        "slave_info": _slave_info(data, info.get(INFO_SLAVE_DATA), slave_kind),
        "ipv6conf": _ipv6_conf(data, a.get(AF_SPEC)),
    }


def decode_addr(data: bytes, offset: int, end: int) -> tuple[int, dict]:
    """An address message as :func:`_walk_addr` decodes it (by its
    compiled shape when one matches: :mod:`netlink.flat_shapes`)."""
    return _ADDRS.decode(data, offset, end)


def _walk_addr(data: bytes, offset: int, end: int) -> tuple[int, dict]:
    family, prefixlen, flags, scope, index = IFADDR.unpack_from(data, offset)
    a = _attrs(data, offset + IFADDR.size, end)
    span = a.get(IFA_LOCAL) or a.get(IFA_ADDRESS)
    return family, {
        "index": index,
        "family": 6 if family == socket.AF_INET6 else 4,
        "address": _ip(data, span) if span else "",
        "prefixlen": prefixlen,
        "flags": _u32(data, a.get(IFA_FLAGS)) if IFA_FLAGS in a else flags,
        "scope": scope,
    }


def decode_route(data: bytes, offset: int, end: int) -> tuple[int, RouteMsg]:
    """A route message as :func:`_walk_route` decodes it (by its compiled
    shape when one matches: :mod:`netlink.flat_shapes`)."""
    return _ROUTES.decode(data, offset, end)


def _walk_route(data: bytes, offset: int, end: int) -> tuple[int, RouteMsg]:
    family, dst_len, src_len, tos, table, _, _, kind, rtm_flags = RTMSG.unpack_from(data, offset)
    a = _attrs(data, offset + RTMSG.size, end)
    nexthops = []
    if RTA_MULTIPATH in a:
        start, stop = a[RTA_MULTIPATH]
        while start + RTNH.size <= stop:
            length, _, _, ifindex = RTNH.unpack_from(data, start)
            if length < RTNH.size:
                break
            hop = _attrs(data, start + RTNH.size, start + length)
            gateway = _ip(data, hop[RTA_GATEWAY]) if RTA_GATEWAY in hop else None
            nexthops.append({"oif": ifindex or None, "gateway": gateway})
            start += (length + 3) & ~3
    route = {
        "family": 6 if family == socket.AF_INET6 else 4,
        "table": _u32(data, a.get(RTA_TABLE)) if RTA_TABLE in a else table,
        "type": kind,
        "dst": _ip(data, a[RTA_DST]) if RTA_DST in a else None,
        "dst_len": dst_len,
        "gateway": _ip(data, a[RTA_GATEWAY]) if RTA_GATEWAY in a else None,
        "oif": _u32(data, a.get(RTA_OIF)),
        "priority": _u32(data, a.get(RTA_PRIORITY)) or 0,
        "nexthops": nexthops,
    }
    prefsrc = _ip(data, a[RTA_PREFSRC]) if RTA_PREFSRC in a else None
    return family, RouteMsg(route, rtm_flags, tos, src_len, prefsrc)


def decode_rule(data: bytes, offset: int, end: int) -> tuple[int, dict]:
    """A policy rule as ``{family, priority, src, src_len, dst, dst_len,
    tos, table, action, iif, oif}`` (the selectors source routing uses)."""
    family, dst_len, src_len, tos, table, _, _, action, _ = FIBRULE.unpack_from(data, offset)
    a = _attrs(data, offset + FIBRULE.size, end)
    return family, {
        "family": 6 if family == socket.AF_INET6 else 4,
        "priority": _u32(data, a.get(FRA_PRIORITY)) or 0,
        "src": _ip(data, a[FRA_SRC]) if FRA_SRC in a else None,
        "src_len": src_len,
        "dst": _ip(data, a[FRA_DST]) if FRA_DST in a else None,
        "dst_len": dst_len,
        "tos": tos,
        "table": _u32(data, a.get(FRA_TABLE)) if FRA_TABLE in a else table,
        "action": action,
        "iif": _asciiz(data, a[FRA_IIFNAME]) if FRA_IIFNAME in a else None,
        "oif": _asciiz(data, a[FRA_OIFNAME]) if FRA_OIFNAME in a else None,
    }


def decode_qdisc(data: bytes, offset: int, end: int) -> tuple[int, dict]:
    """A queueing discipline as ``{index, handle, parent, kind}`` (what
    tells whose root qdisc a device has)."""
    family, index, handle, parent, _ = TCMSG.unpack_from(data, offset)
    a = _attrs(data, offset + TCMSG.size, end)
    kind = _asciiz(data, a[TCA_KIND]) if TCA_KIND in a else None
    return family, {"index": index, "handle": handle, "parent": parent, "kind": kind}


def decode_stats(data: bytes, offset: int, end: int) -> tuple[int, dict]:
    """A device's 64-bit counters (RTM_NEWSTATS asked for
    IFLA_STATS_LINK_64 only) as ``{index, rx, tx, rx_errors, tx_errors,
    rx_dropped, tx_dropped}`` (bytes and packets), or ``{index}`` alone
    when the kernel sent none."""
    family, _, _, index, _ = IF_STATS_MSG.unpack_from(data, offset)
    span = _attrs(data, offset + IF_STATS_MSG.size, end).get(IFLA_STATS_LINK_64)
    if span is None or span[1] - span[0] < STATS64.size:
        return family, {"index": index}
    _, _, rx, tx, rx_errors, tx_errors, rx_dropped, tx_dropped = STATS64.unpack_from(data, span[0])
    return family, {
        "index": index,
        "rx": rx,
        "tx": tx,
        "rx_errors": rx_errors,
        "tx_errors": tx_errors,
        "rx_dropped": rx_dropped,
        "tx_dropped": tx_dropped,
    }


_LINKS = ShapeCache(_walk_link, lambda d, o, e: compile_link(d, o, e, sys.modules[__name__]))

_ADDRS = ShapeCache(_walk_addr, compile_addr)
_ROUTES = ShapeCache(_walk_route, compile_route)


@forget_me
def forget_shapes() -> None:
    """The compiled shapes and the shared decoded values: filled during a
    big change, they would pin pymalloc's arenas after it (see
    ``shared.caches``). Any thread may decode meanwhile (a miss walks)."""
    for cache in (_LINKS, _ADDRS, _ROUTES):
        cache.clear()
    _SHARED.clear()
    _DEVCONFS.clear()


_DECODERS = {
    RTM_NEWLINK: decode_link,
    RTM_DELLINK: decode_link,
    RTM_NEWADDR: decode_addr,
    RTM_DELADDR: decode_addr,
    RTM_NEWROUTE: decode_route,
    RTM_DELROUTE: decode_route,
    RTM_NEWRULE: decode_rule,
    RTM_DELRULE: decode_rule,
    RTM_NEWSTATS: decode_stats,
    RTM_NEWQDISC: decode_qdisc,
}


_new = tuple.__new__  # a Message without NamedTuple's Python-level __new__


def messages(data: bytes) -> Iterator[Message]:
    """The messages of one datagram; kinds not listed above are skipped, and
    so are routes of the local table (the kernel's own, one or more per
    address: nothing reads them)."""
    offset, size = 0, len(data)
    while offset + NLMSG.size <= size:
        length, kind, flags, seq, _ = NLMSG.unpack_from(data, offset)
        if length < NLMSG.size or offset + length > size:
            raise ValueError(f"malformed netlink message ({length} bytes at {offset})")
        body = offset + NLMSG.size
        if kind == NLMSG_ERROR:
            yield Message(kind, flags, seq, 0, -S32.unpack_from(data, body)[0])
        elif kind == NLMSG_DONE:
            yield Message(kind, flags, seq, 0, None)
        elif kind in (RTM_NEWROUTE, RTM_DELROUTE) and data[body + 4] == RT_TABLE_LOCAL:
            pass
        elif (decode := _DECODERS.get(kind)) is not None:
            family, decoded = decode(data, body, offset + length)
            yield _new(Message, (kind, flags, seq, family, decoded))
        offset += (length + 3) & ~3
