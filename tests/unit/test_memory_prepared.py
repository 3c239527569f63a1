"""What superd's first big change would otherwise make just before its
malloc window opens (ctypes' function objects for the allocator switch and
for malloc_trim, the plain allocators remembered) is made when superd
starts: made at the first big change, among the change's decoded request,
these few long-lived objects kept a pymalloc arena of 1 MiB to themselves
once the request was freed (benchmarks/README.md, round 10). Each case in a
fresh interpreter: the point is what exists before any window opened."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def fresh(code: str, **env: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={"PYTHONMALLOC": "pymalloc", **env},
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip


def test_the_allocator_switch_is_ready_once_imported() -> None:
    out = fresh(
        "import ctypes; from shared import allocator;"
        "print('PyMem_SetAllocator' in vars(ctypes.pythonapi),"
        " 'PyMem_GetAllocator' in vars(ctypes.pythonapi),"
        " allocator._plain.cache_info().currsize, allocator.in_malloc_window())"
    )
    assert out == "True True 1 False"


def test_malloc_trim_is_resolved_when_superd_picks_its_glibc_arena() -> None:
    out = fresh(
        "from shared import memory; memory.use_one_malloc_arena();"
        "print(memory._malloc_trim.cache_info().currsize)"
    )
    assert out == "1"


def test_nothing_is_remembered_while_tracemalloc_traces() -> None:
    out = fresh(
        "import tracemalloc; tracemalloc.start(); from shared import allocator;"
        "print(allocator._plain.cache_info().currsize, allocator.begin_malloc_window())"
    )
    assert out == "0 False"
