"""release_memory rebuilds the containers registered with
shared.caches.compact_me when their table outgrew their items: a dict or a
set whose thousands of entries were deleted one by one keeps its table
(CPython never shrinks one on deletion), in glibc's heap, after a big
removal. Sizes are read back from the objects themselves (sys.getsizeof)."""

from __future__ import annotations

import gc
import sys
import threading

from shared import caches
from shared.memory import release_memory


class Holder:
    def __init__(self, n: int) -> None:
        self.by_name = {f"bn{i}": i for i in range(n)}
        self.names = set(self.by_name)


def by_name(holder: Holder, lock: object = None) -> None:
    caches.compact_me(holder, lambda h: h.by_name, lambda h, v: setattr(h, "by_name", v), lock)


def names(holder: Holder) -> None:
    caches.compact_me(holder, lambda h: h.names, lambda h, v: setattr(h, "names", v))


def emptied_but_three(holder: Holder) -> None:
    for name in list(holder.by_name)[3:]:
        del holder.by_name[name]
        holder.names.discard(name)


def test_a_dict_emptied_one_by_one_is_rebuilt_to_its_size() -> None:
    holder = Holder(5000)
    by_name(holder)
    emptied_but_three(holder)
    grown = sys.getsizeof(holder.by_name)
    release_memory()
    assert holder.by_name == {"bn0": 0, "bn1": 1, "bn2": 2}
    assert list(holder.by_name) == ["bn0", "bn1", "bn2"]  # its order kept
    assert sys.getsizeof(holder.by_name) * 20 < grown


def test_a_set_emptied_one_by_one_is_rebuilt_to_its_size() -> None:
    holder = Holder(5000)
    names(holder)
    emptied_but_three(holder)
    grown = sys.getsizeof(holder.names)
    release_memory()
    assert holder.names == {"bn0", "bn1", "bn2"}
    assert sys.getsizeof(holder.names) * 20 < grown


def test_a_full_container_is_left_as_it_is() -> None:
    holder = Holder(5000)
    by_name(holder)
    names(holder)
    table, members = holder.by_name, holder.names
    release_memory()
    assert holder.by_name is table and holder.names is members


def test_only_dicts_and_sets_are_rebuilt() -> None:
    emptied: dict = {i: i for i in range(5000)}
    for i in range(4997):
        del emptied[i]

    class Mapping(dict):  # a subclass may hold more than its items
        pass

    sub = Mapping(emptied)
    assert caches.compacted(sub) is sub
    items = [1, 2]
    assert caches.compacted(items) is items
    assert caches.compacted(emptied) is not emptied


def test_compaction_holds_the_registered_lock() -> None:
    holder = Holder(5000)
    seen = []

    class Lock:
        def __enter__(self) -> None:
            seen.append("held")

        def __exit__(self, *exc: object) -> None:
            seen.append("released")

    by_name(holder, Lock())
    release_memory()
    assert seen == ["held", "released"]


def test_a_compaction_registration_ends_with_its_owner() -> None:
    holder = Holder(10)
    by_name(holder)
    names(holder)
    before = caches.registered()
    del holder
    gc.collect()
    assert caches.registered() == before - 2


def test_compaction_under_a_lock_loses_no_concurrent_write() -> None:
    holder = Holder(5000)
    lock = threading.Lock()
    by_name(holder, lock)
    emptied_but_three(holder)

    def writer() -> None:
        for i in range(2000):
            with lock:
                holder.by_name[f"new{i}"] = i

    thread = threading.Thread(target=writer)
    thread.start()
    for _ in range(20):
        release_memory()
    thread.join()
    assert len(holder.by_name) == 2003
