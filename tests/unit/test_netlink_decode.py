"""Link messages decoded by compiled shapes (netlink.link_shapes) equal the
attribute-by-attribute walk, value for value, type for type, key order
included: on real messages of this kernel (tests/unit/data/
netlink_capture.bin, recorded by tests/tools/capture_netlink.py: dumps,
a creation's echo, notifications of bridges, veth, macvlan, macvtap,
vxlan, tap, lo), on bond, VLAN and bond slave messages built by pyroute2,
and on thousands of damaged copies of them."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from netlink import constants, decode, flat_shapes, link_shapes
from tests.unit import netlink_reference as reference

CAPTURE = Path(__file__).parent / "data" / "netlink_capture.bin"


def datagrams() -> list[bytes]:
    data, offset, out = CAPTURE.read_bytes(), 0, []
    while offset < len(data):
        (length,) = struct.unpack_from("=I", data, offset)
        out.append(data[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return out


def captured(*kinds: int) -> list[bytes]:
    """Each message of these types in the capture alone (its body)."""
    out = []
    for datagram in datagrams():
        offset = 0
        while offset + constants.NLMSG.size <= len(datagram):
            length, kind, *_ = constants.NLMSG.unpack_from(datagram, offset)
            if kind in kinds:
                out.append(datagram[offset + constants.NLMSG.size : offset + length])
            offset += (length + 3) & ~3
    return out


def link_messages() -> list[bytes]:
    return captured(constants.RTM_NEWLINK, constants.RTM_DELLINK)


def addr_messages() -> list[bytes]:
    return captured(constants.RTM_NEWADDR, constants.RTM_DELADDR)


def route_messages() -> list[bytes]:
    """Routes of every table (the local table's too: messages() skips them,
    decode_route does not)."""
    return captured(constants.RTM_NEWROUTE, constants.RTM_DELROUTE)


def built(kind_attrs: list) -> bytes:
    msg = ifinfmsg()
    msg["index"], msg["flags"], msg["ifi_type"] = 9, 0x11043, 1
    msg["attrs"] = kind_attrs
    msg["header"]["type"] = constants.RTM_NEWLINK
    msg.encode()
    return bytes(msg.data)[constants.NLMSG.size :]


BUILT = {
    "bond": [
        ["IFLA_IFNAME", "bond0"], ["IFLA_MTU", 1500], ["IFLA_OPERSTATE", "UP"],
        ["IFLA_ADDRESS", "52:54:00:12:34:56"],
        ["IFLA_LINKINFO", {"attrs": [
            ["IFLA_INFO_KIND", "bond"],
            ["IFLA_INFO_DATA", {"attrs": [
                ["IFLA_BOND_MODE", 4], ["IFLA_BOND_MIIMON", 100],
                ["IFLA_BOND_ARP_IP_TARGET", ["10.0.0.1", "10.0.0.2"]],
                ["IFLA_BOND_AD_ACTOR_SYSTEM", "52:54:00:aa:bb:cc"],
                ["IFLA_BOND_AD_INFO", {"attrs": [["IFLA_BOND_AD_INFO_AGGREGATOR", 2],
                                                 ["IFLA_BOND_AD_INFO_NUM_PORTS", 2],
                                                 ["IFLA_BOND_AD_INFO_PARTNER_MAC",
                                                  "52:54:00:aa:bb:cd"]]}],
            ]}],
        ]}],
    ],
    "vlan": [
        ["IFLA_IFNAME", "eth0.10"], ["IFLA_LINK", 2], ["IFLA_MTU", 1500],
        ["IFLA_LINKINFO", {"attrs": [
            ["IFLA_INFO_KIND", "vlan"],
            ["IFLA_INFO_DATA", {"attrs": [["IFLA_VLAN_ID", 10],
                                          ["IFLA_VLAN_PROTOCOL", 0x8100]]}],
        ]}],
    ],
    "bond slave": [
        ["IFLA_IFNAME", "eth0"], ["IFLA_MASTER", 3], ["IFLA_PERM_ADDRESS", "52:54:00:00:00:01"],
        ["IFLA_LINKINFO", {"attrs": [
            ["IFLA_INFO_SLAVE_KIND", "bond"],
            ["IFLA_INFO_SLAVE_DATA", {"attrs": [["IFLA_BOND_SLAVE_STATE", 0],
                                                ["IFLA_BOND_SLAVE_PERM_HWADDR",
                                                 "52:54:00:00:00:01"],
                                                ["IFLA_BOND_SLAVE_AD_AGGREGATOR_ID", 2]]}],
        ]}],
    ],
}  # fmt: skip


def samples() -> list[bytes]:
    return link_messages() + [built(attrs) for attrs in BUILT.values()]


def outcome(decoder, body: bytes) -> str:
    """What a decoder makes of a message: the repr of its result (values,
    their types and the keys' order), or the exception's type."""
    try:
        return repr(decoder(body, 0, len(body)))
    except Exception as exc:  # noqa: BLE001 - the type is the outcome compared
        return f"raises {type(exc).__name__}"


@pytest.fixture(autouse=True)
def no_shapes():
    for cache in (decode._LINKS, decode._ADDRS, decode._ROUTES):
        cache.clear()
    yield
    for cache in (decode._LINKS, decode._ADDRS, decode._ROUTES):
        cache.clear()


def test_the_capture_holds_each_kind_of_link_this_kernel_makes() -> None:
    kinds = {decode.decode_link(m, 0, len(m))[1]["kind"] for m in link_messages()}
    assert {"bridge", "veth", "macvlan", "macvtap", "vxlan", "tun", None} <= kinds


def test_every_captured_and_built_link_compiles_to_a_shape() -> None:
    for body in samples():
        assert link_shapes.compile_link(body, 0, len(body), decode) is not None


def test_a_compiled_shape_decodes_each_message_as_the_walk_does() -> None:
    for body in samples():
        expected = outcome(reference.decode_link, body)
        assert outcome(decode.decode_link, body) == expected  # walked
        assert outcome(decode.decode_link, body) == expected  # walked, then compiled
        assert decode._LINKS.shapes[len(body)]
        shape = link_shapes.compile_link(body, 0, len(body), decode)
        assert repr(shape.decode(body, 0)) == expected  # by the shape alone
        assert outcome(decode.decode_link, body) == expected  # by the cached shape


def test_a_shape_decodes_another_device_of_its_shape_with_that_devices_values() -> None:
    bridges = [m for m in link_messages() if b"bridge\0" in m]
    first = bridges[0]
    decode.decode_link(first, 0, len(first))
    decode.decode_link(first, 0, len(first))
    same_length = [m for m in bridges[1:] if len(m) == len(first)]
    assert same_length
    for body in same_length:
        assert outcome(decode.decode_link, body) == outcome(reference.decode_link, body)


def test_a_message_at_an_offset_in_a_datagram_decodes_as_alone() -> None:
    for datagram in datagrams():
        for msg in decode.messages(datagram):
            if msg.type in (constants.RTM_NEWLINK, constants.RTM_DELLINK):
                assert msg.body["name"]
    for body in samples():
        padded = b"\xff" * 20 + body + b"\xee" * 8
        got = decode.decode_link(padded, 20, 20 + len(body))
        assert repr(got) == repr(reference.decode_link(body, 0, len(body)))


def _damaged(body: bytes, rng: random.Random, header: int = constants.IFINFO.size) -> bytes:
    """A copy with one thing wrong or unusual: a byte changed (a value, a
    header's length or type, the kind), NLA_F_NESTED or NLA_F_NET_BYTEORDER
    set on an attribute, an attribute's type made unknown, or the message
    cut short."""
    data = bytearray(body)
    headers, start = [], header
    while start + 4 <= len(data):  # the top level's headers
        length, _ = constants.NLA.unpack_from(data, start)
        if length < 4:
            break
        headers.append(start)
        start += (length + 3) & ~3
    choice = rng.randrange(6)
    if choice == 0:
        data[rng.randrange(len(data))] = rng.randrange(256)
    elif choice == 1 and headers:
        at = rng.choice(headers)
        struct.pack_into("=H", data, at + 2, struct.unpack_from("=H", data, at + 2)[0] | 0x8000)
    elif choice == 2 and headers:
        struct.pack_into("=H", data, rng.choice(headers) + 2, rng.choice([0, 60, 999, 0x3FFF]))
    elif choice == 3 and headers:
        at = rng.choice(headers)
        struct.pack_into("=H", data, at, rng.choice([0, 3, 4, 5, 7, len(data)]))
    elif choice == 4:
        data = data[: rng.randrange(header, len(data) + 1)]
    else:  # inside a nested level: one of the last bytes' headers or values
        at = rng.randrange(max(header, len(data) - 600), len(data))
        data[at] ^= 1 << rng.randrange(8)
    return bytes(data)


def test_damaged_messages_decode_as_the_walk_decodes_them() -> None:
    rng = random.Random(21)
    originals = samples()
    for _ in range(4000):
        body = rng.choice(originals)
        for _ in range(2):  # its shape compiled: damage must not fool it
            decode.decode_link(body, 0, len(body))
        damaged = _damaged(body, rng)
        assert outcome(decode.decode_link, damaged) == outcome(reference.decode_link, damaged)
        assert outcome(decode.decode_link, damaged) == outcome(reference.decode_link, damaged)


def test_a_changed_kind_of_the_same_length_is_not_decoded_by_the_bridges_shape() -> None:
    bridge = next(m for m in link_messages()
                  if reference.decode_link(m, 0, len(m))[1]["kind"] == "bridge")  # fmt: skip
    decode.decode_link(bridge, 0, len(bridge))
    decode.decode_link(bridge, 0, len(bridge))
    assert decode._LINKS.shapes[len(bridge)]
    other = bridge.replace(b"bridge\0", b"bond\0\0\0", 1)
    assert decode.decode_link(other, 0, len(other))[1]["kind"] == "bond"
    assert outcome(decode.decode_link, other) == outcome(reference.decode_link, other)


def test_a_second_message_of_a_known_shape_is_not_walked(monkeypatch) -> None:
    bridges = [m for m in link_messages()
               if reference.decode_link(m, 0, len(m))[1]["kind"] == "bridge"]  # fmt: skip
    first = bridges[0]
    decode.decode_link(first, 0, len(first))  # walked
    decode.decode_link(first, 0, len(first))  # walked, its shape compiled

    def walked(*args):
        raise AssertionError("walked again")

    monkeypatch.setattr(decode._LINKS, "walk", walked)
    for body in bridges:
        if len(body) == len(first):
            expected = reference.decode_link(body, 0, len(body))
            assert decode.decode_link(body, 0, len(body)) == expected


def test_a_length_seen_once_compiles_no_shape() -> None:
    body = link_messages()[0]
    decode.decode_link(body, 0, len(body))
    assert not decode._LINKS.shapes
    decode.decode_link(body, 0, len(body))
    assert len(decode._LINKS.shapes[len(body)]) == 1


def test_the_compiled_shapes_are_bounded(monkeypatch) -> None:
    monkeypatch.setattr(decode._LINKS, "max_lengths", 3)
    bodies = {len(m): m for m in samples()}
    assert len(bodies) > 3
    for body in bodies.values():
        for _ in range(2):
            decode.decode_link(body, 0, len(body))
            assert len(decode._LINKS.shapes) <= 3
    assert decode._LINKS.shapes
    for shapes in decode._LINKS.shapes.values():
        assert len(shapes) <= link_shapes.SHAPES_PER_LENGTH


FLAT = {
    "address": (addr_messages, decode.decode_addr, reference.decode_addr, constants.IFADDR.size),
    "route": (route_messages, decode.decode_route, reference.decode_route, constants.RTMSG.size),
}


@pytest.mark.parametrize("kind", FLAT)
def test_addresses_and_routes_decode_by_shape_as_the_walk_does(kind: str) -> None:
    messages, ours, walk, _ = FLAT[kind]
    bodies = messages()
    assert len({len(body) for body in bodies}) < len(bodies)  # shapes recur
    for _ in range(3):  # walked, walked and compiled, by the shape
        for body in bodies:
            assert outcome(ours, body) == outcome(walk, body)
    cache = decode._ADDRS if kind == "address" else decode._ROUTES
    assert cache.shapes


def test_a_multipath_route_is_walked_not_compiled() -> None:
    multipath = [body for body in route_messages()
                 if reference.decode_route(body, 0, len(body))[1].route["nexthops"]]  # fmt: skip
    assert multipath
    for body in multipath:
        assert flat_shapes.compile_route(body, 0, len(body)) is None
        assert outcome(decode.decode_route, body) == outcome(reference.decode_route, body)


@pytest.mark.parametrize("kind", FLAT)
def test_damaged_addresses_and_routes_decode_as_the_walk_decodes_them(kind: str) -> None:
    messages, ours, walk, header = FLAT[kind]
    rng = random.Random(6)
    originals = messages()
    for _ in range(3000):
        body = rng.choice(originals)
        for _ in range(2):
            ours(body, 0, len(body))
        damaged = _damaged(body, rng, header)
        assert outcome(ours, damaged) == outcome(walk, damaged)


def test_a_length_with_too_many_shapes_stops_compiling(monkeypatch) -> None:
    compiled = []
    cache = link_shapes.ShapeCache(
        reference.decode_route,
        lambda d, o, e: compiled.append(1) or flat_shapes.compile_route(d, o, e),
    )
    bodies = [body for body in route_messages() if len(body) == 44]
    assert len({flat_shapes.compile_route(b, 0, 44).expected for b in bodies}) >= 3
    monkeypatch.setattr(link_shapes, "SHAPES_PER_LENGTH", 1)  # each new shape evicts the last
    for _ in range(50):
        for body in bodies:
            assert repr(cache.decode(body, 0, 44)) == repr(reference.decode_route(body, 0, 44))
    assert len(compiled) == link_shapes.COMPILES_PER_LENGTH
