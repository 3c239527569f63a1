"""release_memory empties every cache a module registered with
shared.caches.forget_me: after a big change their objects, made while the
host was large, would pin pymalloc's arenas. The netlink decoder's caches
are filled here from real messages of this kernel (tests/unit/data/
netlink_capture.bin), each decoded twice (a shape is compiled the second
time its length comes)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from netlink import decode
from shared import caches
from shared.memory import release_memory
from tests.unit.test_netlink_decode import addr_messages, link_messages, route_messages


def decode_twice(decoder: Callable, bodies: list[bytes]) -> list:
    return [decoder(body, 0, len(body)) for body in bodies + bodies]


@pytest.fixture(autouse=True)
def empty_caches() -> Iterator[None]:
    release_memory()
    yield
    release_memory()


def test_release_memory_forgets_the_compiled_link_shapes() -> None:
    decode_twice(decode.decode_link, link_messages())
    assert decode._LINKS.shapes and decode._LINKS.compiles
    release_memory()
    assert not decode._LINKS.shapes
    assert not decode._LINKS.seen and not decode._LINKS.compiles


def test_release_memory_forgets_the_compiled_address_shapes() -> None:
    decode_twice(decode.decode_addr, addr_messages())
    assert decode._ADDRS.shapes
    release_memory()
    assert not decode._ADDRS.shapes and not decode._ADDRS.seen


def test_release_memory_forgets_the_compiled_route_shapes() -> None:
    decode_twice(decode.decode_route, route_messages())
    assert decode._ROUTES.shapes
    release_memory()
    assert not decode._ROUTES.shapes and not decode._ROUTES.seen


def test_release_memory_forgets_the_shared_linkinfo_values() -> None:
    decode_twice(decode.decode_link, link_messages())
    assert decode._SHARED
    release_memory()
    assert not decode._SHARED


def test_release_memory_forgets_the_decoded_ipv6_devconfs() -> None:
    decode_twice(decode.decode_link, link_messages())
    assert decode._DEVCONFS
    release_memory()
    assert not decode._DEVCONFS


def test_messages_decode_the_same_after_the_caches_are_forgotten() -> None:
    bodies = link_messages() + addr_messages() + route_messages()
    decoders = [decode.decode_link] * len(link_messages()) + [decode.decode_addr] * len(
        addr_messages()
    ) + [decode.decode_route] * len(route_messages())  # fmt: skip
    before = [d(b, 0, len(b)) for d, b in zip(decoders * 2, bodies * 2, strict=True)]
    release_memory()
    after = [d(b, 0, len(b)) for d, b in zip(decoders * 2, bodies * 2, strict=True)]
    assert after == before


def test_a_registered_cache_is_forgotten_by_release_memory() -> None:
    cache = {"kept": 1}
    forget = caches.forget_me(cache.clear)
    try:
        release_memory()
        assert cache == {}
    finally:
        caches._FORGET.remove(forget)
