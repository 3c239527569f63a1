"""Caches and logs that ``shared.memory.release_memory`` empties after a big
change.

A module that keeps a cache of values made while decoding or parsing, or a
bounded log of recent changes, registers how to empty it
(:func:`forget_me`), once, at import or in its owner's ``__init__``. After
a big change (thousands of devices added or removed) such a cache is full
of small objects made during the change, spread over the pymalloc arenas
the change needed: a survivor keeps its whole arena (1 MiB) from going back
to the system. Emptied, a cache refills at its next use, from the arenas in
use; a log emptied answers "not known" until it refills, which its readers
already handle (they fall back to a whole read).

Kept free of imports beyond the standard library's ``threading`` and
``weakref`` so that the decoder and the model can register without loading
``shared.memory`` (ctypes, tracemalloc).
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable
from typing import Any

# each entry: (forget, weak reference to its owner or None, lock or None)
_FORGET: list[tuple[Callable[..., None], weakref.ref | None, Any]] = []
_FORGET_LOCK = threading.Lock()


def forget_me(
    forget: Callable[..., None], owner: object | None = None, lock: Any = None
) -> Callable[..., None]:
    """Register ``forget``, which empties one cache; returns it (usable as
    a decorator).

    Without ``owner`` it is called with no argument. With ``owner`` (the
    instance the cache belongs to) it is called as ``forget(owner)``; the
    owner is held weakly and the registration ends with it. ``lock`` (a
    context manager, e.g. the lock that guards the cache) is held during
    the call. ``forget`` may run in any thread while the cache's users run
    in others: without a lock it must be safe for them (``dict.clear`` on
    a dict they read with ``get`` is)."""
    entry = (forget, None if owner is None else weakref.ref(owner), lock)
    with _FORGET_LOCK:
        _prune()
        _FORGET.append(entry)
    return forget


def _prune() -> None:
    """Forget the registrations whose owner is gone (with the lock held:
    no weakref callback, which could run in a collection inside it)."""
    _FORGET[:] = [entry for entry in _FORGET if entry[1] is None or entry[1]() is not None]


def forget_all() -> None:
    """Empty every registered cache (of the owners still alive)."""
    with _FORGET_LOCK:
        _prune()
        entries = tuple(_FORGET)
    for forget, ref, lock in entries:
        owner = ref() if ref is not None else None
        if ref is not None and owner is None:
            continue
        with lock if lock is not None else contextlib.nullcontext():
            if ref is None:
                forget()
            else:
                forget(owner)


def registered() -> int:
    """How many registrations are alive (for tests)."""
    with _FORGET_LOCK:
        _prune()
        return len(_FORGET)
