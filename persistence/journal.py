"""superd's transaction journal: what to go back to if superd dies midway.

Before a network-changing transaction touches the kernel, superd writes the
running configuration it started from (``before``) to one small document in
its run dir, crash-safely (``atomic_write_text``); it removes the document
when the transaction is over: committed, failed and rolled back in-process,
or rolled back after a lost connectivity check. A journal found at start-up
therefore means the process died inside a transaction; superd restores
``before`` before it serves anything (``superd.verbs.Verbs.recover``).

The journal lives next to the running configuration, on the same tmpfs
(``/run``): a reboot wipes both, and restore-nets rebuilds from the
persistent configuration instead.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from persistence.atomic import atomic_remove, atomic_write_text, ensure_dir, read_json
from shared import faults

log = logging.getLogger(__name__)

FORMAT = 1
NAME = "transaction.journal"


class TransactionJournal:
    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / NAME

    def begin(self, verb: str, before: Mapping[str, Any]) -> None:
        """Record that ``verb`` starts from running configuration ``before``."""
        faults.arm()
        ensure_dir(self.path.parent)
        # orjson: a thousand networks' worth of ``before`` in a millisecond
        document = orjson.dumps(
            {
                "format": FORMAT,
                "verb": verb,
                "pid": os.getpid(),
                "started": time.time(),
                "before": {
                    "networks": dict(before.get("networks", {})),
                    "bonds": dict(before.get("bonds", {})),
                },
            },
        )
        atomic_write_text(self.path, document.decode())

    def end(self) -> None:
        """The transaction is over: nothing to recover."""
        atomic_remove(self.path)

    def pending(self) -> dict[str, Any] | None:
        """The journal of an interrupted transaction, or None.

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
        return entry

    def set_aside(self, suffix: str) -> None:
        """Keep the document for inspection under another name."""
        try:
            os.replace(self.path, self.path.with_name(f"{NAME}.{suffix}"))
        except FileNotFoundError:
            pass


def _well_formed(entry: Any) -> bool:
    if not isinstance(entry, dict) or entry.get("format") != FORMAT:
        return False
    before = entry.get("before")
    return (
        isinstance(before, dict)
        and isinstance(before.get("networks"), dict)
        and isinstance(before.get("bonds"), dict)
        and isinstance(entry.get("verb"), str)
    )
