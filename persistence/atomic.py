"""Crash-safe file primitives.

A document is written to a temporary file in the target's own folder,
flushed and fsynced, renamed over the target, and the folder is fsynced so
the rename itself is durable. A crash at any point leaves either the old or
the new document, never a truncated one; the temporary file is removed when
the write fails in-process.

Temporary files are named ``.<target>.<random>.tmp``: the leading dot means
they can never be mistaken for a network or bond document.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

StrPath = str | os.PathLike[str]

DEFAULT_MODE = 0o644


def encode_json(data: Any) -> str:
    """The exact text ``atomic_write_json`` writes: sorted keys, strict JSON
    (no NaN/Infinity), trailing newline. Raises TypeError or ValueError for
    data JSON cannot represent."""
    return json.dumps(data, sort_keys=True, indent=2, allow_nan=False) + "\n"


def fsync_dir(path: StrPath) -> None:
    """Make the entries of folder ``path`` (creations, renames, removals)
    durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _rename_into_place(tmp: StrPath, target: StrPath) -> None:
    """The commit point of an atomic write.

    A separate function on purpose: it is the fault-injection seam tests
    monkeypatch to fail after the temporary file is complete and fsynced but
    before it replaces the target.
    """
    os.replace(tmp, target)


def atomic_write_text(path: StrPath, text: str, mode: int = DEFAULT_MODE) -> None:
    """Replace ``path`` with ``text`` crash-safely (see the module docstring).

    The folder must exist.
    """
    target = Path(path)
    folder = target.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            os.fchmod(stream.fileno(), mode)
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        _rename_into_place(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(folder)


def atomic_write_json(path: StrPath, data: Any, mode: int = DEFAULT_MODE) -> None:
    """Replace ``path`` with ``data`` as JSON, crash-safely.

    The data is encoded before anything touches the disk, so a value JSON
    cannot represent (TypeError/ValueError) leaves no file behind.
    """
    atomic_write_text(path, encode_json(data), mode)


def atomic_remove(path: StrPath) -> bool:
    """Remove ``path`` durably. Returns False if it did not exist."""
    target = Path(path)
    try:
        os.unlink(target)
    except FileNotFoundError:
        return False
    fsync_dir(target.parent)
    return True


def read_json(path: StrPath) -> Any:
    """Load the JSON document at ``path``.

    Raises FileNotFoundError, or ValueError (json.JSONDecodeError,
    UnicodeDecodeError) for a document that is not JSON.
    """
    with open(path, encoding="utf-8") as stream:
        return json.load(stream)


def ensure_dir(path: StrPath) -> Path:
    """Create folder ``path`` and its missing parents durably: each created
    folder's parent is fsynced so the new entry survives a crash."""
    folder = Path(path)
    missing: list[Path] = []
    probe = folder
    while not probe.is_dir():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for created in reversed(missing):
        try:
            os.mkdir(created)
        except FileExistsError:
            if not created.is_dir():
                raise
            continue
        fsync_dir(created.parent)
    return folder
