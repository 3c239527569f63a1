"""superd's restore verb (restore-nets at boot) rebuilds a big persistent
configuration inside a malloc window and without cyclic collection, as
apply_plan runs a big change, and hands the memory back after the answer;
a small one runs on pymalloc, the collector on. Run
in a fresh interpreter with pymalloc (the allocators are the process's);
``superd.verbs.rebuild`` is replaced by one that records whether the window
is open: the logic under test is the verb's, not the kernel's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import gc, json, sys, types
from shared.allocator import in_malloc_window
from shared.gc_pause import CollectorPause
from superd import verbs as module

seen = []
def rebuild(core, persistent, verb):
    seen.append((in_malloc_window(), gc.isenabled()))
    return types.SimpleNamespace(operations=len(persistent["networks"]), skipped={})
module.rebuild = rebuild

class Journal:
    def begin(self, *args): pass
    def end(self): pass

class Running:
    def snapshot(self): return {"networks": {}, "bonds": {}}

count = int(sys.argv[1])
persistence = types.SimpleNamespace(
    restore_source=lambda: {"networks": {f"bn{i}": {} for i in range(count)}, "bonds": {}},
    running=Running())
verbs = object.__new__(module.Verbs)
verbs.journal = Journal()
pause = CollectorPause()
answer, big = verbs._restore(types.SimpleNamespace(persistence=persistence), pause)
print(json.dumps({"window": seen[0][0], "collector": seen[0][1], "big": big,
                  "after": in_malloc_window(), "operations": answer["operations"],
                  "paused_after": pause.held, "collector_after": gc.isenabled()}))
"""


def _restore(count: int) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(count)], cwd=ROOT, capture_output=True, text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONMALLOC": "pymalloc"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_restore_of_many_networks_rebuilds_in_a_malloc_window() -> None:
    out = _restore(1000)
    assert out["window"] is True
    assert out["collector"] is False  # no cyclic collection either (shared.gc_pause)
    assert out["big"] is True  # its memory is handed back after the answer
    assert out["after"] is False  # closed once the rebuild is over
    assert out["operations"] == 1000


def test_restore_of_many_networks_leaves_the_collector_paused_until_its_release() -> None:
    out = _restore(1000)
    # restore_nets ends the pause in the release, after the answer: the
    # young collection of the rebuild's survivors stays off the answer's path
    assert out["paused_after"] is True
    assert out["collector_after"] is False


def test_restore_of_a_few_networks_rebuilds_on_pymalloc() -> None:
    out = _restore(3)
    assert out["window"] is False
    assert out["collector"] is True
    assert out["big"] is False
    assert out["paused_after"] is False
