"""A mapping whose copy costs the changes, not the size: a frozen base dict
and a small overlay of what changed since.

The monitor publishes a new state per batch of notifications; each batch
used to copy the host-sized maps it writes (links, addresses, routes and
their indexes) and dropping the state before freed them again: both walk
every entry (one reference count each, in cold memory), ~1 ms per
one-network change beside 5,000 bridges. A :class:`Layered` copy shares
the base dict and copies only the overlay; when the overlay grows past a
fraction of the base, :meth:`copy` folds it into a new base (a block copy
of the dict), so the amortised cost per change stays constant.

It behaves as a dict: same items, same iteration order (a value replaced
keeps its key's place; a key deleted and set again goes to the end), so
readers that take a mapping see no difference. The base is never written:
several layered maps (the states of consecutive versions) share it.
``MappingProxyType(layered).copy()`` calls :meth:`copy`, which is how the
state's copy-on-write (``superd.netstate_routes.writable``) gets a layered
copy without knowing about it.
"""

from __future__ import annotations

from collections.abc import (
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    MutableMapping,
    ValuesView,
)
from collections.abc import Set as AbstractSet
from types import MappingProxyType
from typing import Any

__all__ = ["FoldedWalks", "Layered", "LayeredSet", "encodable", "layered", "plain"]


