"""Debug only: who holds the objects a traceback allocated (for
``shared.memory``'s ``SIGUSR2`` dump, ``NETRELOAD_TRACEMALLOC_HOLDERS``).

tracemalloc says where the survivors of a big change were allocated, not
what keeps them alive. For a few of the tracebacks that grew most, one
object allocated there is found (every object the collector tracks, and
what each of them refers to directly: strings and untracked dicts are only
reachable that way) and the chain of its referrers is written, up to a
module, a class or an instance's attribute, so that the cache or log that
holds it can be named.
"""

from __future__ import annotations

import bisect
import ctypes
import gc
import sys
import tracemalloc
import types
from collections.abc import Iterable
from typing import Any, TextIO

DEPTH = 8


def find_allocated(wanted: tracemalloc.Traceback) -> Any | None:
    """One live object whose allocation traceback is ``wanted`` (or None)."""
    get = tracemalloc.get_object_traceback
    for obj in gc.get_objects():
        if get(obj) == wanted:
            return obj
        for inner in gc.get_referents(obj):
            if not gc.is_tracked(inner) and get(inner) == wanted:
                return inner
    return None


def _describe(holder: Any, held: Any) -> str:
    kind = type(holder).__name__
    if isinstance(holder, dict):
        for key, value in holder.items():
            if value is held:
                return f"dict[{key!r:.60}]"
        return f"dict (as a key, {len(holder)} items)"
    if isinstance(holder, (list, tuple, set, frozenset)):
        return f"{kind} of {len(holder)}"
    if isinstance(holder, types.ModuleType):
        return f"module {holder.__name__}"
    return f"{type(holder).__module__}.{type(holder).__qualname__}"


def _owner_of_dict(mapping: dict) -> str | None:
    """The module or instance whose ``__dict__`` ``mapping`` is."""
    for module in list(sys.modules.values()):
        if getattr(module, "__dict__", None) is mapping:
            return f"module {module.__name__}"
    for holder in gc.get_referrers(mapping):
        if getattr(holder, "__dict__", None) is mapping:
            return f"instance of {type(holder).__module__}.{type(holder).__qualname__}"
    return None


def holder_chain(obj: Any, skip: Iterable[Any] = ()) -> list[str]:
    """Referrers of ``obj``, one per level (the first that is no frame),
    up to a module's or an instance's ``__dict__``."""
    ignored = {id(x) for x in skip}
    chain, current = [], obj
    for _ in range(DEPTH):
        frame = sys._getframe()
        referrers = [r for r in gc.get_referrers(current)
                     if id(r) not in ignored and not isinstance(r, types.FrameType)
                     and r is not frame]  # fmt: skip
        if not referrers:
            chain.append("(no referrer but frames)")
            break
        holder = referrers[0]
        ignored.add(id(referrers))
        chain.append(_describe(holder, current) + (f" (+{len(referrers) - 1} more)"
                                                   if len(referrers) > 1 else ""))  # fmt: skip
        if isinstance(holder, dict):
            owner = _owner_of_dict(holder)
            if owner is not None:
                chain.append(owner)
                break
        if isinstance(holder, types.ModuleType):
            break
        current = holder
    return chain


def write_holders(out: TextIO, stats: list[tracemalloc.StatisticDiff], top: int) -> None:
    """For each of the ``top`` tracebacks that grew most: the frame that
    allocated, then the holders of one of its objects."""
    out.write(f"holders of the top {top} tracebacks:\n")
    for stat in [s for s in stats if s.count_diff > 0][:top]:
        obj = find_allocated(stat.traceback)
        where = stat.traceback[-1]  # the most recent frame: the allocating line
        out.write(f"  {where.filename}:{where.lineno} ({stat.count_diff:+d} blocks): ")
        if obj is None:
            out.write("no live object found\n")
            continue
        out.write(f"{type(obj).__name__}\n")
        for line in holder_chain(obj, skip=(stats,)):
            out.write(f"      <- {line}\n")
    out.write("\n")


POOL_SIZE = 1 << 14  # pymalloc's pool on 64-bit CPython 3.10+ (POOL_BITS 14)
SMALL = 512  # pymalloc's largest block


def anonymous_ranges() -> list[tuple[int, int]]:
    """The process's anonymous read-write mappings (pymalloc's arenas are
    among them; the interpreter's static objects are not)."""
    ranges = []
    with open("/proc/self/maps", encoding="ascii") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) == 5 and fields[1].startswith("rw"):
                start, end = fields[0].split("-")
                ranges.append((int(start, 16), int(end, 16)))
    return sorted(ranges)


