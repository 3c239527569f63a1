"""superd's transaction journal: what to go back to if superd dies midway.

Before a network-changing transaction touches the kernel, superd writes the
running configuration it started from (``before``) to one small document in
its run dir, crash-safely (``atomic_write_text``); it removes the document
when the transaction is over: committed, failed and rolled back in-process,
or rolled back after a lost connectivity check. A journal found at start-up
therefore means the process died inside a transaction; superd restores
``before`` before it serves anything (``superd.verbs.Verbs.recover``).

A transaction that changes a few named networks and bonds (apply_plan: its
operations name them) journals only those, as they were (``changes``: a
name absent before maps to null): only they change in the running
configuration until the journal ends (the intent written, removals dropped,
a rollback's restore), so ``before`` is the running configuration found on
disk with them put back (:func:`before_from`). A change of one network on a
host of thousands writes one network, not the host. Without names (restore-nets,
whose rebuild may change every network) the whole ``before`` is written.

The journal lives next to the running configuration, on the same tmpfs
(``/run``): a reboot wipes both, and restore-nets rebuilds from the
persistent configuration instead.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from persistence.atomic import atomic_remove, atomic_write_text, ensure_dir, read_json
from shared import faults
from shared.layered import encodable

log = logging.getLogger(__name__)

FORMAT = 1  # the whole ``before``
DELTA_FORMAT = 2  # ``changes``: the named entries of ``before`` only
NAME = "transaction.journal"
SECTIONS = ("networks", "bonds")


def _encodable(section: Mapping[str, Any]) -> dict:
    """A section as orjson takes it: a dict (a layered one's folded walk,
    shared: only encoded)."""
    out = encodable(section)
    return out if type(out) is dict else dict(out)


class TransactionJournal:
    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / NAME

    def begin(
        self,
        verb: str,
        before: Mapping[str, Any],
        names: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        """Record that ``verb`` starts from running configuration ``before``.

        ``names``: ``{"networks": [...], "bonds": [...]}``, the only entries
        the transaction may change: only those are written (see the module
        docstring); None: the whole ``before``."""
        faults.arm()
        ensure_dir(self.path.parent)
        head = {"verb": verb, "pid": os.getpid(), "started": time.time()}
        if names is None:
            body: dict[str, Any] = {"format": FORMAT, "before": {
                section: _encodable(before.get(section, {})) for section in SECTIONS
            }}  # fmt: skip
        else:
            body = {"format": DELTA_FORMAT, "changes": {
                section: {name: before.get(section, {}).get(name)
                          for name in names.get(section, ())}
                for section in SECTIONS
            }}  # fmt: skip
        # orjson: a thousand networks' worth of ``before`` in a millisecond
        atomic_write_text(self.path, orjson.dumps({**body, **head}).decode())

    def end(self) -> None:
        """The transaction is over: nothing to recover."""
        atomic_remove(self.path)

    def pending(self, running: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """The journal of an interrupted transaction, or None; its
        ``before`` whole (:func:`before_from` of ``running``, the running
        configuration found on disk, when only changes were journaled).

        A document that does not parse cannot be a journal this code wrote
        (its writes are atomic): it is set aside as ``*.corrupt`` and
        reported, not trusted.
        """
        try:
            entry = read_json(self.path)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            log.error("transaction journal %s unreadable (%s): set aside", self.path, error)
            self.set_aside("corrupt")
            return None
        if not _well_formed(entry):
            log.error("transaction journal %s is not one superd writes: set aside", self.path)
            self.set_aside("corrupt")
            return None
        if entry["format"] == DELTA_FORMAT:
            entry["before"] = before_from(entry, running or {})
        return entry

    def set_aside(self, suffix: str) -> None:
        """Keep the document for inspection under another name."""
        try:
            os.replace(self.path, self.path.with_name(f"{NAME}.{suffix}"))
        except FileNotFoundError:
            pass


def before_from(entry: Mapping[str, Any], running: Mapping[str, Any]) -> dict[str, dict]:
    """The running configuration a journal's transaction started from:
    its ``before`` (format 1), or ``running`` — what is on disk — with the
    journaled ``changes`` put back (format 2; null: the entry was absent)."""
    if entry.get("format") == FORMAT:
        return {section: dict(entry["before"][section]) for section in SECTIONS}
    out = {section: dict(running.get(section) or {}) for section in SECTIONS}
    for section in SECTIONS:
        for name, attrs in entry["changes"][section].items():
            if attrs is None:
                out[section].pop(name, None)
            else:
                out[section][name] = attrs
    return out


def _well_formed(entry: Any) -> bool:
    if not isinstance(entry, dict) or not isinstance(entry.get("verb"), str):
        return False
    if entry.get("format") == FORMAT:
        parts = entry.get("before")
    elif entry.get("format") == DELTA_FORMAT:
        parts = entry.get("changes")
    else:
        return False
    if not isinstance(parts, dict) or not all(isinstance(parts.get(s), dict) for s in SECTIONS):
        return False
    if entry["format"] == FORMAT:
        return True
    return all(
        isinstance(name, str) and (attrs is None or isinstance(attrs, dict))
        for section in SECTIONS
        for name, attrs in parts[section].items()
    )
