"""/proc-based helpers to find, watch and stop the DHCP client processes.

A process is one of our clients only if root runs it (every uid of
``/proc/PID/status``), its executable (``/proc/PID/exe``) is the client
binary superd starts, and its command line names our pid file. A name and
a command line are not enough: any local user can start a process called
``dhclient`` whose arguments name our predictable pid file, and superd
would have adopted it instead of starting a client (and later signalled
it and its children).

A process is remembered as a :class:`Proc` — its pid and its start time
(field 22 of ``/proc/PID/stat``, in clock ticks since boot) — and checked
again right before every signal, so a pid the kernel reused for another
process is never signalled. Reaped clients (zombies) count as gone.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_DELETED = " (deleted)"  # /proc/PID/exe of a binary replaced by an upgrade


@dataclass(frozen=True)
class Proc:
    """A process as first seen: a pid is only ever signalled while it still
    has this start time."""

    pid: int
    start: int


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and 0 < int(text) < 2**22 else None


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/PID/stat`` from field 3 (state) on; None if gone or a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return fields


def identify(pid: int) -> Proc | None:
    """``pid`` with its start time, or None when it is gone (or a zombie)."""
    fields = _stat_fields(pid)
    if fields is None or not fields[19].isdigit():
        return None
    return Proc(pid, int(fields[19]))  # field 22 of stat(5): starttime


def _runs_as_root(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    for line in status.splitlines():
        if line.startswith("Uid:"):
            uids = line.split()[1:]
            return len(uids) == 4 and all(uid == "0" for uid in uids)
    return False


def _runs_binary(pid: int, binary: str) -> bool:
    """``/proc/PID/exe`` is ``binary`` (also once an upgrade replaced it).
    Unreadable (another user's process, without CAP_SYS_PTRACE) is False."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    return exe in (binary, binary + _DELETED)


def is_our_dhclient(pid: int, pid_file: Path, binary: str) -> Proc | None:
    """``pid`` as a :class:`Proc` when it is a live client of ours using
    ``pid_file``: run by root, executing ``binary`` (a resolved path), with
    ``pid_file`` in its arguments. None otherwise."""
    proc = identify(pid)
    if proc is None or not _runs_as_root(pid) or not _runs_binary(pid, binary):
        return None
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if os.fsencode(pid_file) not in raw.rstrip(b"\0").split(b"\0"):
        return None
    # Checked last: the same process all along, not a pid reused meanwhile.
    return proc if identify(pid) == proc else None


def still_ours(proc: Proc, pid_file: Path, binary: str) -> bool:
    """``proc`` is still that client: same pid, same start time, all checks."""
    return is_our_dhclient(proc.pid, pid_file, binary) == proc


def find_dhclients(pid_file: Path, binary: str) -> list[Proc]:
    """Every live client of ours using ``pid_file``: the daemon, and also a
    client that has not daemonized yet (and so has not written the pid file)."""
    needle = os.fsencode(pid_file)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if needle in raw and (proc := is_our_dhclient(int(entry), pid_file, binary)):
            found.append(proc)
    return found


def children(parents: list[Proc]) -> list[Proc]:
    """Live direct children of ``parents`` (a client's running hook), each
    started after its parent (so not the child of an earlier holder of the
    parent's pid)."""
    starts = {p.pid: p.start for p in parents}
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is None or not fields[1].isdigit() or not fields[19].isdigit():
            continue
        parent, start = int(fields[1]), int(fields[19])
        if parent in starts and start >= starts[parent]:
            found.append(Proc(int(entry), start))
    return found


def alive(proc: Proc) -> bool:
    """``proc`` runs: its pid is not a zombie and has the same start time."""
    return identify(proc.pid) == proc


def send_signal(proc: Proc, signum: int, check: Callable[[Proc], bool] = alive) -> bool:
    """Send ``signum`` to ``proc`` if ``check(proc)`` holds; False if it did not.

    The pid is pinned with a pidfd before the check: the signal reaches the
    process checked, never one that got its pid in between."""
    try:
        fd = os.pidfd_open(proc.pid)
    except ProcessLookupError:
        return False
    try:
        if not check(proc):
            return False
        signal.pidfd_send_signal(fd, signum)
    except ProcessLookupError:
        return False
    finally:
        os.close(fd)
    return True


def wait_or_kill(procs: list[Proc], grace: float) -> None:
    """Wait up to ``grace`` seconds for ``procs`` to exit, then SIGKILL the
    ones that are still the same processes."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(alive(p) for p in procs):
        time.sleep(0.02)
    for proc in procs:
        send_signal(proc, signal.SIGKILL)


def tail(path: Path, limit: int = 600) -> str:
    try:
        data = path.read_bytes()[-limit:]
    except OSError:
        return ""
    return data.decode("utf-8", errors="replace").strip()
