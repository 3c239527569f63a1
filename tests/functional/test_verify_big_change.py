"""A big change (more operations than superd verifies device by device) is
verified on a full dump of the kernel: a device the kernel lost before the
verification fails the change, which is rolled back."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

from shared.faults import LOG_ENV, PAUSE_ENV
from superd.cores import SMALL_CHANGE
from tests.functional.conftest import HostNs, run_ip
from tests.functional.superd_daemon import (
    NO_CHECK,
    Superd,
    apply_in_background,
    error_of,
    links,
    make_plan,
)

COUNT = SMALL_CHANGE + 8  # networks, one operation each


def networks() -> dict[str, dict]:
    return {
        f"bv{i}": {"bridged": True, "ipaddr": f"10.77.{i}.1", "netmask": "255.255.255.0"}
        for i in range(COUNT)
    }


def _stopped(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "T"


def first_step_naming(log: Path, device: str) -> int:
    for line in log.read_text().splitlines():
        number, label = line.split(" ", 1)
        if device in label.split():
            return int(number)
    raise AssertionError(f"no durable write names {device}:\n{log.read_text()}")


def test_a_device_lost_before_a_big_change_is_verified_fails_it_and_rolls_back(
    make_host_ns: Callable[..., HostNs], tmp_path: Path, sock_dir: Path
) -> None:
    last = f"bv{COUNT - 1}"
    # where the last network's first kernel write comes: learnt from a run
    steps = tmp_path / "steps.log"
    (tmp_path / "learn").mkdir()
    (tmp_path / "run").mkdir()
    for name in ("learn", "run"):
        (sock_dir / name).mkdir(mode=0o755)
    learn = Superd(make_host_ns(2, prefix="nrs-"), tmp_path / "learn", sock_dir / "learn")
    learn.env[LOG_ENV] = str(steps)
    with learn:
        conn = learn.connect()
        try:
            conn.result("apply_plan", plan=make_plan(conn, networks(), NO_CHECK))
        finally:
            conn.close()
    pause_at = first_step_naming(steps, f"{last}:")
    daemon = Superd(make_host_ns(2, prefix="nrs-"), tmp_path / "run", sock_dir / "run")
    daemon.env[PAUSE_ENV] = str(pause_at)  # stops itself there, bv0 made long before
    with daemon:
        before = daemon.kernel_state()
        conn = daemon.connect()
        plan = make_plan(conn, networks(), NO_CHECK)
        sender, answers = apply_in_background(conn, plan)
        try:
            assert daemon.proc is not None
            deadline = time.monotonic() + 60
            while not _stopped(daemon.proc.pid):
                assert time.monotonic() < deadline, "superd did not reach the last network"
                time.sleep(0.05)
            run_ip("-n", daemon.host.name, "link", "del", "bv0")  # the kernel loses one
        finally:
            if daemon.proc is not None:
                daemon.proc.send_signal(signal.SIGCONT)
            sender.join(120)
        conn.close()
        (answer,) = answers
        code, message = error_of(answer)
        assert "bv0" in message and "missing" in message, message
        assert not any(name.startswith("bv") for name in links(daemon.host.name))
        assert daemon.kernel_state() == before
