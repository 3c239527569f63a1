"""At boot, before the network service reads the ifcfg folder
(``netreload remove-net-persistence``): netreload's files of devices the
persistent configuration does not name are removed (files only: nothing is
up yet), so the host does not come up with a network netreload dropped."""

from __future__ import annotations

import logging

from configurators.ifcfg import devices_named, journal_dir
from configurators.ifcfg_files import IfcfgFiles
from persistence.unified import UnifiedPersistence
from shared.config import Config

log = logging.getLogger("netreload.ifcfg")


def remove_unnamed_files(config: Config) -> list[str]:
    """The devices whose file went."""
    files = IfcfgFiles(config.ifcfg_dir, journal_dir(config))
    if files.pending_journal():  # a transaction a crash interrupted: undone first
        files.restore(files.rollback_changes())
    keep = devices_named(UnifiedPersistence(config).restore_source())
    dropped = [device for device in files.devices() if device not in keep]
    for device in dropped:
        files.stage(device, None)
    changes = files.changes()
    files.write(changes)
    files.commit()
    if dropped:
        log.info("removed the ifcfg files of %s", ", ".join(dropped))
    return dropped
