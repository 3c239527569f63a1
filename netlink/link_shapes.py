"""Link messages decoded by their shape, in two ``struct`` calls.

A thousand bridges of one kernel send link messages of one shape: the same
attributes, nested the same way, at the same offsets; only the values
differ. Walking forty top-level and forty bridge attributes one by one in
Python (:func:`netlink.decode._walk_link`) is most of what decoding such a
message costs. So the first message of a length is walked, and the next
one's shape is compiled (:func:`compile_link`): one :class:`struct.Struct`
reading, from the message's start, every attribute header the walk reads
(at every level it descends into) and the link kind's bytes; another
reading every value the walk decodes. A later message of the same length
whose headers and kind equal the compiled ones is decoded from these two
calls (:meth:`LinkShape.decode`): the walk, which depends on nothing else,
would visit the same attributes at the same offsets, so the values read are
the walk's. Any difference (another attribute, length, flag or kind) and
the message is walked as before. :class:`ShapeCache` keeps the shapes.

Only well-formed shapes are compiled: every attribute inside its parent,
every fixed-size read inside its attribute. Anything else (truncated or
overlapping attributes, a value shorter than its type) is always walked,
so its decoding, errors included, is the walk's.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable
from operator import itemgetter
from typing import Any

from netlink.constants import (
    AD_INFO_AGGREGATOR,
    AD_INFO_PARTNER_MAC,
    ADDRESS,
    AF_SPEC,
    BOND_AD_INFO,
    BOND_SLAVE,
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
)

AF_INET6 = 10
# struct formats of the native-order integers netlink.decode unpacks in place
_NATIVE = {"=B": "B", "=H": "H", "=I": "I", "=Q": "Q", "=i": "i"}
SHAPES_PER_LENGTH = 4
INFO_VALUES = 16  # distinct linkinfo values decoded per shape (then forgotten)
# distinct message lengths with compiled shapes (then forgotten): at most
# 256 link shapes of ~7 KB
MAX_LENGTHS = 64
# shapes compiled for one length before it is only walked (more shapes of
# one length than SHAPES_PER_LENGTH would otherwise compile on every miss)
COMPILES_PER_LENGTH = 16


class NotCompiled(Exception):
    """The message's shape is not compiled (malformed, or a read it cannot fuse)."""


def tuple_getter(indexes: list[int]) -> Callable[[tuple], tuple]:
    if not indexes:
        return lambda t: ()
    if len(indexes) == 1:
        index = indexes[0]
        return lambda t: (t[index],)
    return itemgetter(*indexes)


class Layout:
    """The fields of a shape's struct, by their offset in the message."""

    def __init__(self, data: bytes) -> None:
        self.data = data  # the message, from its ifinfomsg on
        self.end = len(data)
        self.fields: list[tuple[int, int, str, tuple]] = []  # offset, size, format, role
        self.count = 0  # values so far

    def check(self, pos: int, size: int, fmt: str, expected: Any) -> None:
        self.fields.append((pos, size, fmt, ("check", expected)))

    def value(self, pos: int, size: int, fmt: str) -> int:
        """A value's field; its number among the values is returned."""
        self.fields.append((pos, size, fmt, ("value", self.count)))
        self.count += 1
        return self.count - 1

    def fixed(self, span: tuple[int, int] | None, size: int, fmt: str) -> int | None:
        """The value number of a fixed-size read at ``span``'s start (None: no span)."""
        if span is None:
            return None
        if span[1] - span[0] < size:
            raise NotCompiled  # the walk reads past the attribute
        return self.value(span[0], size, fmt)

    def raw(self, span: tuple[int, int] | None) -> int | None:
        """The value number of ``span``'s bytes (None: no span)."""
        if span is None:
            return None
        return self.value(span[0], span[1] - span[0], f"{span[1] - span[0]}s")

    def walk(self, start: int, end: int) -> list[tuple[int, int, int]]:
        """The attributes between ``start`` and ``end`` as (code, start, end)
        of their payloads, every header checked; well-formed only."""
        out = []
        while start + 4 <= end:
            length, code = NLA.unpack_from(self.data, start)
            if length < 4 or start + length > end:
                raise NotCompiled
            # the header as one integer: length and type compared at once
            self.check(start, 4, "I", _HEADER.unpack_from(self.data, start)[0])
            out.append((code & NLA_TYPE_MASK, start + 4, start + length))
            start += (length + 3) & ~3
        return out

    def compile(self) -> tuple[struct.Struct, tuple, struct.Struct, Callable]:
        """The struct of the checked fields and their expected values; the
        struct of the values and the getter of their tuple by value number."""
        fields = sorted(self.fields, key=lambda f: (f[0], f[1]))
        pos = 0
        for start, size, _, _ in fields:
            if start < pos or start + size > self.end:
                raise NotCompiled  # overlapping reads, or past the message
            pos = start + size
        checks = [f for f in fields if f[3][0] == "check"]
        values = [f for f in fields if f[3][0] == "value"]
        order = {f[3][1]: index for index, f in enumerate(values)}
        return (
            _struct(checks),
            tuple(f[3][1] for f in checks),
            _struct(values),
            tuple_getter([order[n] for n in range(len(order))]),
        )


