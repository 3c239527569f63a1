"""Bonds as team devices driven by teamd (``[vars] bonding_driver = team``).

The iproute2 configurator hands its bonds here instead of to the bonding
driver (``iproute2_bond``). Per bond:

* the teamd configuration is built purely from the engine's bonding options
  (``shared.netmodel.team_runner``; what has no team equivalent is 25) and
  written to ``<run_dir>/team/<bond>.conf``;
* one teamd per team: ``teamd -d -f <conf> -p <run_dir>/team/<bond>.pid
  -t <bond>``; teamd creates the team device, which gets netreload's mark
  like any bond, and destroys it when it stops;
* ports are added and removed with ``teamdctl <bond> port add|remove
  <nic>`` (a port is set down first: the kernel enslaves only a down
  device), then set up;
* a changed configuration (mode, link watch, hash …) restarts teamd: the
  team is re-created and its ports added again; ports alone are edited
  live;
* the bond's removal stops teamd (SIGTERM to the pid of its pid file, if
  that process is teamd), deletes the device should it remain, and leaves
  the ports up without addresses.

Every name that reaches a command line or a path is checked first: the
bond's (``bond`` + word characters) and each port's (a kernel device name,
never starting with ``-``). Idempotent: a team whose teamd runs with the
configuration on disk and holds the wanted ports is not touched; a team
device of netreload's without its teamd (teamd killed, superd crashed
midway) is deleted and created again.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from configurators.iproute2_netlink import Kernel
from persistence.atomic import atomic_write_text
from shared.errors import ErrorCode, NetError
from shared.netmodel.bond import Bond
from shared.netmodel.names import validate_bond_name, validate_nic_name
from shared.netmodel.team_runner import teamd_config

log = logging.getLogger("netreload.team")

TEAMD = "teamd"
TEAMDCTL = "teamdctl"
COMMAND_TIMEOUT = 60.0  # seconds: teamd's start is slow in an emulated guest
STOP_TIMEOUT = 30.0


def _checked(bond: Bond) -> tuple[str, tuple[str, ...]]:
    return validate_bond_name(bond.name), tuple(validate_nic_name(n) for n in bond.slaves)


class TeamApplier:
    def __init__(self, kernel: Kernel, run_dir: Path, flush: Callable[[dict], None]) -> None:
        self.kernel = kernel
        self.folder = run_dir / "team"
        self.flush = flush  # removes a released port's addresses

    # -- files and processes ------------------------------------------------
    def conf_path(self, name: str) -> Path:
        return self.folder / f"{validate_bond_name(name)}.conf"

    def pid_path(self, name: str) -> Path:
        return self.folder / f"{validate_bond_name(name)}.pid"

    def teamd_pid(self, name: str) -> int | None:
        """The pid of this team's teamd, if it runs (the pid file's process,
        and it is teamd)."""
        try:
            pid = int(self.pid_path(name).read_text().strip())
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except (OSError, ValueError):
            return None
        return pid if comm == TEAMD else None

    def _run(self, name: str, what: str, argv: list[str]) -> str:
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NetError(ErrorCode.FAILED_IFUP, f"{name}: {what}: {exc}") from None
        finally:
            self.kernel.forget_links()  # teamd creates, enslaves, destroys
        if proc.returncode != 0:
            detail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
            raise NetError(
                ErrorCode.FAILED_IFUP,
                f"{name}: {what}: exit status {proc.returncode}: {' / '.join(detail)}",
            )
        return proc.stdout

    def teamdctl(self, name: str, *args: str) -> str:
        return self._run(name, f"teamdctl {' '.join(args)}", [TEAMDCTL, name, *args])

    def state(self, name: str) -> dict[str, Any] | None:
        """``teamdctl <bond> state dump``, or None when teamd does not answer."""
        try:
            return json.loads(self.teamdctl(validate_bond_name(name), "state", "dump"))
        except (NetError, ValueError):
            return None

    def _start(self, name: str, text: str) -> None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        conf, pid = self.conf_path(name), self.pid_path(name)
        atomic_write_text(conf, text)
        pid.unlink(missing_ok=True)
        self._run(name, "start teamd",
                  [TEAMD, "-d", "-f", str(conf), "-p", str(pid), "-t", name])  # fmt: skip

    def _stop(self, name: str) -> None:
        pid = self.teamd_pid(name)
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while self.teamd_pid(name) == pid and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.teamd_pid(name) == pid:
            os.kill(pid, signal.SIGKILL)
        self.kernel.forget_links()

    # -- entry points --------------------------------------------------------
    def ensure(self, bond: Bond, old: Bond | None) -> None:
        name, ports = _checked(bond)
        text = json.dumps(teamd_config(name, bond.options, ports), indent=2, sort_keys=True)
        wanted = [self.kernel.require(port, ErrorCode.BAD_NIC, "bond slave") for port in ports]
        dev = self.kernel.device(name)
        if dev is not None and dev["kind"] != "team":
            raise NetError(
                ErrorCode.FAILED_IFUP,
                f"{name}: exists and is not a team (kind {dev['kind'] or 'nic'})",
            )
        if dev is not None and not self.kernel.owned(dev):
            raise NetError(
                ErrorCode.USED_BOND,
                f"bond {name} exists and was not created by netreload: not taken over",
            )
        try:
            on_disk = self.conf_path(name).read_text()
        except OSError:
            on_disk = None
        if dev is None or on_disk != text or self.teamd_pid(name) is None:
            self._restart(name, text, dev, wanted)
        dev = self.kernel.require(name)
        if bond.hwaddr and (dev["address"] or "").lower() != bond.hwaddr.lower():
            self.kernel.set_link(dev, f"set address {bond.hwaddr}", address=bond.hwaddr)
        self.kernel.ensure_mtu(dev, bond.mtu)
        self._ports(name, dev, ports)
        self.kernel.ensure_up(self.kernel.require(name))

    def delete(self, bond: Bond) -> None:
        name = validate_bond_name(bond.name)
        dev = self.kernel.device(name)
        if dev is not None and dev["kind"] != "team":
            raise NetError(
                ErrorCode.FAILED_IFUP,
                f"{name}: is not a team (kind {dev['kind'] or 'nic'}), not deleting it",
            )
        if dev is not None and not self.kernel.owned(dev):
            log.info("%s: a team netreload did not create: left as it is", name)
            return
        ports = self.kernel.ports_of(dev["index"]) if dev is not None else []
        self._stop(name)
        dev = self.kernel.device(name)
        if dev is not None:
            self.kernel.delete_link(dev)
        for path in (self.conf_path(name), self.pid_path(name)):
            path.unlink(missing_ok=True)
        for port in ports:
            self._after_release(port["name"])

    # -- steps ---------------------------------------------------------------
    def _restart(self, name: str, text: str, dev: dict | None, wanted: list[dict]) -> None:
        released = self.kernel.ports_of(dev["index"]) if dev is not None else []
        self._stop(name)
        dev = self.kernel.device(name)
        if dev is not None:  # teamd gone, its device left (killed, crashed)
            self.kernel.delete_link(dev)
        for port in wanted:  # the config may list ports (priorities): down first
            current = self.kernel.device(port["name"])
            if current is not None:
                self.kernel.ensure_down(current)
        self._start(name, text)
        self.kernel.mark(self.kernel.require(name, ErrorCode.FAILED_IFUP, "team device"))
        for port in released:
            if port["name"] not in {p["name"] for p in wanted}:
                self._after_release(port["name"])

    def _ports(self, name: str, dev: dict, ports: tuple[str, ...]) -> None:
        for port in self.kernel.ports_of(dev["index"]):
            if port["name"] not in ports:
                self.teamdctl(name, "port", "remove", port["name"])
                self._after_release(port["name"])
        for port_name in ports:
            port = self.kernel.require(port_name, ErrorCode.BAD_NIC, "bond slave")
            if port["master"] != dev["index"]:
                self.kernel.ensure_down(port)
                self.teamdctl(name, "port", "add", port_name)
                port = self.kernel.require(port_name, ErrorCode.BAD_NIC, "bond slave")
            self.kernel.ensure_up(port)

    def _after_release(self, name: str) -> None:
        """A released port is up, without addresses."""
        port = self.kernel.device(name)
        if port is not None:
            self.kernel.ensure_up(port)
            self.flush(port)
