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
import ctypes
import functools
import itertools
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from shared import faults

StrPath = str | os.PathLike[str]

DEFAULT_MODE = 0o644
_tmp_ids = itertools.count()


def encode_json(data: Any) -> str:
    """The exact text ``atomic_write_json`` writes: sorted keys, strict JSON
    (no NaN/Infinity), trailing newline. Raises TypeError or ValueError for
    data JSON cannot represent."""
    flat = _flat_json(data)
    if flat is not None:
        return flat
    return json.dumps(data, sort_keys=True, indent=2, allow_nan=False) + "\n"


_SCALAR_JSON = {True: "true", False: "false", None: "null"}


_FLAT = frozenset((str, int, bool, type(None)))
_ORJSON_FLAT = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS


def _flat_json(data: Any) -> str | None:
    """``json.dumps(data, sort_keys=True, indent=2) + "\\n"`` for a non-empty
    dict of string keys and string, int, bool or None values or lists of
    them (a network's attributes, mostly), built here: with ``indent`` the json module encodes
    in Python, several times slower (a request of a thousand networks
    writes a thousand of them). None for anything else.

    orjson lays such a document out as the json module does; its text is
    taken when it is all printable ASCII (the json module escapes the rest,
    orjson does not), else the document is built here."""
    if type(data) is not dict or not data:
        return None
    for value in data.values():  # no float (orjson writes NaN as null), no nesting
        kind = type(value)
        if kind not in _FLAT and (kind is not list or any(type(i) not in _FLAT for i in value)):
            return None
    try:
        raw = orjson.dumps(data, option=_ORJSON_FLAT)
    except TypeError:  # a key that is no string, an int beyond 64 bits
        return _flat_text(data)
    if raw.isascii() and b"\x7f" not in raw:
        return raw.decode("ascii") + "\n"
    return _flat_text(data)


