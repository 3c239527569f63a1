"""The NetworkManager checkpoints of one transaction (see :mod:`configurators.nm`).

A checkpoint covers the existing devices a change is about to touch
(DELETE_NEW_CONNECTIONS: profiles added after it go with its rollback). Their
paths are kept in ``<run_dir>/nm.checkpoint`` so that superd's recovery can
roll back what a crash left: a ``creating`` line is written before each
``CheckpointCreate``, so that a crash before the path is known leaves a
checkpoint recovery finds by its rollback timeout (netreload's own value).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from configurators.nm_dbus import NmClient
from persistence.atomic import atomic_remove, atomic_write_text

log = logging.getLogger("netreload.nm")

#: seconds NetworkManager waits before rolling a checkpoint back by itself:
#: longer than any connectivity check (at most 3600 s) and activation
CHECKPOINT_TIMEOUT = 3600 + 600
CREATING = "creating"


class Checkpoints:
    """The checkpoints held (oldest first), each with the devices it covers."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self._held: list[tuple[str, frozenset[str]]] = []

    @property
    def paths(self) -> list[str]:
        return [path for path, _ in self._held]

    @property
    def covered(self) -> frozenset[str]:
        return frozenset().union(*(devices for _, devices in self._held))

    def create(self, client: NmClient, devices: Mapping[str, str]) -> None:
        """One more checkpoint over ``devices`` ({name: NetworkManager device path})."""
        known = "".join(f"{path}\n" for path in self.paths)
        atomic_write_text(self.file, known + CREATING + "\n")
        checkpoint = client.checkpoint_create(sorted(devices.values()), CHECKPOINT_TIMEOUT)
        self._held.append((checkpoint, frozenset(devices)))
        atomic_write_text(self.file, known + f"{checkpoint}\n")

    def destroy(self, client: NmClient) -> None:
        """The change stays: every checkpoint destroyed (and forgotten even
        when destroying one fails, so that no later rollback undoes it)."""
        try:
            for path in reversed(self.paths):
                client.checkpoint_destroy(path)
        finally:
            self.forget()

    def forget(self) -> None:
        self._held = []
        atomic_remove(self.file)

    def left_by_a_crash(self, client: NmClient) -> list[str]:
        """The checkpoints the file names, and those a crash left before
        their path was written (found by their rollback timeout)."""
        try:
            lines = self.file.read_text().split()
        except FileNotFoundError:
            return []
        left = [line for line in lines if line.startswith("/")]
        if CREATING in lines:
            left += [
                path
                for path in client.checkpoints()
                if path not in left
                and client.checkpoint_rollback_timeout(path) == CHECKPOINT_TIMEOUT
            ]
        return left


def roll_back(client: NmClient, paths: list[str]) -> set[str]:
    """Roll ``paths`` back, newest first, each awaited until no device is
    activating; one NetworkManager no longer holds (it rolled it back by
    itself, or restarted) is passed over. The paths of the devices rolled back."""
    devices: set[str] = set()
    for path in reversed(paths):
        if path not in client.checkpoints():
            continue
        result = client.checkpoint_rollback(path)
        devices.update(result)
        failed = [device for device, code in result.items() if code]
        if failed:
            log.error("NetworkManager checkpoint rollback failed for %s", failed)
        if not client.devices_settled(result):
            log.error("NetworkManager: devices still activating after the rollback")
    return devices
