"""shared.layered.Layered: a dict whose copy costs the changes since its base."""

from __future__ import annotations

import copy
import random
from types import MappingProxyType

import pytest

from shared import layered as layered_module
from shared.layered import FoldedWalks, Layered, LayeredSet, layered


def same(m: Layered, d: dict) -> None:
    """Equal as a dict is: items, order, length, every view."""
    assert list(m.items()) == list(d.items())
    assert list(m) == list(d)
    assert list(m.keys()) == list(d.keys())
    assert list(m.values()) == list(d.values())
    assert len(m) == len(d)
    assert m == d and d == m
    assert m.folded() == d and list(m.folded()) == list(d)


def random_writes(rng: random.Random, m: Layered, d: dict, steps: int) -> None:
    """The same random writes, copies and look-ups on ``m`` and the dict
    ``d``, every view compared after each step (a stale fold would show)."""
    for _ in range(steps):
        key, op = rng.randrange(45), rng.random()
        if op < 0.4:
            m[key] = d[key] = rng.random()
        elif op < 0.7:
            assert m.pop(key, "none") == d.pop(key, "none")
        elif op < 0.75 and key in d:
            del m[key], d[key]
        elif op < 0.8:
            m = m.copy()  # the copy goes on being written; the old one is left
            d = dict(d)
        else:
            assert (key in m) == (key in d)
            assert m.get(key, "none") == d.get(key, "none")
            if key in d:
                assert m[key] == d[key]
        same(m, d)


def test_a_layered_map_behaves_as_a_dict_under_random_writes_and_copies() -> None:
    rng = random.Random(20261207)
    for _ in range(300):
        base = {k: rng.random() for k in rng.sample(range(40), rng.randrange(0, 30))}
        random_writes(rng, Layered(dict(base)), dict(base), rng.randrange(1, 120))


def test_a_copy_is_independent_of_its_original() -> None:
    m = Layered({1: "a", 2: "b"})
    m[3] = "c"
    c = m.copy()
    c[1], c[4] = "x", "d"
    del c[2], c[3]
    assert dict(m.items()) == {1: "a", 2: "b", 3: "c"}
    assert dict(c.items()) == {1: "x", 4: "d"}


def test_a_copy_shares_the_base_and_copies_only_the_overlay() -> None:
    m = Layered({i: str(i) for i in range(5000)})
    m[7], m[5000] = "seven", "new"
    del m[9]
    c = m.copy()
    assert c.shares_base(m)
    assert (len(c._over), len(c._tail)) == (2, 1)


def test_a_large_overlay_is_folded_into_a_new_base_by_the_copy() -> None:
    m = Layered({i: i for i in range(320)})
    limit = layered_module.FOLD_MIN + 320 // layered_module.FOLD_SHARE
    for i in range(limit + 1):
        m[1000 + i] = i
    c = m.copy()
    assert not c.shares_base(m)
    assert (c._over, c._tail) == ({}, {})
    assert list(c.items()) == list(m.items())


def test_a_key_deleted_and_set_again_goes_to_the_end_as_in_a_dict() -> None:
    m, d = Layered({1: "a", 2: "b", 3: "c"}), {1: "a", 2: "b", 3: "c"}
    del m[1], d[1]
    m[1] = d[1] = "again"
    m[2] = d[2] = "kept in place"
    same(m, d)
    assert list(m) == [2, 3, 1]


def test_missing_keys_raise_as_in_a_dict() -> None:
    m = Layered({1: "a"})
    del m[1]
    with pytest.raises(KeyError):
        m[1]
    with pytest.raises(KeyError):
        del m[1]
    with pytest.raises(KeyError):
        m.pop(1)
    assert m.get(1) is None and 1 not in m


def test_a_read_only_proxy_copies_into_a_layered_map() -> None:
    """How the monitor's copy-on-write (``writable``: ``proxy.copy()``)
    gets a layered copy without knowing the type."""
    m = Layered({i: i for i in range(100)})
    m[1] = "one"
    c = MappingProxyType(m).copy()
    assert isinstance(c, Layered) and c.shares_base(m) and c == m


def test_layered_takes_any_mapping_and_keeps_a_layered_one() -> None:
    m = Layered({1: 2})
    assert layered(m) is m
    from_proxy = layered(MappingProxyType({1: 2, 3: 4}))
    assert isinstance(from_proxy, Layered) and list(from_proxy.items()) == [(1, 2), (3, 4)]
    assert list(layered({5: 6}).items()) == [(5, 6)]


def test_set_operations_on_keys_work_as_a_dicts() -> None:
    m = Layered({1: 0, 2: 0, 3: 0})
    del m[2]
    m[4] = 0
    assert {1, 2, 3, 4}.difference(m.keys()) == {2}
    assert m.keys() - {1} == {3, 4}


def test_a_deep_copy_keeps_the_deleted_keys_deleted() -> None:
    m = Layered({1: "a", 2: "b", 3: "c"})
    del m[2]
    m[4] = "d"
    twin = copy.deepcopy(m)
    assert list(twin.items()) == [(1, "a"), (3, "c"), (4, "d")] and len(twin) == 3


