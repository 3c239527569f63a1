"""The ifcfg folder, changed as one transaction at a time.

Changes are staged (:meth:`IfcfgFiles.stage`), then written
(:meth:`IfcfgFiles.write`): before a file is first written or removed its
previous content is saved in the journal folder (``<device>`` holding the
old text, or ``<device>.absent`` for a file that did not exist), fsynced;
then the file is replaced atomically (temporary file, fsync, rename). The
journal folder is renamed away at :meth:`commit` (one atomic step) and
played back by :meth:`rollback` — and by :meth:`recover` after a crash,
so a half-written set of files always goes back to the set before the
transaction.

A file is only ever rewritten or removed when its first line is
netreload's header (or, with ``take_vdsm``, the production agent's):
staging a change to any other file is refused (USED_NIC).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from configurators import ifcfg_format as fmt
from persistence.atomic import atomic_write_text, fsync_dir
from shared import faults
from shared.errors import ErrorCode, NetError

log = logging.getLogger("netreload.ifcfg")

ABSENT = ".absent"
MODE = 0o644


@dataclass(frozen=True)
class Change:
    device: str
    old: str | None  # the text before (None: no file)
    new: str | None  # the text after (None: removed)


class IfcfgFiles:
    def __init__(self, folder: Path, journal: Path, take_vdsm: bool = False,
                 safe: Path | None = None) -> None:  # fmt: skip
        self.folder = Path(folder)
        self.journal = Path(journal)
        self.take_vdsm = take_vdsm
        #: net_persistence = ifcfg: each file as it was at the last
        #: setSafeNetworkConfig, for the files that differ from it now
        self.safe = None if safe is None else Path(safe)
        self._staged: dict[str, str | None] = {}

    # -- reading ----------------------------------------------------------
    def _write(self, changes: list) -> None:
        """Each change's text written (atomically) or its file removed, then
        the folder synced once."""
        for change in changes:
            path = self.path(change.device)
            if change.new is None:
                faults.step(f"remove {path}")
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            else:
                atomic_write_text(path, change.new, MODE)
        if changes:
            fsync_dir(self.folder)

    def path(self, device: str) -> Path:
        return self.folder / fmt.file_name(device)

    def disk_text(self, device: str) -> str | None:
        try:
            return self.path(device).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def text(self, device: str) -> str | None:
        """The file's text as staged (or as on disk)."""
        if device in self._staged:
            return self._staged[device]
        return self.disk_text(device)

    def fields(self, device: str) -> dict[str, str] | None:
        """The fields of our file for ``device`` (staged view), None when
        there is none or it is not ours."""
        text = self.text(device)
        if text is None or fmt.origin(text) is not fmt.Origin.NETRELOAD:
            return None
        return fmt.parse(text)

    def devices(self, origins: tuple[fmt.Origin, ...] = (fmt.Origin.NETRELOAD,)) -> list[str]:
        """Devices with a file of those origins (staged view), sorted."""
        names = set(self._staged)
        if self.folder.is_dir():
            names |= {d for p in self.folder.iterdir() if (d := fmt.device_of(p.name))}
        found = []
        for device in sorted(names):
            text = self.text(device)
            if text is not None and fmt.origin(text) in origins:
                found.append(device)
        return found

    def owned(self) -> dict[str, dict[str, str]]:
        """{device: fields} of every file of ours (staged view)."""
        return {d: fmt.parse(self.text(d) or "") for d in self.devices()}

    # -- staging ----------------------------------------------------------
    def stage(self, device: str, fields: Mapping[str, str] | None) -> None:
        """Stage ``device``'s file as ``fields`` (None: removed). A file
        that is not ours is never changed (USED_NIC); removing a file that
        does not exist is nothing."""
        current = self.text(device)
        if current is not None and not self._may_change(current):
            raise NetError(
                ErrorCode.USED_NIC,
                f"{self.path(device)}: a file netreload did not write exists: not taken over",
            )
        self._staged[device] = None if fields is None else fmt.render(fields)

    def _may_change(self, text: str) -> bool:
        origin = fmt.origin(text)
        return origin is fmt.Origin.NETRELOAD or (self.take_vdsm and origin is fmt.Origin.VDSM)

    def changes(self) -> list[Change]:
        """Staged changes that differ from the disk, by device name."""
        found = []
        for device, new in sorted(self._staged.items()):
            old = self.disk_text(device)
            if old != new:
                found.append(Change(device, old, new))
        return found

    def drop_staged(self) -> None:
        self._staged.clear()

    # -- writing ----------------------------------------------------------
    def write(self, changes: list[Change]) -> None:
        """Back up, then write or remove, each changed file; the staged set
        is emptied."""
        if changes:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.journal.mkdir(parents=True, exist_ok=True)
        for change in changes:
            self._backup(change.device, change.old)
        self._write(changes)
        self._staged.clear()

    def _backup(self, device: str, old: str | None) -> None:
        """The state before the transaction, once per file."""
        saved, absent = self.journal / device, self.journal / (device + ABSENT)
        if saved.exists() or absent.exists():
            return  # the first backup of the transaction is the one kept
        self.journal.mkdir(parents=True, exist_ok=True)
        if old is None:
            faults.step(f"journal {absent}")
            absent.touch()
        else:
            atomic_write_text(saved, old, MODE)
        fsync_dir(self.journal)

    def backups(self) -> dict[str, str | None]:
        """The journal: {device: text before the transaction, None = absent}."""
        return _read_backups(self.journal)

    def commit(self) -> None:
        """Forget the journal (one rename: a crash leaves it whole or gone)."""
        self._staged.clear()
        if not self.journal.exists():
            return
        if self.safe is not None:
            self._keep_safe(self.backups())
        done = self.journal.with_name(self.journal.name + ".done")
        shutil.rmtree(done, ignore_errors=True)
        faults.step(f"commit {self.journal}")
        os.replace(self.journal, done)
        fsync_dir(self.journal.parent)
        shutil.rmtree(done, ignore_errors=True)

    # -- net_persistence = ifcfg: the files of the last safe configuration ---
    def _keep_safe(self, before: dict[str, str | None]) -> None:
        """A transaction ends: a file it changed first keeps its text from
        before as the safe one; a file back to its safe text drops it."""
        assert self.safe is not None
        safe = self.safe_backups()
        for device, old in before.items():
            now = self.disk_text(device)
            if device not in safe:
                if now != old:
                    _write_backup(self.safe, device, old)
            elif now == safe[device]:
                _drop_backup(self.safe, device)

    def safe_backups(self) -> dict[str, str | None]:
        """{device: its text at the last safe configuration, None = absent}."""
        return _read_backups(self.safe) if self.safe is not None else {}

    def drop_safe(self) -> None:
        """setSafeNetworkConfig: the files now are the safe ones."""
        if self.safe is not None and self.safe.exists():
            shutil.rmtree(self.safe)
            fsync_dir(self.safe.parent)

    def rollback_changes(self) -> list[Change]:
        """What :meth:`restore` would do: from the disk now to the journal."""
        self._staged.clear()
        return [
            Change(device, self.disk_text(device), old)
            for device, old in self.backups().items()
            if self.disk_text(device) != old
        ]

    def restore(self, changes: list[Change]) -> None:
        """Put the journal's files back (``changes`` from
        :meth:`rollback_changes`), then forget it; the temporary files of a
        write a crash interrupted go."""
        self.remove_debris()
        self._write(changes)
        self.commit()

    def remove_debris(self) -> list[str]:
        """``.ifcfg-<device>.<id>.tmp`` files (atomic writes a crash cut
        short) in the folder, and temporary files of the backup folders."""
        removed = []
        for folder, prefix in ((self.folder, "." + fmt.PREFIX), (self.journal, "."),
                               (self.safe, ".")):  # fmt: skip
            if folder is None or not folder.is_dir():
                continue
            for entry in folder.iterdir():
                if entry.name.startswith(prefix) and entry.name.endswith(".tmp"):
                    with contextlib.suppress(FileNotFoundError):
                        entry.unlink()
                        removed.append(entry.name)
        return removed

    def pending_journal(self) -> bool:
        """A transaction was interrupted (its journal is still there)."""
        return self.journal.is_dir()


def iter_files(folder: Path) -> Iterator[tuple[str, str]]:
    """(device, text) of every ifcfg file in ``folder``, by device name."""
    if not folder.is_dir():
        return
    for path in sorted(folder.iterdir()):
        device = fmt.device_of(path.name)
        if device is not None and path.is_file():
            yield device, path.read_text(encoding="utf-8", errors="replace")


def _read_backups(folder: Path) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    if not folder.is_dir():
        return found
    for entry in folder.iterdir():
        if entry.name.startswith("."):
            continue  # a temporary file of an interrupted write
        if entry.name.endswith(ABSENT):
            found[entry.name[: -len(ABSENT)]] = None
        else:
            found[entry.name] = entry.read_text(encoding="utf-8")
    return {d: found[d] for d in sorted(found) if fmt.valid_device_name(d)}


def _write_backup(folder: Path, device: str, text: str | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if text is None:
        (folder / (device + ABSENT)).touch()
    else:
        atomic_write_text(folder / device, text, MODE)
    fsync_dir(folder)


def _drop_backup(folder: Path, device: str) -> None:
    for name in (device, device + ABSENT):
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()
    fsync_dir(folder)
