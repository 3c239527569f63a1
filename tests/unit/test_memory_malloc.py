"""shared.memory and glibc's arenas: with use_one_malloc_arena every thread
allocates from the main arena, whose free pages malloc_trim returns (a
thread's arena keeps its top); malloc_heaps reads the arenas back. Each
case runs in a fresh interpreter: the setting is the process's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A thread frees a large block (mmapped: glibc raises its trim threshold to
# twice its size, as after superd's large JSON documents), then allocates
# 20 MB in small blocks and frees them; the arenas and how much the
# process's resident memory grew, after release_memory.
SCRIPT = """
import json, sys, threading
from shared.memory import malloc_heaps, release_memory, use_one_malloc_arena, vm_rss_kib
chosen = use_one_malloc_arena() if sys.argv[1] == "one" else None
before = vm_rss_kib()
def burst():
    large = bytearray(16 << 20)
    del large
    blocks = [bytearray(2000) for _ in range(10000)]
    del blocks
thread = threading.Thread(target=burst)
thread.start()
thread.join()
release_memory()
grew = vm_rss_kib() - before
print(json.dumps({"chosen": chosen, "heaps": malloc_heaps(), "grew_kib": grew}))
"""


def _run(mode: str, **env: str) -> dict:
    base = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    # glibc's allocator for every object: the burst lands in glibc's arenas
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], cwd=ROOT, capture_output=True, text=True,
        timeout=60, env={**base, "PYTHONPATH": str(ROOT), "PYTHONMALLOC": "malloc", **env},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_with_one_arena_a_thread_allocates_from_the_main_arena() -> None:
    out = _run("one")
    assert out["chosen"] is True
    assert len(out["heaps"]) == 1


def test_with_one_arena_a_threads_burst_is_given_back_by_release_memory() -> None:
    """Resident memory, not the heap's layout: when the main thread
    allocated something above the burst meanwhile (it runs between the
    burst's allocations, more so on a loaded machine), the freed 20 MB are
    a binned chunk below it rather than the top; malloc_trim gives back the
    pages of both."""
    out = _run("one")
    assert out["grew_kib"] < 1024


def test_without_it_a_thread_keeps_the_top_of_its_own_arena() -> None:
    """What use_one_malloc_arena avoids (glibc's behaviour, shown so that
    the two tests above are known to discriminate)."""
    heaps = _run("default")["heaps"]
    assert len(heaps) == 2
    assert heaps[1]["system"] > 10 << 20  # the burst was the thread's arena's


def test_the_operators_malloc_arena_max_wins() -> None:
    out = _run("one", MALLOC_ARENA_MAX="4")
    assert out["chosen"] is False
    assert len(out["heaps"]) == 2
