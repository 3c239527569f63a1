"""release_memory empties every cache a module registered with
shared.caches.forget_me: after a big change their objects, made while the
host was large, would pin pymalloc's arenas. The netlink decoder's caches
are filled here from real messages of this kernel (tests/unit/data/
netlink_capture.bin), each decoded twice (a shape is compiled the second
time its length comes)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from netlink import decode
from persistence.unified import ConfigStore
from shared import caches
from shared.memory import release_memory
from superd.monitor_report import ReportCache
from superd.netstate import NetState
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


class Owner:
    def __init__(self) -> None:
        self.log = {1: "kept"}
        self.lock = threading.Lock()
        self.locked_while_forgetting: bool | None = None
        caches.forget_me(Owner.forget, self, self.lock)

    def forget(self) -> None:
        self.locked_while_forgetting = self.lock.locked()
        self.log.clear()


def test_a_registered_cache_is_forgotten_by_release_memory() -> None:
    owner = Owner()
    release_memory()
    assert owner.log == {}


def test_the_registered_lock_is_held_while_forgetting() -> None:
    owner = Owner()
    release_memory()
    assert owner.locked_while_forgetting is True


def test_a_registration_ends_with_its_owner() -> None:
    before = caches.registered()
    owner = Owner()
    assert caches.registered() == before + 1
    del owner
    gc.collect()
    assert caches.registered() == before


def test_a_registration_without_owner_is_called_without_argument() -> None:
    cache = {"kept": 1}
    caches.forget_me(cache.clear)
    try:
        release_memory()
        assert cache == {}
    finally:
        caches._FORGET[:] = [e for e in caches._FORGET if e[0] != cache.clear]


def test_release_memory_forgets_the_running_store_log(tmp_path: Path) -> None:
    """The names each write changed (persistence.unified.ConfigStore):
    after a big change, thousands of names from the request."""
    store = ConfigStore(tmp_path)
    store.shared_snapshot()  # a write over a known snapshot logs its names
    store.update({"net1": {"bridged": True}})
    assert store.changed_between(0, 1) == {"networks": {"net1"}, "bonds": set()}
    release_memory()
    assert store.changed_between(0, 1) is None  # not known: readers read whole
    store.update({"net2": {"bridged": True}})
    assert store.changed_between(1, 2) == {"networks": {"net2"}, "bonds": set()}


class Reports(ReportCache):
    """The monitor's report half alone: its logs need no kernel."""

    def __init__(self) -> None:
        self._init_reports()


def test_release_memory_forgets_the_ifindexes_each_state_touched() -> None:
    reports = Reports()
    reports._touched(NetState(version=1, links={}, addresses={}, routes={},
                              touched=frozenset({7})))  # fmt: skip
    assert reports.changed_between(0, 1) == {7}
    release_memory()
    assert reports.changed_between(0, 1) is None


def test_release_memory_forgets_the_running_configurations_seen() -> None:
    """Each one a whole host's running configuration (superd.monitor_report
    remembers the last few by identity)."""
    reports = Reports()
    reports.running_names = lambda old, new: {"networks": {"n1"}}
    old, new = {"networks": {}}, {"networks": {"n1": {}}}
    reports._remember(old, 1)
    reports._remember(new, 2)
    assert reports.networks_changed(old, new) == {"n1"}
    release_memory()
    assert reports.networks_changed(old, new) is None