def test_a_map_with_folded_walks_behaves_as_a_dict_under_random_writes_and_walks() -> None:
    rng = random.Random(2026120702)
    for _ in range(300):
        base = {k: rng.random() for k in rng.sample(range(40), rng.randrange(0, 30))}
        before = dict(base)
        # its copies are plain Layered maps from there on
        random_writes(rng, FoldedWalks(base), dict(base), rng.randrange(1, 60))
        assert base == before  # the base never written


def test_folded_walks_fold_once_per_version_and_leave_the_base() -> None:
    base = {i: str(i) for i in range(200)}
    m = FoldedWalks(base)
    assert list(m.items()) == list(base.items()) and m._walk is base  # nothing to fold
    m[200] = "new"
    del m[3]
    walk = dict(m.items())
    assert m._walk is not base and m._walk == walk
    assert list(m.values())[-1] == "new" and m._walk is m._walk  # kept for the next walk
    folded = m._walk
    assert m.keys() == walk.keys() and m._walk is folded
    assert m == walk and walk == m and not (m != walk)
    m[201] = "later"
    assert {3, 5, 201, 999} & m.keys() == {5, 201} and m._walk is None  # looked up, not folded
    assert len(base) == 200 and 3 in base and 200 not in base


def test_a_copy_of_folded_walks_is_a_plain_layered_map_sharing_the_base() -> None:
    m = FoldedWalks({i: i for i in range(100)})
    m[100] = 100
    c = m.copy()
    assert type(c) is Layered and c.shares_base(m) and c == m


def test_a_layered_set_moved_at_random_equals_a_frozenset_moved_so() -> None:
    rng = random.Random(7)
    names = [f"bn{i}" for i in range(60)]
    for _ in range(200):
        expected = frozenset(rng.sample(names, rng.randrange(0, 40)))
        s = LayeredSet(expected)
        for _ in range(rng.randrange(1, 80)):
            added = set(rng.sample(names, rng.randrange(0, 3)))
            removed = set(rng.sample(names, rng.randrange(0, 3)))
            s = s.moved(added, removed)
            expected = (expected - (removed - added)) | added  # in both: in
            assert s == expected and expected == s and len(s) == len(expected)
            assert sorted(s) == sorted(expected)
            assert all((name in s) == (name in expected) for name in names)
            assert s & {"bn1", "bn2"} == expected & {"bn1", "bn2"}


def test_a_moved_set_shares_its_base_until_the_overlay_is_folded() -> None:
    s = LayeredSet(f"bn{i}" for i in range(5000))
    t = s.moved({"bnX"}, {"bn7"})
    assert t._base is s._base and "bnX" in t and "bn7" not in t and "bn7" in s
    limit = layered_module.FOLD_MIN + 5000 // layered_module.FOLD_SHARE
    for i in range(limit + 1):
        t = t.moved({f"new{i}"}, set())
    assert t._base is not s._base and len(t) == 5000 - 1 + 1 + limit + 1


def test_the_planners_snapshot_takes_a_layered_set_of_marked_devices() -> None:
    """superd's rollback and restore plan with the monitor's marked devices."""
    from shared.netmodel.snapshot import NetinfoSnapshot

    owned = LayeredSet({"bn1", "bn2"}).moved({"bn3"}, {"bn1"})
    snapshot = NetinfoSnapshot.from_caps({"bridges": {}}, owned)
    assert snapshot.owned == frozenset({"bn2", "bn3"}) and type(snapshot.owned) is frozenset


def test_folded_walks_derive_shares_the_base_and_leaves_the_original() -> None:
    base = {key: key * 2 for key in range(200)}
    first = FoldedWalks(base)
    first[3], first[500] = "three", "new"
    nxt = first.derive()
    nxt[4] = "four"
    del nxt[500]
    assert type(nxt) is FoldedWalks and nxt.shares_base(first)
    same(first, {**base, 3: "three", 500: "new"})
    same(nxt, {**base, 3: "three", 4: "four"})
    assert base == {key: key * 2 for key in range(200)}  # never written


def test_folded_walks_derive_takes_a_walks_fold_as_its_base() -> None:
    first = FoldedWalks({key: key for key in range(200)})
    first[7] = "seven"
    walk = first.walked()
    assert first.walked() is walk and list(first.items()) == list(walk.items())
    nxt = first.derive()
    assert nxt._base is walk and not nxt._over and not nxt._tail
    nxt[8] = "eight"
    assert walk[8] == 8 and first[8] == 8  # the fold is not written either


def test_folded_walks_derive_folds_past_the_overlays_share(monkeypatch) -> None:
    monkeypatch.setattr(layered_module, "FOLD_MIN", 4)
    first = FoldedWalks({key: key for key in range(64)})
    for key in range(10):
        first[key] = -key
    nxt = first.derive()
    assert not nxt.shares_base(first) and not nxt._over
    same(nxt, {**{key: key for key in range(64)}, **{key: -key for key in range(10)}})
