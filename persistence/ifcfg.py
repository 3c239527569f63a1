"""``net_persistence = ifcfg``: the production agent's older model, for
hosts that keep it (only with ``net_configurator = ifcfg``).

The ifcfg files are the persistent configuration. Every file a change
touches keeps, until the next ``setSafeNetworkConfig``, its text from the
last safe configuration (``lib_dir/ifcfg/safe/``, maintained by
:class:`configurators.ifcfg_files.IfcfgFiles` at each commit; a file back
to its safe text drops it). So:

* the configuration to restore is the files as they were at the last
  ``setSafeNetworkConfig`` (the files now, with the safe backups laid over
  them), read as networks (:mod:`configurators.ifcfg_read`);
* restore-nets rebuilds it through the ifcfg configurator, which rewrites
  the files to their safe text (and the backups go, the files being safe
  again); at boot ``remove-net-persistence`` first puts the safe files back,
  before the network service reads them (:func:`restore_safe_files`), so
  the host comes up with its last safe configuration;
* ``setSafeNetworkConfig`` drops the backups (and keeps the unified
  persistent copy as well, for look-ups).

The running configuration (JSON) is kept as with unified persistence, for
look-ups and rollback.
"""

from __future__ import annotations

from configurators.ifcfg import make_files
from configurators.ifcfg_files import Change, iter_files
from configurators.ifcfg_read import read_networks
from persistence.unified import Snapshot, UnifiedPersistence
from shared.config import Config


class IfcfgPersistence(UnifiedPersistence):
    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.config = config

    def restore_source(self) -> Snapshot:
        files = make_files(self.config)
        texts: dict[str, str | None] = dict(iter_files(self.config.ifcfg_dir))
        texts.update(files.safe_backups())
        networks, bonds = read_networks({d: t for d, t in texts.items() if t is not None})
        return {"networks": networks, "bonds": bonds}

    def set_safe_config(self) -> None:
        super().set_safe_config()
        make_files(self.config).drop_safe()


def restore_safe_files(config: Config) -> list[str]:
    """Boot, before the network service: the safe files back in place (files
    only); the devices whose file changed."""
    files = make_files(config)
    changes = [
        Change(device, files.disk_text(device), text)
        for device, text in files.safe_backups().items()
        if files.disk_text(device) != text
    ]
    files.write(changes)
    files.commit()  # the files are the safe ones again: their backups go
    files.drop_safe()
    return [change.device for change in changes]
