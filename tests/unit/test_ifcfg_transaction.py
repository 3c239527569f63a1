"""The ifcfg configurator's transaction: backups before the first write,
rollback in the right device order, crash recovery, ownership of files and
names (``[ifcfg] apply = initscripts``, commands recorded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from configurators import ifcfg_files
from configurators import ifcfg_format as fmt
from configurators.ifcfg import journal_dir
from shared.errors import ErrorCode, NetError
from tests.unit.ifcfg_harness import apply, configurator, files, model

MGMT = {"networks": {"mgmt": {"nic": "eth0", "ipaddr": "192.0.2.10", "netmask": "255.255.255.0"}}}
VLAN = {"networks": {"net10": {"nic": "eth1", "vlan": 10, "bootproto": "dhcp"}}}


def test_a_failed_ifup_restores_the_files_and_takes_devices_down_then_up(tmp_path: Path) -> None:
    conf, recorder = configurator(tmp_path)
    apply(conf, MGMT)
    before = files(tmp_path / "network-scripts")
    recorder.commands = []
    recorder.fail = {"/sbin/ifup net10"}
    with pytest.raises(NetError) as failure:
        apply(conf, VLAN)
    assert failure.value.code == ErrorCode.FAILED_IFUP
    conf.rollback()
    assert files(tmp_path / "network-scripts") == before
    assert recorder.commands == [
        "/sbin/ifup eth1",
        "/sbin/ifup eth1.10",
        "/sbin/ifup net10",  # fails
        # rollback: bridges, then VLANs, then the rest down; nothing to bring up
        "/sbin/ifdown net10",
        "/sbin/ifdown eth1.10",
        "/sbin/ifdown eth1",
    ]
    assert not journal_dir(conf.config).exists()


def test_rollback_of_an_edit_brings_the_old_files_up_lower_first(tmp_path: Path) -> None:
    conf, recorder = configurator(tmp_path)
    apply(conf, VLAN)
    before = files(tmp_path / "network-scripts")
    recorder.commands = []
    edited = {"networks": {"net10": {"nic": "eth1", "vlan": 10, "mtu": 9000}}}
    bonds, networks = model(edited)
    conf.begin()
    conf.add_network(networks["net10"], 9000, False)
    conf.flush()
    recorder.commands = []
    conf.rollback()  # e.g. the connectivity check timed out
    assert files(tmp_path / "network-scripts") == before
    assert recorder.commands == [
        "/sbin/ifdown net10",
        "/sbin/ifdown eth1.10",
        "/sbin/ifdown eth1",
        "/sbin/ifup eth1",
        "/sbin/ifup eth1.10",
        "/sbin/ifup net10",
    ]


def test_every_file_is_backed_up_before_the_first_write_absent_as_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf, _ = configurator(tmp_path)
    apply(conf, MGMT)
    old_mgmt = (tmp_path / "network-scripts" / "ifcfg-mgmt").read_text()
    journal_at_first_write: list[dict] = []
    write = ifcfg_files.atomic_write_text

    def spy(path: Path, text: str, mode: int) -> None:
        if Path(path).parent == conf.files.folder and not journal_at_first_write:
            journal_at_first_write.append(conf.files.backups())
        write(path, text, mode)

    monkeypatch.setattr(ifcfg_files, "atomic_write_text", spy)
    edited = {"networks": {"mgmt": {"nic": "eth0", "bootproto": "dhcp"}, **VLAN["networks"]}}
    _, networks = model(edited)
    conf.begin()
    for network in networks.values():  # one operation each, sent at once
        conf.add_network(network, network.top.mtu, False)
    expected = {"eth1": None, "eth1.10": None, "mgmt": old_mgmt, "net10": None}
    assert conf.files.backups() == expected
    assert journal_at_first_write == [{"mgmt": old_mgmt}]  # mgmt's operation came first
    conf.commit()
    assert conf.files.backups() == {}


def test_an_interrupted_write_is_undone_by_the_next_start(tmp_path: Path) -> None:
    conf, _ = configurator(tmp_path)
    apply(conf, MGMT)
    before = files(tmp_path / "network-scripts")
    conf.begin()
    for device, fields in [("eth1", {"DEVICE": "eth1"}), ("net10", {"DEVICE": "net10"}),
                           ("mgmt", {"DEVICE": "mgmt", "TYPE": "Bridge"})]:  # fmt: skip
        conf.files.stage(device, fields)
    changes = conf.files.changes()
    for change in changes:
        conf.files._backup(change.device, change.old)  # noqa: SLF001
    fmt_path = conf.files.path(changes[0].device)
    fmt_path.write_text(changes[0].new or "")  # the crash: one file of three written
    restarted, recorder = configurator(tmp_path)
    assert restarted.recover() == [changes[0].device]
    assert files(tmp_path / "network-scripts") == before
    assert recorder.commands == [f"/sbin/ifdown {changes[0].device}"]
    assert not journal_dir(restarted.config).exists()


def test_a_file_netreload_did_not_write_is_never_rewritten(tmp_path: Path) -> None:
    conf, recorder = configurator(tmp_path)
    folder = tmp_path / "network-scripts"
    folder.mkdir()
    (folder / "ifcfg-eth0").write_text("DEVICE=eth0\nBOOTPROTO=dhcp\nONBOOT=yes\n")
    with pytest.raises(NetError) as refused:
        apply(conf, MGMT)
    assert refused.value.code == ErrorCode.USED_NIC
    conf.rollback()
    assert files(folder) == {"ifcfg-eth0": "DEVICE=eth0\nBOOTPROTO=dhcp\nONBOOT=yes\n"}
    assert recorder.commands == []


def test_the_production_agents_files_are_left_to_the_upgrade(tmp_path: Path) -> None:
    conf, _ = configurator(tmp_path)
    folder = tmp_path / "network-scripts"
    folder.mkdir()
    vdsm = "# Generated by VDSM version 4.40.100.2-1.el8\nDEVICE=mgmt\nTYPE=Bridge\n"
    (folder / "ifcfg-mgmt").write_text(vdsm)
    with pytest.raises(NetError):
        apply(conf, MGMT)
    conf.rollback()
    assert (folder / "ifcfg-mgmt").read_text() == vdsm


def test_restore_removes_owned_files_the_running_configuration_does_not_name(
    tmp_path: Path,
) -> None:
    conf, recorder = configurator(tmp_path)
    apply(conf, {"networks": {**MGMT["networks"], **VLAN["networks"]}})
    folder = tmp_path / "network-scripts"
    (folder / "ifcfg-eth9").write_text("DEVICE=eth9\n")  # the administrator's
    recorder.commands = []
    running = {"networks": {"mgmt": {"nic": "eth0", "bridged": True}}, "bonds": {}}
    dropped = conf.remove_unrecorded(running)
    assert dropped == ["eth1", "eth1.10", "net10"]
    assert sorted(files(folder)) == ["ifcfg-eth0", "ifcfg-eth9", "ifcfg-mgmt"]
    assert recorder.commands == ["/sbin/ifdown net10", "/sbin/ifdown eth1.10", "/sbin/ifdown eth1"]


@pytest.mark.parametrize("name", ["../etc", ".hidden", "-x", "a/b", "toolongname12345", "", "a b"])
def test_names_are_validated_before_they_become_file_names(name: str) -> None:
    with pytest.raises(NetError) as refused:
        fmt.file_name(name)
    assert refused.value.code == ErrorCode.BAD_NIC


def test_a_vlan_removed_keeps_the_nic_file_another_vlan_needs(tmp_path: Path) -> None:
    conf, _ = configurator(tmp_path)
    two = {"networks": {"a": {"nic": "eth1", "vlan": 1}, "b": {"nic": "eth1", "vlan": 2}}}
    apply(conf, two)
    _, networks = model(two)
    conf.begin()
    conf.remove_network(networks["a"])
    conf.flush()
    conf.commit()
    assert sorted(files(tmp_path / "network-scripts")) == ["ifcfg-b", "ifcfg-eth1", "ifcfg-eth1.2"]


def test_a_vlan_removed_keeps_the_bridge_port_of_a_network_on_the_same_nic(
    tmp_path: Path,
) -> None:
    conf, _ = configurator(tmp_path)
    both = {"networks": {"a": {"nic": "eth1"}, "b": {"nic": "eth1", "vlan": 2}}}
    apply(conf, both)
    _, networks = model(both)
    conf.begin()
    conf.remove_network(networks["b"])
    conf.flush()
    conf.commit()
    folder = tmp_path / "network-scripts"
    assert sorted(files(folder)) == ["ifcfg-a", "ifcfg-eth1"]
    assert fmt.parse((folder / "ifcfg-eth1").read_text())["BRIDGE"] == "a"


def test_parse_reads_back_what_render_writes() -> None:
    fields = {"DEVICE": "bond0", "BONDING_OPTS": "mode=1 miimon=100", "X": 'it\'s "q" $HOME'}
    text = fmt.render(fields)
    assert fmt.origin(text) is fmt.Origin.NETRELOAD
    assert fmt.parse(text) == fields


def test_recovery_removes_the_temporary_file_of_a_cut_short_write(tmp_path: Path) -> None:
    conf, _ = configurator(tmp_path)
    apply(conf, MGMT)
    before = files(tmp_path / "network-scripts")
    conf.begin()
    conf.files.stage("mgmt", {"DEVICE": "mgmt", "TYPE": "Bridge"})
    change = conf.files.changes()[0]
    conf.files._backup(change.device, change.old)  # noqa: SLF001
    (tmp_path / "network-scripts" / ".ifcfg-mgmt.k3j2h1.tmp").write_text("half")  # the kill
    (tmp_path / "network-scripts" / ".other.tmp").write_text("not ours")
    restarted, _ = configurator(tmp_path)
    restarted.recover()
    assert files(tmp_path / "network-scripts") == {**before, ".other.tmp": "not ours"}
