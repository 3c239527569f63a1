"""shared.allocator: inside a malloc window new small objects come from
glibc, so what a burst leaves behind pins no pymalloc arena; blocks cross
the window's edges safely; the window opens only over CPython's plain
allocators. Each case runs in a fresh interpreter (the allocators are the
process's), pymalloc chosen explicitly (a run may set PYTHONMALLOC)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A burst of small objects of which one in 500 survives, spread over the
# burst (like the state and logs a big change leaves); pymalloc's arenas
# before and after, with release_memory in between.
SCRIPT = """
import json, os, re, sys, tempfile
from shared.allocator import malloc_window
from shared.memory import release_memory

def arenas():
    with tempfile.TemporaryFile("w+") as out:
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        sys._debugmallocstats()
        os.dup2(saved, 2)
        os.close(saved)
        out.seek(0)
        found = re.search(r"# arenas allocated current\\s*=\\s*([\\d,]+)", out.read())
    return int(found[1].replace(",", ""))

release_memory()
before = arenas()
with malloc_window(sys.argv[1] == "window") as opened:
    burst = [{"name": str(i), "ids": [i, i + 1], "key": (i, "x")} for i in range(200000)]
    survivors = burst[::500]
del burst
release_memory()
print(json.dumps({"opened": opened, "before": before, "after": arenas(),
                  "alive": sum(len(s["name"]) for s in survivors)}))
"""

# Blocks made inside the window grown, shrunk and freed after it, and blocks
# made before it grown inside it: every free reaches the allocator that
# made the block (a wrong one aborts the interpreter).
CROSSING = """
import json
from shared.allocator import malloc_window
before = [bytearray(b"x" * (i % 700)) for i in range(20000)]
lists = [[] for _ in range(20000)]
with malloc_window() as opened:
    inside = [bytearray(b"y" * (i % 700)) for i in range(20000)]
    for made in before:
        made.extend(b"z" * 100)
    for grown in lists:
        grown.extend(range(5))
for made in inside:
    made.extend(b"w" * 300)
    del made[:150]
total = sum(map(len, before)) + sum(map(len, inside)) + sum(map(len, lists))
del before, inside, lists
print(json.dumps({"opened": opened, "total": total}))
"""

STATE = """
import json, sys, tracemalloc
from shared import allocator
if sys.argv[1] == "tracing":
    tracemalloc.start()
first = allocator.begin_malloc_window()
inner = allocator.malloc_window().__enter__()
print(json.dumps({"first": first, "inner": inner, "ended": allocator.end_malloc_window(),
                  "again": allocator.end_malloc_window()}))
"""


def _run(script: str, *args: str, **env: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", script, *args], cwd=ROOT, capture_output=True, text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONMALLOC": "pymalloc", **env},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_bursts_survivors_made_in_a_window_pin_no_arena() -> None:
    out = _run(SCRIPT, "window")
    assert out["opened"] is True
    assert out["after"] <= out["before"] + 1, out


def test_without_the_window_the_same_survivors_pin_arenas() -> None:
    """What the window avoids (pymalloc's behaviour, shown so that the test
    above is known to discriminate)."""
    out = _run(SCRIPT, "none")
    assert out["opened"] is False
    assert out["after"] >= out["before"] + 10, out


def test_blocks_cross_the_windows_edges_safely() -> None:
    out = _run(CROSSING)
    assert out["opened"] is True
    assert out["total"] > 0


def test_an_open_window_is_not_opened_twice_and_ends_once() -> None:
    out = _run(STATE, "plain")
    assert out == {"first": True, "inner": False, "ended": True, "again": False}


def test_no_window_while_tracemalloc_traces() -> None:
    out = _run(STATE, "tracing")
    assert out["first"] is False and out["ended"] is False


def test_no_window_under_debug_hooks_or_glibcs_allocator() -> None:
    for allocator in ("debug", "malloc"):
        out = _run(STATE, "plain", PYTHONMALLOC=allocator)
        assert out["first"] is False, allocator


def test_no_window_when_the_operator_turns_it_off() -> None:
    out = _run(STATE, "plain", NETRELOAD_MALLOC_WINDOW="0")
    assert out["first"] is False
