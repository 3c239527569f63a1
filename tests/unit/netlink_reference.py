"""A frozen copy of the link, address and route decoders as they were
before compiled shapes (``netlink.decode`` at 95c02b9, attribute by
attribute): the independent reference that ``tests/unit/
test_netlink_decode.py`` compares the shapes (``netlink.link_shapes``,
``netlink.flat_shapes``) and ``netlink.decode``'s own walk against, value
for value, type for type, key order included. Values only: the sharing
of equal dicts is left out. Test code, never imported by the product.

Why a copy and not ``netlink.decode``'s walk: the walk lives beside the
shapes and changes with them, so a mistake made in both would pass; this
file does not change when the decoder is optimised.

When it may change or go: a deliberate change of what is decoded (a new
attribute, another type) changes this file in the same commit, so that the
difference is seen in review. It may be deleted, together with the tests
that use it, when ``netlink.decode`` no longer has compiled shapes (every
message walked again: nothing left to compare), or when
``tests/unit/test_netlink_decode.py`` is rewritten to compare the shapes
with recorded expected values (golden files of the capture) instead."""

from __future__ import annotations

import socket
from typing import Any

from netlink.constants import (
    AD_INFO_AGGREGATOR,
    AD_INFO_PARTNER_MAC,
    ADDRESS,
    AF_SPEC,
    BOND_AD_INFO,
    BOND_SLAVE,
    DEVCONF,
    IFA_ADDRESS,
    IFA_FLAGS,
    IFA_LOCAL,
    IFADDR,
    IFALIAS,
    IFINFO,
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
    OPERSTATE,
    OPERSTATES,
    PARENT_DEV_NAME,
    PERM_ADDRESS,
    RTA_DST,
    RTA_GATEWAY,
    RTA_MULTIPATH,
    RTA_OIF,
    RTA_PREFSRC,
    RTA_PRIORITY,
    RTA_TABLE,
    RTMSG,
    RTNH,
    U8,
    U16,
    U32,
)
from netlink.decode import _INFO_TABLES, _SCALARS, RouteMsg


def attrs(data: bytes, start: int, end: int) -> dict[int, tuple[int, int]]:
    out: dict[int, tuple[int, int]] = {}
    while start + 4 <= end:
        length, kind = NLA.unpack_from(data, start)
        if length < 4:
            break
        kind &= NLA_TYPE_MASK
        if kind not in out:
            out[kind] = (start + 4, start + length)
        start += (length + 3) & ~3
    return out


def asciiz(data: bytes, span: tuple[int, int]) -> str:
    return data[span[0] : span[1]].split(b"\0", 1)[0].decode(errors="replace")


def ip(data: bytes, span: tuple[int, int]) -> str:
    raw = data[span[0] : span[1]]
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw)
    return socket.inet_ntop(socket.AF_INET6, raw)


def hexa(data: bytes, span: tuple[int, int]) -> str:
    return data[span[0] : span[1]].hex(":")


def u32(data: bytes, span: tuple[int, int] | None) -> int | None:
    return U32.unpack_from(data, span[0])[0] if span else None


def info_data(data: bytes, span: tuple[int, int] | None, kind: str | None) -> dict[str, Any]:
    table = _INFO_TABLES.get(kind or "")
    if table is None or span is None:
        return {}
    out: dict[str, Any] = {}
    ad_span = None
    start, end = span
    while start + 4 <= end:
        length, code = NLA.unpack_from(data, start)
        if length < 4:
            break
        entry = table.get(code & NLA_TYPE_MASK)
        if entry is not None:
            key, decode, direct = entry
            if key not in out:
                inner = (start + 4, start + length)
                out[key] = decode(data, inner[0])[0] if direct else decode(data, inner)
        elif code & NLA_TYPE_MASK == BOND_AD_INFO and ad_span is None:
            ad_span = (start + 4, start + length)
        start += (length + 3) & ~3
    if kind == "bond" and ad_span is not None:
        ad_info = attrs(data, *ad_span)
        if AD_INFO_AGGREGATOR in ad_info:
            aggregator = U16.unpack_from(data, ad_info[AD_INFO_AGGREGATOR][0])[0]
            out["bond_ad_info_aggregator"] = aggregator
        if AD_INFO_PARTNER_MAC in ad_info:
            out["bond_ad_info_partner_mac"] = hexa(data, ad_info[AD_INFO_PARTNER_MAC])
    return out


def slave_info(data: bytes, span: tuple[int, int] | None, slave_kind: str | None) -> dict:
    if slave_kind != "bond" or span is None:
        return {}
    out = {}
    for code, inner in attrs(data, *span).items():
        if code in BOND_SLAVE:
            key, kind = BOND_SLAVE[code]
            out[key] = _SCALARS[kind](data, inner)
    return out


