"""Giving memory back to the system after a burst (both daemons), and a
debug-only hook showing what a daemon keeps.

CPython frees its objects into glibc's heap, and glibc keeps freed pages
mapped unless the free space happens to sit at the top of an arena. After a
burst that allocated much and left little (a thousand-device change in
superd, a flood of sockets whose 256 KiB TLS buffers came from the heap in
frontd), the process would stay as large as at the burst's peak, and the
next burst would not reuse all of it: measured for frontd, a median of
+18.6 MiB (up to +63 MiB on a loaded machine) of free heap held after 1,100
sockets that never started TLS, +1.7 MiB once trimmed.

``NETRELOAD_TRACEMALLOC=FILE`` (debug only, read once at superd's start:
:func:`install_debug_snapshots`) traces every Python allocation (slow:
several times the CPU) and, on each ``SIGUSR2``, appends to FILE the
process's VmRSS, glibc's heap and pymalloc's arenas, before and after
:func:`release_memory`; the first ``SIGUSR2`` takes the baseline snapshot,
each later one writes what is allocated since, by line and by traceback
(``NETRELOAD_TRACEMALLOC_FRAMES``, default 8). With
``NETRELOAD_TRACEMALLOC_FRAMES=0`` nothing is traced (no slowdown) and each
dump has the sizes and pymalloc's arenas only (CPython reports its arenas
only when tracemalloc is off). ``NETRELOAD_TRACEMALLOC_HOLDERS=K`` (traced
only) adds, for the K tracebacks that grew most, what holds one of their
objects (``shared.memory_holders``: slow, it walks every object);
``NETRELOAD_TRACEMALLOC_ARENAS=1`` (untraced only) counts the live objects
by pymalloc arena and shows what holds the sparsest arenas, then the dicts
and sets whose table outgrew their items (and what holds them). Each
dump ends with a line ``=== end``. Without the variable nothing is traced
and ``SIGUSR2`` keeps its default action.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import linecache
import os
import re
import signal
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import TextIO

from shared import caches

DEBUG_ENV = "NETRELOAD_TRACEMALLOC"
FRAMES_ENV = "NETRELOAD_TRACEMALLOC_FRAMES"
HOLDERS_ENV = "NETRELOAD_TRACEMALLOC_HOLDERS"
ARENAS_ENV = "NETRELOAD_TRACEMALLOC_ARENAS"


@functools.cache
def _libc() -> ctypes.CDLL:
    """One handle (each new one is a few hundred small objects: made during
    a dump after a big change, they would be survivors of their own)."""
    return ctypes.CDLL(None)


@functools.cache
def _malloc_trim():  # noqa: ANN202 - a ctypes function, or None off glibc
    return getattr(_libc(), "malloc_trim", None)


def forget_caches() -> None:
    """Empty the caches registered with ``shared.caches.forget_me`` (the
    parsed addresses, the netlink decoder's shapes and shared values...):
    after a big change their small objects, made while the host was large,
    would be what pins pymalloc's arenas (an arena goes back to the system
    only when every object in it is freed: measured, 11 arenas of 1 MiB
    kept by 0.7 MB of survivors after removing 1,000 networks). Each
    refills at its next use."""
    caches.forget_all()


M_ARENA_MAX = -8  # mallopt's parameter number (malloc.h)


def use_one_malloc_arena() -> bool:
    """Make every thread allocate from glibc's main arena (``mallopt(M_ARENA_MAX,
    1)``); call it before any thread starts. Whether it was set (not off
    glibc, nor when the operator set ``MALLOC_ARENA_MAX``: theirs wins).

    Why: ``malloc_trim`` returns the free pages of every arena but leaves
    the free space at the top of a thread's arena; that space is returned
    only when a ``free`` finds it above the trim threshold, which glibc
    raises (up to 64 MiB) each time a large mmapped block is freed. After
    removing 1,000 networks superd's worker threads kept 14 MiB that way
    (``NETRELOAD_TRACEMALLOC``'s per-arena line). In the main arena the top
    is trimmed too. The cost, threads sharing one arena's lock, is nil in
    a process whose threads take turns under the GIL (measured: README)."""
    _malloc_trim()  # resolved now, not among a big change's leftovers (as shared.allocator)
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    mallopt = getattr(_libc(), "mallopt", None)
    return mallopt is not None and mallopt(M_ARENA_MAX, 1) == 1


def release_memory() -> None:
    """Forget the caches, collect cycles, then return free heap pages to the
    system."""
    forget_caches()
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]  # fmt: skip


def heap_info() -> dict[str, int]:
    """glibc's ``mallinfo2()`` (glibc ≥ 2.33; empty elsewhere): bytes of
    the main heap (``arena``), mmapped blocks (``hblkhd``), in use
    (``uordblks``), free but kept (``fordblks``)."""
    function = getattr(_libc(), "mallinfo2", None)
    if function is None:
        return {}
    function.restype = _MallInfo2
    info = function()
    return {"arena": info.arena, "hblkhd": info.hblkhd, "uordblks": info.uordblks,
            "fordblks": info.fordblks}  # fmt: skip


def malloc_heaps() -> list[dict[str, int]]:
    """Per glibc arena (``malloc_info``; empty off glibc): bytes it holds
    (``system``), free in it (``free``) and of that its top chunk
    (``top``): ``malloc_trim`` returns the free pages of every arena but
    the top chunk of the main one only; a thread's arena keeps its top
    until a ``free`` finds it above the trim threshold."""
    libc = _libc()
    if not hasattr(libc, "malloc_info") or not hasattr(libc, "open_memstream"):
        return []
    buf, size = ctypes.c_void_p(), ctypes.c_size_t()
    libc.open_memstream.restype = ctypes.c_void_p
    stream = libc.open_memstream(ctypes.byref(buf), ctypes.byref(size))
    libc.malloc_info.argtypes = libc.fclose.argtypes = libc.free.argtypes = None
    libc.malloc_info(0, ctypes.c_void_p(stream))
    libc.fclose(ctypes.c_void_p(stream))
    text = ctypes.string_at(buf, size.value).decode()
    libc.free(buf)
    heaps = []
    for part in text.split("<heap nr=")[1:]:
        part = part.split("</heap>", 1)[0]
        binned = sum(int(m) for m in re.findall(r'<size from="\d+" to="\d+" total="(\d+)"', part))
        rest = int(re.search(r'<total type="rest" count="\d+" size="(\d+)"', part)[1])
        fast = int(re.search(r'<total type="fast" count="\d+" size="(\d+)"', part)[1])
        system = int(re.search(r'<system type="current" size="(\d+)"', part)[1])
        heaps.append({"system": system, "free": rest + fast, "top": rest + fast - binned})
    return heaps


def heap_rss_kib() -> int:
    """Resident KiB of the main glibc heap (``[heap]`` in ``/proc/self/smaps``):
    what of ``mallinfo2``'s ``arena`` still costs memory after a trim."""
    rss, in_heap = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        if not line[:1].isupper():  # a mapping's header line (address range first)
            in_heap = line.endswith("[heap]")
        elif in_heap and line.startswith("Rss:"):
            rss += int(line.split()[1])
    return rss


def vm_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class DebugSnapshots:
    """The ``SIGUSR2`` hook (see the module's docstring)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.baseline: tracemalloc.Snapshot | None = None

    def dump(self) -> None:
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(f"=== {time.strftime('%H:%M:%S')} pid {os.getpid()}\n")
            try:
                self._dump(out)
            finally:  # for a reader waiting for the whole dump
                out.write("=== end\n")

    def _dump(self, out: TextIO) -> None:
        self._sizes(out, "before release_memory")
        release_memory()
        self._sizes(out, "after release_memory")
        if not tracemalloc.is_tracing():
            self._arenas(out)
            if os.environ.get(ARENAS_ENV):
                # debug only: loaded late
                from shared.memory_holders import write_arena_census, write_grown_containers

                write_arena_census(out)
                write_grown_containers(out)
            return
        current, peak = tracemalloc.get_traced_memory()
        out.write(f"traced: {current / 2**20:.1f} MiB now, {peak / 2**20:.1f} MiB peak\n")
        snapshot = tracemalloc.take_snapshot().filter_traces(
            # not the hook's own: tracemalloc's, and the source lines it formats
            [tracemalloc.Filter(False, tracemalloc.__file__),
             tracemalloc.Filter(False, linecache.__file__)]
        )
        if self.baseline is None:
            self.baseline = snapshot
            out.write("baseline snapshot taken\n\n")
            return
        out.write("since the baseline, by line:\n")
        for stat in snapshot.compare_to(self.baseline, "lineno")[:40]:
            out.write(f"  {stat}\n")
        out.write("since the baseline, by traceback (top 10):\n")
        for stat in snapshot.compare_to(self.baseline, "traceback")[:10]:
            out.write(f"  {stat.size_diff / 1024:+.1f} KiB, {stat.count_diff:+d} blocks\n")
            for line in stat.traceback.format():
                out.write(f"    {line}\n")
        out.write("\n")
        top = int(os.environ.get(HOLDERS_ENV, "0") or 0)
        if top > 0:
            from shared.memory_holders import write_holders  # debug only: loaded late

            write_holders(out, snapshot.compare_to(self.baseline, "traceback"), top)

    @staticmethod
    def _sizes(out: TextIO, when: str) -> None:
        heap = ", ".join(f"{k} {v / 2**20:.1f}" for k, v in heap_info().items())
        out.write(f"{when}: VmRSS {vm_rss_kib() / 1024:.1f} MiB; glibc heap (MiB) {heap}, "
                  f"[heap] resident {heap_rss_kib() / 1024:.1f}\n")  # fmt: skip
        heaps = "; ".join(f"{h['system'] / 2**20:.1f} free {h['free'] / 2**20:.1f} "
                          f"top {h['top'] / 2**20:.1f}" for h in malloc_heaps())  # fmt: skip
        out.write(f"  glibc arenas (MiB): {heaps}\n")

    @staticmethod
    def _arenas(out: TextIO) -> None:
        """pymalloc's statistics (``sys._debugmallocstats`` writes to fd 2:
        borrowed for the call; another thread's log line may land here)."""
        out.flush()
        saved = os.dup(2)
        try:
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)

    def serve(self) -> None:
        while True:
            signal.sigwait({signal.SIGUSR2})
            try:
                self.dump()
            except Exception as error:  # noqa: BLE001 - a debug hook must not kill the daemon
                print(f"{DEBUG_ENV}: {error!r}", file=sys.stderr, flush=True)


def install_debug_snapshots() -> DebugSnapshots | None:
    """Start tracing and the ``SIGUSR2`` thread if ``NETRELOAD_TRACEMALLOC``
    names a file. Call it first in ``main()``, before any other thread
    starts: ``SIGUSR2`` is blocked in the calling thread so that every later
    thread inherits the block and only the hook's ``sigwait`` receives it (a
    Python signal handler would wake superd's accept loop, which stops on
    any signal)."""
    path = os.environ.get(DEBUG_ENV)
    if not path:
        return None
    frames = int(os.environ.get(FRAMES_ENV, "8"))
    if frames > 0:
        tracemalloc.start(frames)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
    hook = DebugSnapshots(path)
    threading.Thread(target=hook.serve, name="tracemalloc-hook", daemon=True).start()
    return hook
