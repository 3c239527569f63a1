"""The rollback after a failed connectivity check (``Verbs.apply_plan``):
the objectified rollback, moved out of ``superd.verbs`` to keep it short."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from shared.errors import NetError
from superd.setup_networks import NetworkSetup, rollback_request

log = logging.getLogger("netreload.superd.verbs")  # the verb's log, as before

ROLLBACK_OPTIONS = {"connectivityCheck": False, "_inRollback": True}


def roll_back_after_lost_connectivity(core: NetworkSetup, before: Mapping) -> str | None:
    """The configurators undo the change as a whole where they can (a
    NetworkManager checkpoint), then the objectified rollback: the
    pre-change running configuration, as a request, planned and applied
    like any other, verified against the kernel. None, or why it failed."""
    core.undo_pending()
    networks, bondings = rollback_request(before, core.persistence.running.snapshot())
    try:
        core.apply(core.plan(networks, bondings, ROLLBACK_OPTIONS))
    except NetError as error:
        # NetworkSetup left kernel and running configuration in step (in
        # the new state); the engine is told through the code 10 answer.
        log.error("rollback after the connectivity check failed: %s", error)
        return str(error)
    core.persistence.replace_running(before.get("networks", {}), before.get("bonds", {}))
    core.restore_taken()
    return None
