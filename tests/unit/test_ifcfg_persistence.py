"""``net_persistence = ifcfg``: the files are the persistent configuration;
what changed since the last setSafeNetworkConfig is kept as backups, which
restore-nets (and, at boot, remove-net-persistence) bring back and
setSafeNetworkConfig drops."""

from __future__ import annotations

from pathlib import Path

from persistence.ifcfg import IfcfgPersistence, restore_safe_files
from tests.unit.ifcfg_harness import apply, configurator, files, model, remove
from tests.unit.test_ifcfg_read import canonical

SAFE = {"networks": {"mgmt": {"nic": "eth0", "ipaddr": "192.0.2.10", "netmask": "255.255.255.0"}}}
EDITED = {"networks": {"mgmt": {"nic": "eth0", "bootproto": "dhcp"}}}
ADDED = {"networks": {"net10": {"nic": "eth1"}}}


def safe_host(tmp_path: Path):  # noqa: ANN201
    conf, recorder = configurator(tmp_path, persistence="ifcfg")
    apply(conf, SAFE)
    persistence = IfcfgPersistence(conf.config)
    persistence.replace_running(canonical(SAFE)[0], {})
    persistence.set_safe_config()
    return conf, recorder, persistence


def test_changes_since_the_safe_configuration_keep_the_safe_files(tmp_path: Path) -> None:
    conf, _, persistence = safe_host(tmp_path)
    safe_mgmt = (conf.config.ifcfg_dir / "ifcfg-mgmt").read_text()
    apply(conf, EDITED)
    apply(conf, ADDED)
    assert conf.files.safe_backups() == {"eth1": None, "mgmt": safe_mgmt, "net10": None}
    networks, bonds = canonical(SAFE)
    assert persistence.restore_source() == {"networks": networks, "bonds": bonds}


def test_a_file_back_to_its_safe_text_drops_its_backup(tmp_path: Path) -> None:
    conf, _, _ = safe_host(tmp_path)
    apply(conf, ADDED)
    remove(conf, ADDED)
    assert conf.files.safe_backups() == {}


def test_set_safe_config_drops_the_backups(tmp_path: Path) -> None:
    conf, _, persistence = safe_host(tmp_path)
    apply(conf, ADDED)
    persistence.set_safe_config()
    assert conf.files.safe_backups() == {}
    networks, _ = canonical({"networks": {**SAFE["networks"], **ADDED["networks"]}})
    assert persistence.restore_source()["networks"] == networks


def test_at_boot_the_safe_files_go_back_before_the_network_reads_them(tmp_path: Path) -> None:
    conf, recorder, _ = safe_host(tmp_path)
    safe_files = files(conf.config.ifcfg_dir)
    apply(conf, EDITED)
    apply(conf, ADDED)
    recorder.commands = []
    assert restore_safe_files(conf.config) == ["eth1", "mgmt", "net10"]
    assert files(conf.config.ifcfg_dir) == safe_files
    assert conf.files.safe_backups() == {}
    assert recorder.commands == []  # files only: nothing is up yet at boot


def test_restore_nets_rebuilds_the_safe_networks_through_the_configurator(
    tmp_path: Path,
) -> None:
    conf, recorder, persistence = safe_host(tmp_path)
    safe_files = files(conf.config.ifcfg_dir)
    apply(conf, EDITED)
    apply(conf, ADDED)
    recorder.commands = []
    wanted = persistence.restore_source()  # what restore-nets plans to
    _, added = model(ADDED)
    _, safe = model({"networks": {n: a for n, a in wanted["networks"].items()}})
    conf.begin()
    conf.remove_network(added["net10"])
    conf.add_network(safe["mgmt"], 1500, False)
    conf.commit()
    assert files(conf.config.ifcfg_dir) == safe_files
    assert conf.files.safe_backups() == {}
    assert "/sbin/ifup mgmt" in recorder.commands
