"""Unified persistence: the running and the persistent configuration.

Both are trees ``<root>/nets/<network>`` and ``<root>/bonds/<bond>`` of one
JSON document each. The running tree (``<run dir>/netconf``) is rewritten
document by document, each write atomic. The persistent one
(``<lib dir>/persistence/netconf``) is a symlink to a generation folder
``netconf.<N>``: ``set_safe_config`` writes a new generation under a staging
name, fsyncs it, renames it to ``netconf.<N>``, swaps the symlink with
``os.replace``, and only then deletes older generations. A crash at any point
leaves the whole old or the whole new configuration: readers resolve the link
once per snapshot and, when it is missing or dangling, take the highest
``netconf.<N>`` (only complete generations carry that name).

A name that is not a valid network/bond name is NetError BAD_PARAMS (21)
before any path is built; files with such names found in a tree (temporary
files, debris) are logged and ignored. One writer at a time is assumed
(superd serializes network verbs).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from persistence.atomic import (
    StrPath,
    atomic_remove,
    atomic_remove_many,
    atomic_write_into,
    atomic_write_many,
    atomic_write_text,
    encode_json,
    ensure_dir,
    fsync_dir,
    read_json,
    remove_debris,
)
from persistence.sections import FOLD_MIN, next_section, plain_snapshot, settled
from shared import caches, faults
from shared.config import Config
from shared.errors import ErrorCode, NetError
from shared.netmodel.names import validate_bond_name, validate_network_name

log = logging.getLogger(__name__)

LOGGED_WRITES = 64  # writes whose changed names are remembered (changed_between)
NETS = "nets"
BONDS = "bonds"
_SECTIONS = ((NETS, "networks"), (BONDS, "bonds"))  # folder, snapshot key
# Request-time options, never part of the configuration to restore.
NOT_PERSISTED = frozenset({"blockingdhcp"})

Docs = Mapping[str, Mapping[str, Any]]
Snapshot = dict[str, dict[str, dict[str, Any]]]


def _checkpoint(step: str) -> None:
    """Called between the steps of ``set_safe_config``.

    The fault-injection seam tests monkeypatch to stop the swap at ``step``
    (as a crash would) and inspect what is on disk; ``shared.faults`` stops
    the whole process there.
    """
    faults.step(f"set_safe_config {step}")


def _check_name(kind: str, validate: Callable[[object], str], name: object) -> str:
    try:
        validate(name)
    except NetError as exc:
        raise NetError(ErrorCode.BAD_PARAMS, exc.message) from None
    # Belt and braces: whatever the name rule says, the name must be one
    # plain, printable path component (the rules' "$" also matches before
    # a trailing newline).
    if (
        not isinstance(name, str)
        or name in ("", ".", "..")
        or name.startswith(".")
        or "/" in name
        or not name.isprintable()
    ):
        raise NetError(ErrorCode.BAD_PARAMS, f"{kind} name is not valid: {name!r}")
    return name


def check_network_name(name: object) -> str:
    """The network-name rule, as a path-safety check: NetError 21."""
    return _check_name("Network", validate_network_name, name)


def check_bond_name(name: object) -> str:
    """The bond-name rule, as a path-safety check: NetError 21 (not 25)."""
    return _check_name("Bond", validate_bond_name, name)


_CHECKS: dict[str, Callable[[object], str]] = {
    NETS: check_network_name,
    BONDS: check_bond_name,
}


def _is_valid_name(kind: str, name: str) -> bool:
    try:
        _CHECKS[kind](name)
    except NetError:
        return False
    return True


def _encode_attrs(name: str, attrs: object) -> str:
    if not isinstance(attrs, Mapping):
        raise NetError(
            ErrorCode.BAD_PARAMS,
            f"attributes of {name!r} must be a mapping, not {type(attrs).__name__}",
        )
    doc = {key: value for key, value in attrs.items() if key not in NOT_PERSISTED}
    try:
        return encode_json(doc)
    except (TypeError, ValueError) as exc:
        raise NetError(
            ErrorCode.BAD_PARAMS, f"attributes of {name!r} cannot be persisted: {exc}"
        ) from None


def _encode_all(kind: str, docs: object) -> dict[str, str]:
    if not isinstance(docs, Mapping):
        raise NetError(ErrorCode.BAD_PARAMS, f"{kind} must be a mapping")
    check = _CHECKS[kind]
    return {check(name): _encode_attrs(name, attrs) for name, attrs in docs.items()}


class ConfigView:
    """Read access to one ``nets``/``bonds`` tree."""

    def __init__(self, root: StrPath) -> None:
        self._path = Path(root)

    @property
    def path(self) -> Path:
        return self._path

    def _root(self) -> Path | None:
        """The folder actually read; None when there is nothing to read."""
        return self._path

    def networks(self) -> dict[str, dict[str, Any]]:
        return _read_tree(self._root(), NETS)

    def bonds(self) -> dict[str, dict[str, Any]]:
        return _read_tree(self._root(), BONDS)

    def snapshot(self) -> Snapshot:
        return self._read_snapshot()

    def _read_snapshot(self) -> Snapshot:
        root = self._root()
        return {"networks": _read_tree(root, NETS), "bonds": _read_tree(root, BONDS)}


def _list_names(folder: Path, kind: str) -> list[str]:
    """The valid document names in ``folder``; anything else is logged."""
    try:
        with os.scandir(folder) as entries:
            found = sorted(entries, key=lambda entry: entry.name)
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        log.warning("ignoring %s: not a folder", folder)
        return []
    names = []
    for entry in found:
        if not _is_valid_name(kind, entry.name):
            log.warning("ignoring stray file %r in %s", entry.name, folder)
        elif not entry.is_file(follow_symlinks=False):
            log.warning("ignoring %r in %s: not a regular file", entry.name, folder)
        else:
            names.append(entry.name)
    return names


def _read_tree(root: Path | None, kind: str) -> dict[str, dict[str, Any]]:
    if root is None:
        return {}
    folder = root / kind
    result: dict[str, dict[str, Any]] = {}
    for name in _list_names(folder, kind):
        try:
            doc = read_json(folder / name)
        except FileNotFoundError:
            continue  # removed since listed
        except ValueError as exc:
            log.error("ignoring %s: not a JSON document (%s)", folder / name, exc)
            continue
        if not isinstance(doc, dict):
            log.error("ignoring %s: not a JSON object", folder / name)
            continue
        result[name] = doc
    return result


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _writes(method: Callable) -> Callable:
    """A ConfigStore method that writes: the shared snapshot is replaced by
    what the method left in ``_next`` when it succeeded, else dropped."""

    @functools.wraps(method)
    def wrapper(self: ConfigStore, *args: Any, **kwargs: Any) -> Any:
        self._next = None  # what the method leaves, when it knows it
        try:
            return method(self, *args, **kwargs)
        except BaseException:
            self._next = None
            raise
        finally:
            self._changed()

    return wrapper


class ConfigStore(ConfigView):
    """One read-write tree; every document write is atomic.

    :meth:`shared_snapshot` serves readers from memory between this object's
    own writes (superd is the tree's only writer), so a read of a thousand
    networks does not read a thousand files every time.
    """

    def __init__(self, root: StrPath) -> None:
        super().__init__(root)
        self._generation = 0  # bumped after every write
        self._cached: tuple[int, Snapshot] | None = None
        self._next: Snapshot | None = None
        self._next_names: dict[str, set[str]] | None = None
        # generation → the names its write changed (None: not known)
        self._log: dict[int, dict[str, set[str]] | None] = {}
        self._cache_lock = threading.Lock()
        caches.forget_me(lambda store: store._log.clear(), self, self._cache_lock)  # big changes

    def shared_snapshot(self) -> tuple[int, Snapshot]:
        """(generation, snapshot); the snapshot is shared between callers:
        never modify it. Safe from any thread. A host's worth of networks
        is a FoldedWalks, not a dict: :func:`plain_snapshot` to encode it."""
        cached = self._cached
        if cached is not None:
            return cached
        generation = self._generation
        snapshot = self._read_snapshot()
        with self._cache_lock:
            if self._generation == generation:  # no write began and ended meanwhile
                self._cached = (generation, snapshot)
        return generation, snapshot

    def snapshot(self) -> Snapshot:
        """A private copy (of the shared snapshot: no file read while this
        object's own writes are all there is)."""
        return orjson.loads(orjson.dumps(plain_snapshot(self.shared_snapshot()[1])))

    def changed_between(self, old: int, new: int) -> dict[str, set[str]] | None:
        """``{"networks": names, "bonds": names}`` whose documents may differ
        between the snapshots of generations ``old`` and ``new`` (the others
        are equal); None when not known (a write that failed, a whole
        replace, a generation too old)."""
        low, high = sorted((old, new))
        out: dict[str, set[str]] = {"networks": set(), "bonds": set()}
        with self._cache_lock:
            for generation in range(low + 1, high + 1):
                names = self._log.get(generation)
                if names is None:
                    return None
                for key, changed in names.items():
                    out[key] |= changed
        return out

    def _changed(self) -> None:
        with self._cache_lock:
            self._generation += 1
            after, self._next = self._next, None
            names, self._next_names = self._next_names, None
            self._cached = (self._generation, after) if after is not None else None
            self._log[self._generation] = names if after is not None else None
            self._log.pop(self._generation - LOGGED_WRITES, None)

    def _written(self, planned: dict[str, dict[str, str]], doomed: Iterable[tuple[str, str]],
                 base: Snapshot | None, exact: bool = True) -> None:  # fmt: skip
        """What the tree holds after a successful write of ``planned`` and
        removal of ``doomed`` over ``base`` (None: unknown); ``exact``: only
        those names changed (see :meth:`changed_between`)."""
        if base is None:
            return
        gone: dict[str, list[str]] = {NETS: [], BONDS: []}
        for kind, name in doomed:
            gone[kind].append(name)
        if exact:
            self._next_names = {key: {*planned[kind], *gone[kind]} for kind, key in _SECTIONS}
        # A section no document of this write touches is the base's own dict
        # (snapshots are never written once shared): a change's second
        # update, which writes or removes nothing, costs no copy of the host.
        after = base
        for kind, key in _SECTIONS:
            docs, dropped = planned[kind], gone[kind]
            if not docs and not dropped:
                continue
            if after is base:
                after = dict(base)
            section = base[key]  # a few: a dict's block copy, inline (no call)
            small = type(section) is dict and len(section) <= FOLD_MIN
            section = after[key] = section.copy() if small else next_section(section)
            for name, text in docs.items():
                section[name] = orjson.loads(text)
            for name in dropped:
                section.pop(name, None)
            after[key] = settled(section)
        self._next = after

    def remove_debris(self) -> list[str]:
        """Temporary files of writes a crash cut short, removed (their paths)."""
        return [
            f"{kind}/{name}" for kind in (NETS, BONDS) for name in remove_debris(self._path / kind)
        ]

    @_writes
    def set_network(self, name: str, attrs: Mapping[str, Any]) -> None:
        self._write(NETS, check_network_name(name), _encode_attrs(name, attrs))

    @_writes
    def remove_network(self, name: str) -> None:
        atomic_remove(self._path / NETS / check_network_name(name))

    @_writes
    def set_bond(self, name: str, attrs: Mapping[str, Any]) -> None:
        self._write(BONDS, check_bond_name(name), _encode_attrs(name, attrs))

    @_writes
    def remove_bond(self, name: str) -> None:
        atomic_remove(self._path / BONDS / check_bond_name(name))

    @_writes
    def update(
        self,
        networks: Docs | None = None,
        bonds: Docs | None = None,
        removed_networks: Iterable[str] = (),
        removed_bonds: Iterable[str] = (),
    ) -> None:
        """Write and remove many documents at once, with one flush for all
        (a whole plan's intent): each document is still replaced atomically.
        Every name and document is checked before the first write."""
        planned = {NETS: _encode_all(NETS, networks or {}), BONDS: _encode_all(BONDS, bonds or {})}
        removed_networks, removed_bonds = list(removed_networks), list(removed_bonds)
        doomed = [
            self._path / NETS / check_network_name(n) for n in removed_networks
        ] + [self._path / BONDS / check_bond_name(n) for n in removed_bonds]
        # the folder checked once per kind, not once per document
        folders = {kind: ensure_dir(self._path / kind) for kind, docs in planned.items() if docs}
        base = self._cached[1] if self._cached is not None else None
        if folders:  # the names checked by _encode_all
            atomic_write_into({folder: planned[kind].items() for kind, folder in folders.items()})
        atomic_remove_many(doomed)
        gone = [(NETS, n) for n in removed_networks] + [(BONDS, n) for n in removed_bonds]
        self._written(planned, gone, base)

    @_writes
    def replace(self, networks: Docs, bonds: Docs) -> None:
        """Make the tree hold exactly ``networks`` and ``bonds``.

        Every name and document is checked before the first write; the
        documents that differ are replaced atomically (one flush for all),
        then the ones not wanted are removed.
        """
        planned = {NETS: _encode_all(NETS, networks), BONDS: _encode_all(BONDS, bonds)}
        writes, doomed = [], []
        for kind, docs in planned.items():
            # no empty folder for a kind without documents (a rollback to
            # "no bonds" leaves the tree as it was)
            folder = ensure_dir(self._path / kind) if docs else self._path / kind
            for name, text in docs.items():
                if _read_text(folder / name) != text:
                    writes.append((folder / name, text))
            doomed += [folder / name for name in _list_names(folder, kind) if name not in docs]
        if writes:
            atomic_write_many(writes)
        atomic_remove_many(doomed)
        self._written(planned, (), {"networks": {}, "bonds": {}}, exact=False)

    def _write(self, kind: str, name: str, text: str) -> None:
        atomic_write_text(ensure_dir(self._path / kind) / name, text)


def _generations(link: Path) -> dict[int, Path]:
    """The complete generation folders ``<link>.<N>`` next to ``link``."""
    pattern = re.compile(re.escape(link.name) + r"\.([0-9]+)")
    found = {}
    with contextlib.suppress(FileNotFoundError), os.scandir(link.parent) as entries:
        for entry in entries:
            match = pattern.fullmatch(entry.name)
            if match and entry.is_dir(follow_symlinks=False):
                found[int(match.group(1))] = Path(entry.path)
    return found


def current_generation(link: Path) -> Path | None:
    """The folder holding the current persistent configuration, if any."""
    if link.is_symlink():
        target = link.parent / os.readlink(link)
        if target.is_dir():
            return target
        log.warning("%s points to %s, which is not a folder", link, target)
    elif link.is_dir():
        return link  # a real folder left by an older layout
    generations = _generations(link)
    return generations[max(generations)] if generations else None


class PersistentView(ConfigView):
    """Read-only view of the persistent configuration, one generation at a
    time."""

    def _root(self) -> Path | None:
        return current_generation(self._path)


class UnifiedPersistence:
    def __init__(self, config: Config) -> None:
        self._link = Path(config.persistent_config_dir)
        self.running = ConfigStore(config.running_config_dir)
        self.persistent = PersistentView(self._link)

    def restore_source(self) -> Snapshot:
        """The persistent configuration, to rebuild at boot."""
        return self.persistent.snapshot()

    def replace_running(self, nets: Docs, bonds: Docs) -> None:
        """Rewrite the running tree to exactly this content (rollback)."""
        self.running.replace(nets, bonds)

    def set_safe_config(self) -> None:
        """Replace the persistent configuration with the running one, as a
        whole (see the module docstring)."""
        link = self._link
        parent = ensure_dir(link.parent)
        self._remove_debris()
        if link.is_dir() and not link.is_symlink():
            self._adopt_real_folder()
        content = self.running.snapshot()
        number = max(_generations(link), default=0) + 1
        staging = parent / f".{link.name}.{number}.staging"
        os.mkdir(staging)
        _checkpoint("staging-created")
        ConfigStore(staging).replace(content["networks"], content["bonds"])
        fsync_dir(staging)
        _checkpoint("staging-written")
        generation = parent / f"{link.name}.{number}"
        os.rename(staging, generation)
        fsync_dir(parent)
        _checkpoint("generation-complete")
        self._point_link(generation, "swap")
        for old in sorted(_generations(link).values()):
            if old != generation:
                shutil.rmtree(old)
                _checkpoint(f"removed:{old.name}")
        fsync_dir(parent)
        log.info("persistent configuration is now %s", generation.name)

    def _point_link(self, generation: Path, step: str) -> None:
        tmp = self._link.parent / f".{self._link.name}.link.tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(generation.name, tmp)
        _checkpoint(f"{step}:link-created")
        os.replace(tmp, self._link)
        _checkpoint(f"{step}:link-replaced")
        fsync_dir(self._link.parent)
        _checkpoint(f"{step}:link-synced")

    def _adopt_real_folder(self) -> None:
        """Turn a real folder left by an older layout into a generation."""
        link = self._link
        number = max(_generations(link), default=0) + 1
        generation = link.parent / f"{link.name}.{number}"
        log.info("adopting %s as %s", link, generation.name)
        os.rename(link, generation)
        fsync_dir(link.parent)
        _checkpoint("adopt:moved")
        self._point_link(generation, "adopt")

    def _remove_debris(self) -> None:
        """Staging folders and temporary links of an interrupted swap."""
        prefix = re.escape(f".{self._link.name}.")
        debris = re.compile(prefix + r"([0-9]+\.staging|link\.tmp)")
        with os.scandir(self._link.parent) as entries:
            found = [entry for entry in entries if debris.fullmatch(entry.name)]
        for entry in found:
            log.info("removing %s left by an interrupted swap", entry.path)
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