def ipv6_conf(data: bytes, span: tuple[int, int] | None) -> dict[str, int] | None:
    if span is None:
        return None
    inet6 = attrs(data, *span).get(socket.AF_INET6)
    if inet6 is None:
        return None
    conf = attrs(data, *inet6).get(INET6_CONF)
    if conf is None:
        return {}
    start, end = conf
    raw = data[start:end]
    count = (end - start) // 4
    return {key: U32.unpack_from(raw, 4 * index)[0] for key, index in DEVCONF.items()
            if index < count}  # fmt: skip


def decode_link(data: bytes, offset: int, end: int) -> tuple[int, dict]:
    family, ifi_type, index, flags, _ = IFINFO.unpack_from(data, offset)
    a = attrs(data, offset + IFINFO.size, end)
    info = attrs(data, *a[LINKINFO]) if LINKINFO in a else {}
    kind = asciiz(data, info[INFO_KIND]) if INFO_KIND in info else None
    slave_kind = asciiz(data, info[INFO_SLAVE_KIND]) if INFO_SLAVE_KIND in info else None
    lower = u32(data, a.get(LINK))
    if LINK_NETNSID in a or lower == index:
        lower = None
    operstate = U8.unpack_from(data, a[OPERSTATE][0])[0] if OPERSTATE in a else 0
    return family, {
        "name": asciiz(data, a[IFNAME]) if IFNAME in a else "",
        "index": index,
        "kind": kind,
        "slave_kind": slave_kind,
        "master": u32(data, a.get(MASTER)) or None,
        "link": lower or None,
        "mtu": u32(data, a.get(MTU)) or 0,
        "address": hexa(data, a[ADDRESS]) if ADDRESS in a else "",
        "permaddr": (hexa(data, a[PERM_ADDRESS]) or None) if PERM_ADDRESS in a else None,
        "operstate": OPERSTATES[operstate] if operstate < len(OPERSTATES) else "UNKNOWN",
        "flags": flags,
        "ifi_type": ifi_type,
        "parent_dev": asciiz(data, a[PARENT_DEV_NAME]) if PARENT_DEV_NAME in a else None,
        "alias": asciiz(data, a[IFALIAS]) if IFALIAS in a else None,
        "info": info_data(data, info.get(INFO_DATA), kind),
        "slave_info": slave_info(data, info.get(INFO_SLAVE_DATA), slave_kind),
        "ipv6conf": ipv6_conf(data, a.get(AF_SPEC)),
    }


def decode_addr(data: bytes, offset: int, end: int) -> tuple[int, dict]:
    family, prefixlen, flags, scope, index = IFADDR.unpack_from(data, offset)
    a = attrs(data, offset + IFADDR.size, end)
    span = a.get(IFA_LOCAL) or a.get(IFA_ADDRESS)
    return family, {
        "index": index,
        "family": 6 if family == socket.AF_INET6 else 4,
        "address": ip(data, span) if span else "",
        "prefixlen": prefixlen,
        "flags": u32(data, a.get(IFA_FLAGS)) if IFA_FLAGS in a else flags,
        "scope": scope,
    }


def decode_route(data: bytes, offset: int, end: int) -> tuple[int, RouteMsg]:
    family, dst_len, src_len, tos, table, _, _, kind, rtm_flags = RTMSG.unpack_from(data, offset)
    a = attrs(data, offset + RTMSG.size, end)
    nexthops = []
    if RTA_MULTIPATH in a:
        start, stop = a[RTA_MULTIPATH]
        while start + RTNH.size <= stop:
            length, _, _, ifindex = RTNH.unpack_from(data, start)
            if length < RTNH.size:
                break
            hop = attrs(data, start + RTNH.size, start + length)
            gateway = ip(data, hop[RTA_GATEWAY]) if RTA_GATEWAY in hop else None
            nexthops.append({"oif": ifindex or None, "gateway": gateway})
            start += (length + 3) & ~3
    route = {
        "family": 6 if family == socket.AF_INET6 else 4,
        "table": u32(data, a.get(RTA_TABLE)) if RTA_TABLE in a else table,
        "type": kind,
        "dst": ip(data, a[RTA_DST]) if RTA_DST in a else None,
        "dst_len": dst_len,
        "gateway": ip(data, a[RTA_GATEWAY]) if RTA_GATEWAY in a else None,
        "oif": u32(data, a.get(RTA_OIF)),
        "priority": u32(data, a.get(RTA_PRIORITY)) or 0,
        "nexthops": nexthops,
    }
    prefsrc = ip(data, a[RTA_PREFSRC]) if RTA_PREFSRC in a else None
    return family, RouteMsg(route, rtm_flags, tos, src_len, prefsrc)
