"""shared.memory: release_memory forgets the caches of parsed values; the
debug-only hook (install_debug_snapshots) is off unless NETRELOAD_TRACEMALLOC
names a file; on, each SIGUSR2 appends the process's sizes and, after the
baseline, what was allocated since."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shared.memory import release_memory
from shared.netmodel import addresses

ROOT = Path(__file__).resolve().parents[2]

# A process that installs the hook, signals itself at idle (the baseline),
# then keeps 2,000 blocks allocated on one line and signals itself again.
SCRIPT = """
import os, signal, sys, time
from pathlib import Path
from shared.memory import install_debug_snapshots
hook = install_debug_snapshots()
print("hook" if hook else "none", flush=True)
if hook is None:
    sys.exit(0)
out = Path(os.environ["NETRELOAD_TRACEMALLOC"])
def wait_for(text, count=1):
    deadline = time.monotonic() + 20
    while (out.read_text() if out.exists() else "").count(text) < count:
        assert time.monotonic() < deadline, text
        time.sleep(0.02)
os.kill(os.getpid(), signal.SIGUSR2)
wait_for("baseline snapshot taken")
kept = [bytearray(1000) for _ in range(2000)]  # the line to find
os.kill(os.getpid(), signal.SIGUSR2)
wait_for("by traceback")
print("alive", flush=True)
"""


def _run(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )  # fmt: skip


def test_without_the_variable_nothing_is_installed() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NETRELOAD_TRACEMALLOC")}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**env, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["none"]


def test_sigusr2_dumps_what_was_allocated_since_the_baseline(tmp_path: Path) -> None:
    out = tmp_path / "tracemalloc.txt"
    started = time.monotonic()
    proc = _run({"NETRELOAD_TRACEMALLOC": str(out)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["hook", "alive"]  # SIGUSR2 did not end the process
    text = out.read_text()
    assert text.count("before release_memory: VmRSS") == 2
    since = text.split("since the baseline, by line:")[1]
    # 2,000 bytearrays of 1,000 bytes, found on their line ("<string>", the -c script)
    top = next(line for line in since.splitlines() if "<string>:" in line)
    grown = re.search(r"size=[\d.]+ [KM]iB \(\+([\d.]+) ([KM]iB)\)", top)
    assert grown is not None, top
    assert float(grown[1]) * (1024 if grown[2] == "MiB" else 1) >= 2000 * 1000 / 1024
    assert time.monotonic() - started < 60


def test_frames_zero_dumps_sizes_and_arenas_without_tracing(tmp_path: Path) -> None:
    out = tmp_path / "sizes.txt"
    script = SCRIPT.replace('wait_for("baseline snapshot taken")', 'wait_for("arenas")')
    script = script.replace('wait_for("by traceback")', "")
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
        # pymalloc explicitly: a run under PYTHONMALLOC=malloc has no arenas to print
        env={**os.environ, "PYTHONPATH": str(ROOT), "NETRELOAD_TRACEMALLOC": str(out),
             "NETRELOAD_TRACEMALLOC_FRAMES": "0", "PYTHONMALLOC": "pymalloc"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "after release_memory: VmRSS" in text
    assert "arenas" in text  # pymalloc's statistics (CPython prints them untraced only)
    assert "traced:" not in text


def test_release_memory_forgets_the_parsed_addresses() -> None:
    """Their objects, made while the host was large, would pin pymalloc's
    arenas after a big removal."""
    addresses.ipv4("10.0.0.1")
    addresses.ip_address("fe80::1")
    assert addresses.ipv4.cache_info().currsize and addresses.ip_address.cache_info().currsize
    release_memory()
    assert addresses.ipv4.cache_info().currsize == 0
    assert addresses.ip_address.cache_info().currsize == 0


def test_holders_name_what_keeps_the_survivors(tmp_path: Path) -> None:
    out = tmp_path / "holders.txt"
    # until the second dump is written whole (it ends with the holders)
    script = SCRIPT.replace('wait_for("by traceback")', 'wait_for("=== end", 2)')
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT), "NETRELOAD_TRACEMALLOC": str(out),
             "NETRELOAD_TRACEMALLOC_HOLDERS": "3"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    holders = out.read_text().split("holders of the top 3 tracebacks:")[1]
    # the 2,000 bytearrays: in a list, the script's global "kept"
    assert "<- list of 2000" in holders
    assert "<- dict['kept']" in holders and "<- module __main__" in holders
    assert out.read_text().endswith("=== end\n")


def test_the_arena_census_reads_the_pymalloc_arena_of_small_objects() -> None:
    from shared.memory_holders import _pool_arena, write_arena_census

    if os.environ.get("PYTHONMALLOC", "").startswith("malloc"):
        pytest.skip("no pymalloc arenas under PYTHONMALLOC=malloc")
    names = [f"name-{i}" for i in range(20000)]  # small: pymalloc blocks
    assert {_pool_arena(name) for name in names} - {None}
    assert _pool_arena(bytes(100_000)) is None  # large: glibc's, not pymalloc's
    out = io.StringIO()
    write_arena_census(out, sparse=1, shown=1)
    assert re.match(r"objects by pymalloc arena \(\d+ arenas\): #0:\d+", out.getvalue())