def _struct(fields: list[tuple[int, int, str, tuple]]) -> struct.Struct:
    fmt, pos = ["="], 0
    for start, size, code, _ in fields:
        if start > pos:
            fmt.append(f"{start - pos}x")
        fmt.append(code)
        pos = start + size
    return struct.Struct("".join(fmt))


_HEADER = struct.Struct("=I")


def first(attrs: list[tuple[int, int, int]]) -> dict[int, tuple[int, int]]:
    """code → payload span of the first attribute of each code (as _attrs)."""
    out: dict[int, tuple[int, int]] = {}
    for code, start, end in attrs:
        out.setdefault(code, (start, end))
    return out


class LinkShape:
    """One compiled shape of link message (:func:`compile_link`)."""

    def __init__(self, data: bytes, offset: int, end: int, decode_mod: Any) -> None:
        body = data[offset:end]
        layout = Layout(body)
        self._d = decode_mod
        # the ifinfomsg header: family, type, index, flags (values 0..3)
        layout.value(0, 1, "B")
        layout.value(2, 2, "H")
        layout.value(4, 4, "i")
        layout.value(8, 4, "I")
        a = first(layout.walk(IFINFO.size, len(body)))
        info: dict[int, tuple[int, int]] = {}
        if LINKINFO in a:
            info = first(layout.walk(*a[LINKINFO]))
        self.kind = self._text(layout, info.get(INFO_KIND))
        self.slave_kind = self._text(layout, info.get(INFO_SLAVE_KIND))
        self.netnsid = LINK_NETNSID in a
        self.link = layout.fixed(a.get(LINK), 4, "I")
        self.master = layout.fixed(a.get(MASTER), 4, "I")
        self.mtu = layout.fixed(a.get(MTU), 4, "I")
        self.operstate = layout.fixed(a.get(OPERSTATE), 1, "B")
        self.name = layout.raw(a.get(IFNAME))
        self.address = layout.raw(a.get(ADDRESS))
        self.permaddr = layout.raw(a.get(PERM_ADDRESS))
        self.parent = layout.raw(a.get(PARENT_DEV_NAME))
        self.alias = layout.raw(a.get(IFALIAS))
        self._compile_info(layout, info.get(INFO_DATA))
        self._compile_slave(layout, info.get(INFO_SLAVE_DATA))
        self._compile_ipv6(layout, a.get(AF_SPEC))
        self.check, self.expected, self.struct, self.values = layout.compile()

    # -- compiling ---------------------------------------------------------
    def _text(self, layout: Layout, span: tuple[int, int] | None) -> str | None:
        """A string the walk branches on (the kind): checked, byte for byte."""
        if span is None:
            return None
        raw = layout.data[span[0] : span[1]]
        layout.check(span[0], len(raw), f"{len(raw)}s", raw)
        return raw.split(b"\0", 1)[0].decode(errors="replace")

    def _compile_info(self, layout: Layout, span: tuple[int, int] | None) -> None:
        table = self._d._INFO_TABLES.get(self.kind or "")
        self.info = table is not None and span is not None
        if not self.info:
            return
        keys: list[str] = []
        numbers: list[int] = []  # each key's value number
        post: list[tuple[int, Callable]] = []  # (position, raw → value)
        calls: list[tuple[int, Callable, int, int]] = []  # decoded from the message
        ad_span = None
        for code, start, end in layout.walk(*span):
            entry = table.get(code)
            if entry is not None:
                key, decode, direct = entry
                if key in keys:
                    continue
                numbers.append(self._info_value(layout, decode, direct, start, end, post, calls,
                                                len(keys)))  # fmt: skip
                keys.append(key)
            elif code == BOND_AD_INFO and ad_span is None:
                ad_span = (start, end)
        self.ad: tuple[int | None, int | None] | None = None
        if self.kind == "bond" and ad_span is not None:
            ad = first(layout.walk(*ad_span))
            aggregator = layout.fixed(ad.get(AD_INFO_AGGREGATOR), 2, "H")
            mac = layout.raw(ad.get(AD_INFO_PARTNER_MAC))
            self.ad = (
                None if aggregator is None else len(numbers),
                None if mac is None else len(numbers) + (aggregator is not None),
            )
            numbers += [n for n in (aggregator, mac) if n is not None]
        self.info_keys = tuple(keys)
        self.info_numbers = numbers
        self.info_post = tuple(post)
        self.info_calls = tuple(calls)
        # equal values, equal dict: decoded once (unless a value is decoded
        # from the message, not from the values read)
        self.info_cache: dict[tuple, dict[str, Any]] | None = None if calls else {}

    def _info_value(
        self,
        layout: Layout,
        decode: Callable,
        direct: bool,
        start: int,
        end: int,
        post: list,
        calls: list,
        position: int,
    ) -> int:
        """The value number of one linkinfo data attribute's value."""
        d = self._d
        if direct:
            fmt, size = decode.__self__.format, decode.__self__.size
            if end - start < size:
                raise NotCompiled  # the walk reads past the attribute
            if fmt in _NATIVE:
                return layout.value(start, size, _NATIVE[fmt])
            post.append((position, _from_big))
            return layout.value(start, size, f"{size}s")
        number = layout.raw((start, end))
        if decode is d._hex:
            post.append((position, _hex))
        elif decode is d._asciiz:
            post.append((position, _z))
        elif decode is d._ip and end - start in (4, 16):
            post.append((position, _ip))
        elif decode is d._SCALARS["flag"]:
            post.append((position, _true))
        else:  # a list of addresses (a bond's ARP targets): decoded as the walk does
            calls.append((position, decode, start, end))
        return number

    def _compile_slave(self, layout: Layout, span: tuple[int, int] | None) -> None:
        self.slave = None
        if self.slave_kind != "bond" or span is None:
            return
        self.slave = tuple(
            (BOND_SLAVE[code][0], self._d._SCALARS[BOND_SLAVE[code][1]], inner)
            for code, inner in first(layout.walk(*span)).items()
            if code in BOND_SLAVE
        )

    def _compile_ipv6(self, layout: Layout, span: tuple[int, int] | None) -> None:
        self.conf: int | str | None = None  # None: no AF_INET6; "": no devconf
        if span is None:
            return
        inet6 = first(layout.walk(*span)).get(AF_INET6)
        if inet6 is None:
            return
        conf = first(layout.walk(*inet6)).get(INET6_CONF)
        self.conf = "" if conf is None else layout.raw(conf)

    # -- decoding ----------------------------------------------------------
    def decode(self, data: bytes, offset: int) -> tuple[int, dict] | None:
        """As the walk decodes the message at ``offset``; None when it is
        not of this shape (the caller walks it)."""
        if self.check.unpack_from(data, offset) != self.expected:
            return None
        v = self.values(self.struct.unpack_from(data, offset))
        family, ifi_type, index, flags = v[0], v[1], v[2], v[3]
        lower = v[self.link] if self.link is not None else None
        if self.netnsid or lower == index:
            lower = None
        operstate = v[self.operstate] if self.operstate is not None else 0
        d = self._d
        return family, {
            "name": _z(v[self.name]) if self.name is not None else "",
            "index": index,
            "kind": self.kind,
            "slave_kind": self.slave_kind,
            "master": (v[self.master] if self.master is not None else None) or None,
            "link": lower or None,
            "mtu": (v[self.mtu] if self.mtu is not None else None) or 0,
            "address": v[self.address].hex(":") if self.address is not None else "",
            "permaddr": (v[self.permaddr].hex(":") or None) if self.permaddr is not None else None,
            "operstate": OPERSTATES[operstate] if operstate < len(OPERSTATES) else "UNKNOWN",
            "flags": flags,
            "ifi_type": ifi_type,
            "parent_dev": _z(v[self.parent]) if self.parent is not None else None,
            "alias": _z(v[self.alias]) if self.alias is not None else None,
            "info": self._info(data, offset, v) if self.info else {},
            "slave_info": d._NO_SLAVE_INFO if self.slave is None else self._slave(data, offset),
            "ipv6conf": self._ipv6(v),
        }

    def _ipv6(self, v: tuple) -> dict[str, int] | None:
        if self.conf is None:
            return None
        if self.conf == "":
            return {}
        raw = v[self.conf]
        return self._d._devconf(raw, len(raw) // 4)

    def _info(self, data: bytes, offset: int, v: tuple) -> dict[str, Any]:
        read = self.info_values(v)
        cache = self.info_cache
        if cache is not None:
            known = cache.get(read)
            if known is not None:
                return known
        values = list(read[: len(self.info_keys)])
        for position, convert in self.info_post:
            values[position] = convert(values[position])
        for position, decode, start, end in self.info_calls:
            values[position] = decode(data, (offset + start, offset + end))
        out = dict(zip(self.info_keys, values, strict=True))
        if self.ad is not None:
            aggregator, mac = self.ad
            if aggregator is not None:
                out["bond_ad_info_aggregator"] = read[aggregator]
            if mac is not None:
                out["bond_ad_info_partner_mac"] = read[mac].hex(":")
        out = self._d._shared(out)
        if cache is not None:
            if len(cache) >= INFO_VALUES:
                cache.clear()
            cache[read] = out
        return out

    def _slave(self, data: bytes, offset: int) -> dict[str, Any]:
        out = {
            key: decode(data, (offset + start, offset + end))
            for key, decode, (start, end) in self.slave
        }
        return self._d._shared(out)


def _z(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def _hex(raw: bytes) -> str:
    return raw.hex(":")


def _ip(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def _from_big(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


def _true(raw: bytes) -> bool:
    return True


def compile_link(data: bytes, offset: int, end: int, decode_mod: Any) -> LinkShape | None:
    """The shape of the link message at ``offset``, or None when it is not
    compiled (malformed, or a read that cannot be fused)."""
    try:
        shape = LinkShape(data, offset, end, decode_mod)
    except NotCompiled:
        return None
    # the info values' numbers → positions in the values tuple (a value
    # read by a call has none: its place in the dict is filled after)
    if shape.info:
        shape.info_values = tuple_getter(shape.info_numbers)
    return shape


class ShapeCache:
    """Messages of one kind decoded by their compiled shapes, by length.

    ``walk(data, offset, end)`` decodes any message; ``compile(data, offset,
    end)`` gives its shape (an object whose ``decode(data, offset)`` returns
    what the walk would, or None for a message of another shape), or None.
    A shape is compiled the second time its length comes (compiling costs a
    few walks), at most :data:`COMPILES_PER_LENGTH` times per length; at
    most ``max_lengths`` lengths of :data:`SHAPES_PER_LENGTH` shapes."""

    def __init__(self, walk: Callable, compile: Callable, max_lengths: int = MAX_LENGTHS) -> None:
        self.walk, self.compile = walk, compile
        self.max_lengths = max_lengths
        self.shapes: dict[int, tuple[Any, ...]] = {}
        self.seen: set[int] = set()  # lengths walked once, no shape compiled
        self.compiles: dict[int, int] = {}  # shapes compiled per length

    def decode(self, data: bytes, offset: int, end: int) -> Any:
        length = end - offset
        shapes = self.shapes.get(length, ())
        for shape in shapes:
            decoded = shape.decode(data, offset)
            if decoded is not None:
                return decoded
        decoded = self.walk(data, offset, end)
        if length not in self.seen and not shapes:
            if len(self.seen) >= 4096:
                self.seen.clear()
            self.seen.add(length)
            return decoded
        compiled = self.compiles.get(length, 0)
        if compiled >= COMPILES_PER_LENGTH:
            return decoded
        self.compiles[length] = compiled + 1
        shape = self.compile(data, offset, end)
        if shape is not None:
            if len(self.shapes) >= self.max_lengths and length not in self.shapes:
                self.shapes.clear()
                self.compiles.clear()
            self.shapes[length] = (shape, *shapes[: SHAPES_PER_LENGTH - 1])
        return decoded

    def clear(self) -> None:
        self.shapes.clear()
        self.seen.clear()
        self.compiles.clear()
