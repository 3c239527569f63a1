"""How ifcfg files become devices: ``[ifcfg] apply``.

* ``initscripts`` (RHEL 7's network-scripts): ``ifdown DEVICE`` before a
  device's file changes or goes, ``ifup DEVICE`` after it is written (the
  commands' paths are ``[ifcfg] ifup`` / ``ifdown``). Debian has no such
  scripts: on it this mode is exercised by golden tests of the files and of
  the command sequence only.
* ``nm`` (RHEL 8/9, the default): NetworkManager's ifcfg-rh plugin is told
  to (re)load the changed files and the connections are activated and
  deactivated over D-Bus, as RHEL's ``ifup``/``ifdown`` do
  (:mod:`configurators.ifcfg_nm`).

An applier gets device names the ifcfg format validated
(:func:`configurators.ifcfg_format.file_name`), in the order to use.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from configurators import ifcfg_format as fmt
from shared.config import Config
from shared.errors import ErrorCode, NetError

log = logging.getLogger("netreload.ifcfg")

#: run(argv, timeout) → (exit status, output)
Runner = Callable[[Sequence[str], float], tuple[int, str]]


class Applier(Protocol):
    def down(self, devices: list[str]) -> None:
        """Take the devices down, in this order (their files still there)."""

    def reload(self, paths: list[Path]) -> None:
        """The files changed (written or removed)."""

    def up(self, devices: list[str], link_only: set[str]) -> None:
        """Bring the devices up, in this order (their files written); those
        of ``link_only`` (a non-blocking DHCP or autoconf network) are up
        once their link is, their addresses may come later."""

    def close(self) -> None: ...


def run_command(argv: Sequence[str], timeout: float) -> tuple[int, str]:
    try:
        done = subprocess.run(
            list(argv), stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as error:
        return 127, str(error)
    return done.returncode, (done.stderr or done.stdout).strip()


class InitscriptsApplier:
    def __init__(self, ifup: str, ifdown: str, timeout: float = 120.0,
                 run: Runner = run_command) -> None:  # fmt: skip
        self.ifup, self.ifdown, self.timeout, self.run = ifup, ifdown, timeout, run

    def down(self, devices: list[str]) -> None:
        for device in devices:
            status, output = self.run([self.ifdown, _checked(device)], self.timeout)
            if status != 0:  # a device already down or gone: go on, as ifdown's callers do
                log.warning("ifdown %s: exit %d: %s", device, status, output)

    def reload(self, paths: list[Path]) -> None:
        """The scripts read the files at each ifup: nothing to reload."""

    def up(self, devices: list[str], link_only: set[str]) -> None:
        for device in devices:  # ifup itself waits for DHCP as the host says
            status, output = self.run([self.ifup, _checked(device)], self.timeout)
            if status != 0:
                raise NetError(
                    ErrorCode.FAILED_IFUP, f"ifup {device} failed (exit {status}): {output}"
                )

    def close(self) -> None:
        pass


def _checked(device: str) -> str:
    fmt.file_name(device)  # validated: never an option, never a path
    return device


def make_applier(config: Config) -> Applier:
    if config.ifcfg_apply == "initscripts":
        return InitscriptsApplier(str(config.ifcfg_ifup), str(config.ifcfg_ifdown))
    from configurators.ifcfg_nm import NmApplier  # D-Bus: imported only for this mode

    return NmApplier(config)
