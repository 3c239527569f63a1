"""Caches that ``shared.memory.release_memory`` empties after a big change.

A module that keeps a cache of values made while decoding or parsing
registers how to empty it (:func:`forget_me`), once, at import. After a big
change (thousands of devices added or removed) such a cache is full of small
objects made during the change, spread over the pymalloc arenas the change
needed: a survivor keeps its whole arena (1 MiB) from going back to the
system. Emptied, a cache refills on its next use, from the arenas in use.

Kept free of imports so that the decoder and the model can register
without loading ``shared.memory`` (ctypes, tracemalloc).
"""

from __future__ import annotations

from collections.abc import Callable

_FORGET: list[Callable[[], None]] = []


def forget_me(forget: Callable[[], None]) -> Callable[[], None]:
    """Register ``forget`` (empties one cache; safe from any thread, the
    cache's users may run meanwhile); returns it, to be usable as a
    decorator."""
    _FORGET.append(forget)
    return forget


def forget_all() -> None:
    """Empty every registered cache."""
    for forget in tuple(_FORGET):
        forget()


def registered() -> tuple[Callable[[], None], ...]:
    return tuple(_FORGET)
