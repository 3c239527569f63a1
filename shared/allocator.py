"""Small Python objects from glibc's ``malloc`` for the length of a big
change, from pymalloc the rest of the time.

Why: pymalloc returns a 1 MiB arena to the system only once every object in
it is freed. A big change (adding or removing thousands of networks) needs
many more arenas than idle superd, and the few objects it leaves behind
(the state and report of the host after it, the logs of recent changes)
sit in those arenas and keep them: after removing 1,000 networks superd
kept ~10 MiB of arenas holding ~0.3 MB of objects (benchmarks/README.md,
rounds 7 and 8). glibc's heap, on the other hand, gives back the free
pages between live chunks (``malloc_trim``, after every big change).
``PYTHONMALLOC=malloc`` for the whole process costs 20-40 % more CPU in
superd's Python on every request; this costs it only during big changes.

How: the object and memory domains' ``malloc``/``calloc`` are pointed at
the raw domain's (``PyMem_RawMalloc``, i.e. glibc) while ``realloc`` and
``free`` stay pymalloc's, which already route a block by its address
(pymalloc hands blocks above 512 bytes to the raw domain in the same way):
every block, whichever allocator made it, is freed by the one that owns it.
Nothing but function pointers of CPython's own allocators is installed (no
Python callback inside the allocator), and only while the domains hold
CPython's plain allocators: under debug hooks (``PYTHONMALLOC=debug``,
``-X dev``), ``tracemalloc`` or ``PYTHONMALLOC=malloc`` nothing changes,
nor with ``NETRELOAD_MALLOC_WINDOW=0`` in the environment (an operator's
way out, and the A/B of benchmarks/README.md's round 8).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import threading
from collections.abc import Iterator

SWITCH_ENV = "NETRELOAD_MALLOC_WINDOW"
# A request frame from this size on is decoded inside a window (superd's
# server, through ``shared.wire.recv_frame(..., window=True)``): a big
# change's request decoded on pymalloc left its names, still held after
# the change, pinning 4 arenas after removing 5,000 networks, and whatever
# the change kept afterwards filled the holes of the others (README, round
# 10). ~450 bytes per network in an apply_plan: 64 KiB is ~145 networks,
# a one-network request ~1 KiB.
BIG_FRAME = 1 << 16
# Include/cpython/pymem.h: PyMemAllocatorDomain
DOMAIN_RAW, DOMAIN_MEM, DOMAIN_OBJ = 0, 1, 2


class _MemAllocatorEx(ctypes.Structure):
    """``PyMemAllocatorEx``: a context and four function pointers (kept as
    plain addresses: they are only ever copied between domains)."""

    _fields_ = [("ctx", ctypes.c_void_p), ("malloc", ctypes.c_void_p),
                ("calloc", ctypes.c_void_p), ("realloc", ctypes.c_void_p),
                ("free", ctypes.c_void_p)]  # fmt: skip

    def key(self) -> tuple[int | None, ...]:
        return (self.ctx, self.malloc, self.calloc, self.realloc, self.free)


def _get(domain: int) -> _MemAllocatorEx:
    allocator = _MemAllocatorEx()
    # pythonapi is a PyDLL: the GIL stays held, as these two functions need
    ctypes.pythonapi.PyMem_GetAllocator(ctypes.c_int(domain), ctypes.byref(allocator))
    return allocator


def _set(domain: int, allocator: _MemAllocatorEx) -> None:
    ctypes.pythonapi.PyMem_SetAllocator(ctypes.c_int(domain), ctypes.byref(allocator))


@functools.cache
def _plain() -> dict[int, _MemAllocatorEx] | None:
    """The domains' allocators at first use if they are CPython's plain
    ones (no context: a debug or tracing hook has one) and pymalloc serves
    objects (its ``malloc`` is not the raw one); None otherwise."""
    found = {domain: _get(domain) for domain in (DOMAIN_RAW, DOMAIN_MEM, DOMAIN_OBJ)}
    if any(allocator.ctx for allocator in found.values()):
        return None
    if found[DOMAIN_OBJ].malloc == found[DOMAIN_RAW].malloc:  # PYTHONMALLOC=malloc
        return None
    return found


_LOCK = threading.Lock()
_installed: dict[int, _MemAllocatorEx] = {}


def _prepare() -> None:
    """Make, at import (superd's start), the few long-lived objects the
    first window would otherwise make: ctypes' function objects (each with
    a dict) and ``_plain``'s answer. Made at the first big change, just
    before the window opens, they landed among the objects of the change's
    decoded request and, once those were freed, kept a pymalloc arena of
    1 MiB to themselves (benchmarks/README.md, round 10). Not while
    tracemalloc traces: ``_plain`` would remember that the allocators are
    hooked."""
    import tracemalloc

    ctypes.pythonapi.PyMem_GetAllocator  # noqa: B018 - resolved once, kept by ctypes
    ctypes.pythonapi.PyMem_SetAllocator  # noqa: B018
    if not tracemalloc.is_tracing():
        _plain()


_prepare()


def begin_malloc_window() -> bool:
    """From now on, new small objects come from glibc (see the module's
    docstring). Whether the window is open (False when the allocators are
    not CPython's plain pymalloc ones, while tracemalloc traces, or when
    ``NETRELOAD_MALLOC_WINDOW=0``)."""
    import tracemalloc  # already loaded by shared.memory in superd

    if os.environ.get(SWITCH_ENV) == "0":
        return False
    with _LOCK:
        if _installed:
            return True
        plain = _plain()
        if plain is None or tracemalloc.is_tracing():
            return False
        if any(_get(domain).key() != plain[domain].key() for domain in (DOMAIN_MEM, DOMAIN_OBJ)):
            return False  # someone else hooked the domains since
        raw = plain[DOMAIN_RAW]
        for domain in (DOMAIN_MEM, DOMAIN_OBJ):
            own = plain[domain]
            window = _MemAllocatorEx(own.ctx, raw.malloc, raw.calloc, own.realloc, own.free)
            _set(domain, window)
            _installed[domain] = window
        return True


def end_malloc_window() -> bool:
    """Back to pymalloc for new small objects; the window's blocks stay in
    glibc's heap until freed. Whether pymalloc is back (not when a hook,
    tracemalloc, was installed over the window meanwhile: it keeps it)."""
    with _LOCK:
        if not _installed:
            return False
        plain = _plain()
        assert plain is not None
        restored = True
        for domain, window in _installed.items():
            if _get(domain).key() == window.key():
                _set(domain, plain[domain])
            else:
                restored = False
        _installed.clear()
        return restored


def in_malloc_window() -> bool:
    with _LOCK:
        return bool(_installed)


@contextlib.contextmanager
def malloc_window(wanted: bool = True) -> Iterator[bool]:
    """``with malloc_window(big):`` — the block's new small objects from
    glibc if ``wanted`` (a no-op otherwise, and when already inside one)."""
    opened = wanted and not in_malloc_window() and begin_malloc_window()
    try:
        yield opened
    finally:
        if opened:
            end_malloc_window()
