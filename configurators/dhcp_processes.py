"""/proc-based helpers to find, watch and stop the DHCP client processes.

Pids are always checked against the command line (a reused pid is never
signalled) and reaped clients (zombies) count as gone.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and 0 < int(text) < 2**22 else None


def is_our_dhclient(pid: int, pid_file: Path) -> bool:
    """``pid`` is alive and is a dhclient using ``pid_file`` (not a reused pid)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        proc_stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    if proc_stat.rpartition(")")[2].split()[:1] == ["Z"]:
        return False
    argv = raw.rstrip(b"\0").split(b"\0")
    return bool(argv) and os.path.basename(argv[0]) == b"dhclient" and os.fsencode(pid_file) in argv


def find_dhclients(pid_file: Path) -> list[int]:
    """Every live dhclient using ``pid_file``: the daemon, and also a client
    that has not daemonized yet (and so has not written the pid file)."""
    needle = os.fsencode(pid_file)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if needle in raw and is_our_dhclient(int(entry), pid_file):
            found.append(int(entry))
    return found


def children(pids: list[int]) -> list[int]:
    """Direct children of ``pids`` (a dhclient's running hook)."""
    parents = {str(p) for p in pids}
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            proc_stat = Path(f"/proc/{entry}/stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        fields = proc_stat.rpartition(")")[2].split()
        if len(fields) > 1 and fields[1] in parents and fields[0] != "Z":
            found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        proc_stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return proc_stat.rpartition(")")[2].split()[:1] != ["Z"]


def wait_or_kill(pids: list[int], grace: float) -> None:
    """Wait up to ``grace`` seconds for ``pids`` to exit, then SIGKILL them."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.02)
    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def tail(path: Path, limit: int = 600) -> str:
    try:
        data = path.read_bytes()[-limit:]
    except OSError:
        return ""
    return data.decode("utf-8", errors="replace").strip()