def _flat_text(data: dict) -> str | None:
    """:func:`_flat_json`'s document built line by line."""
    lines = []
    for key in sorted(data):
        value = data[key]
        if type(key) is not str:
            return None
        if type(value) is list:  # of scalars (nameservers)
            items = [_scalar_json(item) for item in value]
            if None in items:
                return None
            text = "[\n" + ",\n".join(f"    {item}" for item in items) + "\n  ]" if items else "[]"
        elif (text := _scalar_json(value)) is None:
            return None
        lines.append(f"  {_encode_string(key)}: {text}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def _scalar_json(value: Any) -> str | None:
    kind = type(value)
    if kind is str:
        return _encode_string(value)
    if kind is int:
        return int.__repr__(value)
    if kind is bool or value is None:
        return _SCALAR_JSON[value]
    return None


_encode_string = json.encoder.encode_basestring_ascii


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
    before it replaces the target (and where ``shared.faults`` can stop the
    process).
    """
    faults.step(f"replace {os.fspath(target)}")
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


def _syncfs(fd: int) -> None:
    """Flush the whole filesystem holding ``fd`` (Linux syncfs(2)): one
    journal commit for many files instead of one fsync each."""
    if libc().syncfs(fd) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"syncfs: {os.strerror(error)}")


@functools.cache
def libc() -> ctypes.CDLL:
    """The C library (syncfs), errno kept for ctypes.get_errno."""
    return ctypes.CDLL(None, use_errno=True)


def atomic_write_many(documents: Iterable[tuple[StrPath, str]], mode: int = DEFAULT_MODE) -> None:
    """Replace each ``(path, text)`` crash-safely, as :func:`atomic_write_text`
    does, but with one flush for all of them: every temporary file is
    written, the filesystem flushed once (syncfs), every file renamed into
    place, each folder fsynced once. A crash leaves each document old or
    new (some may be new, some old); the folders must exist."""
    staged: list[tuple[str, str]] = []
    try:
        for path, text in documents:
            # text paths, no pathlib objects: thousands per big request
            folder, name = os.path.split(os.fspath(path))
            _stage(staged, folder, name, text, mode)
    except BaseException:
        _unlink_staged(staged)
        raise
    _commit(staged, sorted({os.path.dirname(target) or "." for _, target in staged}))


def atomic_write_into(folders: Mapping[StrPath, Iterable[tuple[str, str]]],
                      mode: int = DEFAULT_MODE) -> None:  # fmt: skip
    """:func:`atomic_write_many` of ``{folder: [(name, text), ...]}``, one
    flush for all: each name one path component the caller checked (a
    network or bond name), so a big request's thousand paths are not split
    again."""
    staged: list[tuple[str, str]] = []
    try:
        for folder, documents in folders.items():
            base = os.fspath(folder)
            for name, text in documents:
                if not name or "/" in name or name.startswith("."):  # never a path of its own
                    raise ValueError(f"not a document name: {name!r}")
                _stage(staged, base, name, text, mode)
    except BaseException:
        _unlink_staged(staged)
        raise
    _commit(staged, sorted({os.fspath(folder) or "." for folder in folders}))


_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW


def _stage(staged: list[tuple[str, str]], folder: str, name: str, text: str, mode: int) -> None:
    """``text`` written to a temporary file next to ``folder/name``, listed
    in ``staged`` (temporary, target) as soon as it exists."""
    # A name of our own (mkstemp's random probing costs more); debris of a
    # crashed writer under the same name is simply overwritten.
    prefix = f"{folder}/" if folder else ""
    tmp = f"{prefix}.{name}.{os.getpid()}.{next(_tmp_ids)}.tmp"
    fd = os.open(tmp, _OPEN_FLAGS, mode)
    staged.append((tmp, prefix + name))
    try:  # plain writes: no text layer per file (thousands per big request)
        os.fchmod(fd, mode)
        _write_all(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def _commit(staged: list[tuple[str, str]], folders: list[str]) -> None:
    """The staged files flushed once, renamed into place, their folders
    fsynced; on failure the temporary files not yet renamed are removed."""
    renamed = 0  # staged[:renamed] are in place: nothing left to clean up
    try:
        _flush_files([tmp for tmp, _ in staged], folders)
        for tmp, target in staged:
            _rename_into_place(tmp, target)
            renamed += 1
    except BaseException:
        _unlink_staged(staged[renamed:])
        raise
    for folder in folders:
        fsync_dir(folder)


def _unlink_staged(staged: list[tuple[str, str]]) -> None:
    for tmp, _ in staged:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _flush_files(files: list[str], folders: list[str]) -> None:
    """Make the content of ``files`` durable: one syncfs per filesystem, or
    an fsync of each file where syncfs is missing."""
    if getattr(libc(), "syncfs", None) is None:
        for path in files:
            with open(path, "rb") as stream:
                os.fsync(stream.fileno())
        return
    devices: dict[int, str] = {}
    for folder in folders:
        devices.setdefault(os.stat(folder).st_dev, folder)
    for folder in devices.values():
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            _syncfs(fd)
        finally:
            os.close(fd)


def atomic_remove_many(paths: Iterable[StrPath]) -> int:
    """Remove each of ``paths`` that exists, durably (each folder fsynced
    once). How many were removed."""
    removed, folders = 0, set()
    for path in paths:
        target = Path(path)
        faults.step(f"remove {target}")
        try:
            os.unlink(target)
        except FileNotFoundError:
            continue
        removed += 1
        folders.add(str(target.parent))
    for folder in sorted(folders):
        fsync_dir(folder)
    return removed


def remove_debris(folder: StrPath) -> list[str]:
    """Remove the temporary files a writer killed mid-write left in
    ``folder`` (``.<target>.<id>.tmp``, see the module docstring): they can
    never be taken for documents, but they should not pile up. Their names."""
    removed = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                name = entry.name
                if name.startswith(".") and name.endswith(".tmp") and entry.is_file(
                    follow_symlinks=False
                ):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
                        removed.append(name)
    except FileNotFoundError:
        return []
    return removed


def atomic_write_json(path: StrPath, data: Any, mode: int = DEFAULT_MODE) -> None:
    """Replace ``path`` with ``data`` as JSON, crash-safely.

    The data is encoded before anything touches the disk, so a value JSON
    cannot represent (TypeError/ValueError) leaves no file behind.
    """
    atomic_write_text(path, encode_json(data), mode)


def atomic_remove(path: StrPath) -> bool:
    """Remove ``path`` durably. Returns False if it did not exist."""
    target = Path(path)
    faults.step(f"remove {target}")
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
