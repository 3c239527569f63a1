"""``netreload upgrade-unified-persistence``: from a host set up with ifcfg
files (netreload's or the production agent's) to unified persistence.

The files of ``[ifcfg] dir`` are read as networks and bonds
(:mod:`configurators.ifcfg_read`: bootproto, addresses, bond options …),
checked like a request, and written as the running configuration and, as
a whole, the persistent one. Once: a marker (``lib_dir/upgrade/
unified-persistence``, listing what was upgraded and the production
agent's files taken over) makes a second run do nothing. A run that fails
changes nothing (files that do not read as networks are refused before
anything is written; a failed write puts the running configuration back).

Then either flow of the design:

1. no reboot: ``net_persistence = unified``, ``net_configurator =
   iproute2`` (or nm), restart the daemons, ``netreload restore-nets``: the
   ifcfg configurator's devices go down, its files (and the production
   agent's files the marker lists) are removed, the networks rebuilt by the
   new configurator;
2. reboot: the old files bring the host up, ``netreload-upgrade.service``
   runs this before ``netreload-restore-nets.service``, which does the rest.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from configurators import ifcfg_format as fmt
from configurators.ifcfg_files import iter_files
from configurators.ifcfg_read import read_networks
from persistence.atomic import atomic_write_json, ensure_dir, read_json
from persistence.unified import UnifiedPersistence
from shared.config import Config

log = logging.getLogger("netreload.upgrade")


def marker_path(config: Config) -> Path:
    return config.lib_dir / "upgrade" / "unified-persistence"


def taken_over(config: Config) -> frozenset[str]:
    """The production agent's files (devices) the upgrade took over."""
    try:
        marker = read_json(marker_path(config))
    except (FileNotFoundError, ValueError):
        return frozenset()
    devices = marker.get("vdsm_files", []) if isinstance(marker, dict) else []
    return frozenset(d for d in devices if fmt.valid_device_name(d))


def upgrade(config: Config) -> dict[str, Any]:
    """Run the upgrade once; what it did (``upgraded`` False: done before)."""
    marker = marker_path(config)
    if marker.exists():
        return {"upgraded": False, **read_json(marker)}
    texts = dict(iter_files(config.ifcfg_dir))
    networks, bonds = read_networks(texts)  # refused here: nothing written
    vdsm = sorted(d for d, t in texts.items() if fmt.origin(t) is fmt.Origin.VDSM)
    persistence = UnifiedPersistence(config)
    before = persistence.running.snapshot()
    try:
        persistence.replace_running(networks, bonds)
        persistence.set_safe_config()
    except BaseException:
        persistence.replace_running(before["networks"], before["bonds"])
        raise
    done = {"networks": sorted(networks), "bonds": sorted(bonds), "vdsm_files": vdsm}
    ensure_dir(marker.parent)
    atomic_write_json(marker, done)
    log.info("upgraded to unified persistence: %s", done)
    return {"upgraded": True, **done}