class _Marker:
    """A marker that stays itself through ``copy.deepcopy`` (a copied
    overlay must still say which base keys are gone)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __reduce__(self) -> str:
        return self.name  # the module's global of that name: itself

    def __repr__(self) -> str:
        return self.name


_MISS = _Marker("_MISS")  # not in the overlay
_GONE = _Marker("_GONE")  # a base key deleted
FOLD_MIN = 64  # overlay entries always kept unfolded (a small map is folded rarely)
FOLD_SHARE = 32  # … plus the base's size over this: a fold per ~1/32 of the host changed


class Layered(MutableMapping):
    """A dict-like mapping: see the module docstring. Not thread-safe for
    writes (as a dict being written is not); a frozen one is read-only."""

    __slots__ = ("_base", "_over", "_tail", "_len")

    def __init__(self, base: dict | None = None) -> None:
        """``base`` is taken, not copied: nothing may write it afterwards."""
        self._base: dict = {} if base is None else base
        self._over: dict = {}  # base key → its value now, or _GONE
        self._tail: dict = {}  # keys after the base's (new, or deleted and set again)
        self._len = len(self._base)

    # -- reading ----------------------------------------------------------
    def __getitem__(self, key: Any) -> Any:
        value = self._tail.get(key, _MISS)
        if value is not _MISS:
            return value
        value = self._over.get(key, _MISS)
        if value is _MISS:
            return self._base[key]
        if value is _GONE:
            raise KeyError(key)
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        value = self._tail.get(key, _MISS)
        if value is not _MISS:
            return value
        value = self._over.get(key, _MISS)
        if value is _MISS:
            return self._base.get(key, default)
        return default if value is _GONE else value

    def __contains__(self, key: Any) -> bool:
        if key in self._tail:
            return True
        value = self._over.get(key, _MISS)
        return key in self._base if value is _MISS else value is not _GONE

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator:
        over = self._over
        if over:
            for key in self._base:
                if over.get(key) is not _GONE:
                    yield key
        else:
            yield from self._base
        yield from self._tail

    def keys(self) -> KeysView:
        return _Keys(self)

    def values(self) -> ValuesView:
        return _Values(self)

    def items(self) -> ItemsView:
        return _Items(self)

    def __repr__(self) -> str:
        return f"Layered({dict(self.items())!r})"

    # -- writing ----------------------------------------------------------
    def __setitem__(self, key: Any, value: Any) -> None:
        tail = self._tail
        if key in tail:
            tail[key] = value
            return
        over = self._over
        old = over.get(key, _MISS)
        if old is _GONE or (old is _MISS and key not in self._base):
            tail[key] = value  # new, or deleted and set again: at the end, as a dict does
            self._len += 1
        else:
            over[key] = value  # in its place

    def __delitem__(self, key: Any) -> None:
        tail = self._tail
        if key in tail:
            del tail[key]  # a base key set again keeps its _GONE
        else:
            old = self._over.get(key, _MISS)
            if old is _GONE or (old is _MISS and key not in self._base):
                raise KeyError(key)
            self._over[key] = _GONE
        self._len -= 1

    def pop(self, key: Any, default: Any = _MISS) -> Any:
        value = self.get(key, _MISS)
        if value is _MISS:
            if default is _MISS:
                raise KeyError(key)
            return default
        del self[key]
        return value

    def clear(self) -> None:
        self._base, self._over, self._tail, self._len = {}, {}, {}, 0

    # -- copying ----------------------------------------------------------
    def overgrown(self) -> bool:
        """Whether the overlay outgrew its share of the base (time to fold)."""
        return len(self._over) + len(self._tail) > FOLD_MIN + len(self._base) // FOLD_SHARE

    def copy(self) -> Layered:
        """A writable copy sharing the base: O(overlay). Past its share,
        the overlay is folded into a new base instead (a dict block copy)."""
        new = Layered.__new__(Layered)
        if self.overgrown():
            new._base = self.folded()
            new._over, new._tail = {}, {}
        else:
            new._base, new._over, new._tail = self._base, self._over.copy(), self._tail.copy()
        new._len = self._len
        return new

    def folded(self) -> dict:
        """A plain dict of the same items in the same order."""
        folded = self._base.copy()
        for key, value in self._over.items():
            if value is _GONE:
                del folded[key]
            else:
                folded[key] = value
        folded.update(self._tail)
        return folded

    def shares_base(self, other: Layered) -> bool:
        """Whether both are layered over the same base (tests, measurements)."""
        return self._base is other._base


class FoldedWalks(Layered):
    """A :class:`Layered` for a map mostly read after a few writes (a plan's
    expected running configuration: the store's networks with the plan's
    replayed): look-ups and writes as a Layered, but a full walk (its
    iteration, views, equality) goes over a folded dict, made at the first
    walk after a write and kept. A walk then runs at a dict's speed (a
    Layered's generator costs 1.5-2.5x on 5,000 entries) for one block copy,
    and a map never walked costs no copy at all. The fold is not shared
    with the copies."""

    __slots__ = ("_walk",)

    def __init__(self, base: dict | None = None) -> None:
        super().__init__(base)
        self._walk: dict | None = None

    def _fold(self) -> dict:
        walk = self._walk
        if walk is None:
            walk = self._walk = self.folded() if self._over or self._tail else self._base
        return walk

    def __iter__(self) -> Iterator:
        return iter(self._fold())

    # keys() stays the Layered's view: set operations with a few names
    # (``added & nets.keys()``) look each up, where a fold would copy the host

    def values(self) -> ValuesView:
        return self._fold().values()

    def items(self) -> ItemsView:
        return self._fold().items()

    def __eq__(self, other: object) -> bool:
        return self._fold() == other

    __hash__ = None  # type: ignore[assignment]

    def __setitem__(self, key: Any, value: Any) -> None:
        self._walk = None
        super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        self._walk = None
        super().__delitem__(key)

    def clear(self) -> None:
        super().clear()
        self._walk = None

    def __repr__(self) -> str:
        return f"FoldedWalks({self._fold()!r})"

    def walked(self) -> dict:
        """The items as the dict this map's walks go over: shared with
        them, read-only (for an encoder: no copy once a walk has folded)."""
        return self._fold()

    def derive(self) -> FoldedWalks:
        """A writable FoldedWalks of the same items for the next version
        (``copy()`` gives a plain Layered): the fold a walk already made is
        its base, else this one's base is shared (folded past the overlay's
        share, as :meth:`Layered.copy`)."""
        new = FoldedWalks.__new__(FoldedWalks)
        walk, over, tail = self._walk, self._over, self._tail
        if walk is not None:
            new._base, new._over, new._tail = walk, {}, {}
        elif self.overgrown():
            new._base, new._over, new._tail = self.folded(), {}, {}
        else:
            new._base, new._over, new._tail = self._base, over.copy(), tail.copy()
        new._len, new._walk = self._len, None
        return new


class _Keys(KeysView):
    __slots__ = ()
    _mapping: Layered

    def __iter__(self) -> Iterator:
        return iter(self._mapping)


def _pairs(m: Layered) -> Iterator[tuple[Any, Any]]:
    """(key, value) of ``m`` in dict order: the base's with the overlay's
    values and without its deletions, then the keys added since."""
    over = m._over
    if over:
        for key, value in m._base.items():
            now = over.get(key, _MISS)
            if now is _MISS:
                yield key, value
            elif now is not _GONE:
                yield key, now
    else:
        yield from m._base.items()
    yield from m._tail.items()


class _Values(ValuesView):
    __slots__ = ()
    _mapping: Layered

    def __iter__(self) -> Iterator:
        for _key, value in _pairs(self._mapping):
            yield value


class _Items(ItemsView):
    __slots__ = ()
    _mapping: Layered

    def __iter__(self) -> Iterator:
        return _pairs(self._mapping)


def layered(mapping: Mapping) -> Layered:
    """``mapping`` as a :class:`Layered` (itself if it is one)."""
    if isinstance(mapping, Layered):
        return mapping
    # a proxy's copy() is its mapping's: a block copy of a dict (dict(proxy)
    # would insert key by key), a layered copy of a Layered
    plain = type(mapping) in (dict, MappingProxyType)
    copied = mapping.copy() if plain else dict(mapping)  # type: ignore[attr-defined]
    return copied if isinstance(copied, Layered) else Layered(copied)


def plain(value: Any) -> Any:
    """``value``, a Layered folded into a dict: for what takes only real
    dicts (orjson, code that copies ``isinstance(v, dict)`` values)."""
    return value.folded() if isinstance(value, Layered) else value


def encodable(value: Any) -> Any:
    """``value`` as :func:`plain`, but a FoldedWalks gives its walks' dict,
    shared: for an encoder only (never written)."""
    return value.walked() if isinstance(value, FoldedWalks) else plain(value)


class LayeredSet(AbstractSet):
    """A frozenset-like set whose next version costs the change: a frozen
    base, the members added since (not in the base) and the base members
    removed since. Immutable; :meth:`moved` gives the next one (folded into
    a new base past the overlay's share, as :meth:`Layered.copy`). Set
    operations with other sets give frozensets."""

    __slots__ = ("_base", "_added", "_removed")

    def __init__(self, base: Iterable = frozenset()) -> None:
        self._base = base if type(base) is frozenset else frozenset(base)
        self._added: frozenset = frozenset()
        self._removed: frozenset = frozenset()

    def __contains__(self, item: object) -> bool:
        return item in self._added or (item in self._base and item not in self._removed)

    def __iter__(self) -> Iterator:
        removed = self._removed
        if removed:
            yield from (item for item in self._base if item not in removed)
        else:
            yield from self._base
        yield from self._added

    def __len__(self) -> int:
        return len(self._base) - len(self._removed) + len(self._added)

    @classmethod
    def _from_iterable(cls, it: Iterable) -> frozenset:
        return frozenset(it)

    __hash__ = AbstractSet._hash

    def __repr__(self) -> str:
        return f"LayeredSet({set(self)!r})"

    def moved(self, added: AbstractSet, removed: AbstractSet) -> LayeredSet:
        """This set with ``added`` in and ``removed`` out (in both: in)."""
        base, out = self._base, removed - added
        new = LayeredSet.__new__(LayeredSet)
        new._base = base
        new._added = (self._added - out) | {item for item in added if item not in base}
        new._removed = (self._removed - added) | {item for item in out if item in base}
        if len(new._added) + len(new._removed) > FOLD_MIN + len(base) // FOLD_SHARE:
            return LayeredSet(frozenset(new))
        return new