def _in(ranges: list[tuple[int, int]], starts: list[int], address: int) -> bool:
    at = bisect.bisect_right(starts, address) - 1
    return at >= 0 and ranges[at][0] <= address < ranges[at][1]


def _pool_arena(obj: Any) -> int | None:
    """The index of the pymalloc arena holding ``obj`` (read from its pool's
    header: ``arenaindex`` after four pointers), or None when the object is
    not plausibly a pymalloc block."""
    try:
        if sys.getsizeof(obj) > SMALL:
            return None
    except TypeError:
        return None
    base = id(obj) & ~(POOL_SIZE - 1)
    count = ctypes.c_uint.from_address(base).value
    arena = ctypes.c_uint.from_address(base + 32).value
    szidx = ctypes.c_uint.from_address(base + 36).value
    if not 0 < count <= POOL_SIZE // 16 or szidx >= SMALL // 16 or arena > 1 << 16:
        return None
    return arena


def write_arena_census(out: TextIO, sparse: int = 12, shown: int = 10) -> None:
    """Live objects (those the collector tracks and what they refer to
    directly) by pymalloc arena; for the ``sparse`` arenas holding the
    fewest, what they are: a few of them pin a whole arena."""
    by_arena: dict[int, list[Any]] = {}
    seen: set[int] = set()
    ranges = anonymous_ranges()
    starts = [start for start, _ in ranges]
    for obj in gc.get_objects():
        for item in (obj, *gc.get_referents(obj)):
            if id(item) in seen or not _in(ranges, starts, id(item) & ~(POOL_SIZE - 1)):
                continue
            seen.add(id(item))
            arena = _pool_arena(item)
            if arena is not None:
                by_arena.setdefault(arena, []).append(item)
    counts = sorted((len(items), arena) for arena, items in by_arena.items())
    listed = ", ".join(f"#{a}:{n}" for n, a in sorted(counts, key=lambda c: c[1]))
    out.write(f"objects by pymalloc arena ({len(counts)} arenas): {listed}\n")
    for count, arena in counts[:sparse]:
        items = by_arena[arena]
        kinds: dict[str, int] = {}
        for item in items:
            kinds[type(item).__name__] = kinds.get(type(item).__name__, 0) + 1
        top = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])[:6])
        out.write(f"  arena #{arena}: {count} objects ({top})\n")
        for index in range(min(shown, len(items))):
            item = items[index]
            text = repr(item) if isinstance(item, (str, int, bytes, float)) else type(item).__name__
            holders = holder_chain(item, skip=(items, *by_arena.values()))[:5]
            out.write(f"      {text[:50]} <- {' <- '.join(holders)}\n")
    del by_arena, seen


def _slack(obj: Any) -> int:
    """Bytes a dict or set keeps beyond what a fresh copy of it would
    (``sys.getsizeof`` of the object less that of its rebuilt copy)."""
    try:
        return sys.getsizeof(obj) - sys.getsizeof(type(obj)(obj))
    except Exception:  # noqa: BLE001 - a subclass whose constructor differs
        return 0


def write_grown_containers(out: TextIO, least: int = 16384, shown: int = 25) -> None:
    """Dicts and sets whose table is larger than their items need (a dict
    that held thousands of entries keeps its table after they are deleted
    one by one), at least ``least`` bytes of slack each, largest first,
    with what holds them."""
    found, seen = [], set()
    for obj in gc.get_objects():
        for item in (obj, *gc.get_referents(obj)):
            if id(item) in seen or type(item) not in (dict, set):
                continue
            seen.add(id(item))
            if sys.getsizeof(item) >= least:
                slack = _slack(item)
                if slack >= least:
                    found.append((slack, item))
    found.sort(key=lambda pair: -pair[0])
    total = sum(slack for slack, _ in found)
    out.write(f"grown containers: {len(found)}, {total / 1024:.0f} KiB of slack\n")
    for slack, item in found[:shown]:
        holders = holder_chain(item, skip=(found,))[:5]
        out.write(f"  {type(item).__name__} of {len(item)}, {sys.getsizeof(item) / 1024:.0f} KiB "
                  f"({slack / 1024:.0f} KiB slack) <- {' <- '.join(holders)}\n")
    del found, seen
