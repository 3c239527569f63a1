"""The ifcfg configurator makes a bond whole again when its files are as the
bond wants them but the kernel lost one of its NICs (it left and came back:
superd's repair is an ``edit_bond`` of the bond as it runs): the NIC is
brought up from its file, which enslaves it; nothing else is sent. The
kernel is a stand-in answering ``read_device`` (the iproute2 configurator's
read), the commands are recorded (``ifcfg_harness``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.unit.ifcfg_harness import apply, configurator, model

REQUEST = {
    "bonds": {"bond0": {"nics": ["eth0", "eth1"], "options": "mode=active-backup miimon=100"}},
    "networks": {"net": {"bonding": "bond0", "ipaddr": "10.0.0.1", "prefix": 24}},
}


class Kernel:
    """Devices by name, each ``{"index": …, "master": …}`` as the kernel has them."""

    def __init__(self, devices: dict[str, dict[str, Any]]) -> None:
        self.devices = devices

    def read_device(self, name: str) -> dict[str, Any] | None:
        return self.devices.get(name)


def kernel(eth1_master: int | None) -> Kernel:
    return Kernel({
        "bond0": {"name": "bond0", "index": 10, "master": None},
        "eth0": {"name": "eth0", "index": 2, "master": 10},
        "eth1": {"name": "eth1", "index": 3, "master": eth1_master},
    })  # fmt: skip


def repair(tmp_path: Path, eth1_master: int | None) -> list[str]:
    """The bond applied, then edited as it runs: the commands of the edit."""
    conf, recorder = configurator(tmp_path)
    apply(conf, REQUEST)
    recorder.commands.clear()
    conf.kernel = kernel(eth1_master)  # type: ignore[assignment]
    bonds, _ = model(REQUEST)
    conf.begin()
    conf.modify_bond(bonds["bond0"], bonds["bond0"])
    conf.commit()
    return recorder.commands


def test_a_nic_the_kernel_released_from_its_bond_is_brought_up_from_its_file(
    tmp_path: Path,
) -> None:
    assert repair(tmp_path, eth1_master=None) == ["/sbin/ifup eth1"]


def test_a_whole_bond_edited_as_it_runs_sends_nothing(tmp_path: Path) -> None:
    assert repair(tmp_path, eth1_master=10) == []


def test_a_nic_that_is_gone_is_left_for_when_it_comes_back(tmp_path: Path) -> None:
    conf, recorder = configurator(tmp_path)
    apply(conf, REQUEST)
    recorder.commands.clear()
    gone = kernel(None)
    del gone.devices["eth1"]
    conf.kernel = gone  # type: ignore[assignment]
    bonds, _ = model(REQUEST)
    conf.modify_bond(bonds["bond0"], bonds["bond0"])
    assert recorder.commands == []
