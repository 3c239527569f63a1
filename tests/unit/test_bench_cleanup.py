"""benchmarks.lab.uninterrupted: a benchmark's clean-up runs to its end
when SIGTERM or Ctrl-C comes meanwhile, and the run still stops after it.
Real signals, in a fresh interpreter (the mask is the process's)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# benchmarks.run turns SIGTERM into KeyboardInterrupt the same way
SCRIPT = """
import os, signal, sys
from benchmarks.lab import uninterrupted
def interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)
signal.signal(signal.SIGTERM, interrupt)
steps = []
try:
    with uninterrupted():
        steps.append("stopped the daemons")
        os.kill(os.getpid(), getattr(signal, sys.argv[1]))
        steps.append("deleted the namespaces")
    steps.append("went on after the clean-up")
except KeyboardInterrupt as why:
    steps.append("interrupted")
print(",".join(steps))
"""


def _steps(signal_name: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, signal_name], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().split(",")


def test_a_sigterm_during_the_clean_up_waits_for_its_end_then_stops_the_run() -> None:
    assert _steps("SIGTERM") == ["stopped the daemons", "deleted the namespaces", "interrupted"]


def test_ctrl_c_during_the_clean_up_waits_for_its_end_then_stops_the_run() -> None:
    assert _steps("SIGINT") == ["stopped the daemons", "deleted the namespaces", "interrupted"]
