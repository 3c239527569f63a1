"""``netreload remove-net-persistence`` with ``net_configurator = nm``: at
boot, before NetworkManager starts, the keyfiles marked as netreload's (an
older version's, or written by hand) are removed from ``[nm] keyfile_dir``;
the administrator's stay. Real keyfiles, written by a real NetworkManager
(``nm_lab``) on the private bus; read back on disk and with ``nmcli`` once
NetworkManager starts again, as after a reboot.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from configurators import nm_dbus
from configurators.nm_dbus import NmClient
from tests.functional.conftest import HostNs
from tests.functional.nm_lab import TIMEOUT, NmLab, why_no_nm

pytestmark = pytest.mark.skipif(why_no_nm() is not None, reason=str(why_no_nm()))

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def lab(host_ns: HostNs, tmp_path: Path) -> Iterator[NmLab]:
    with NmLab(host_ns.name, tmp_path / "nm") as lab:
        yield lab


def on_disk_bridge(lab: NmLab, name: str, marked: bool) -> None:
    """A bridge profile NetworkManager writes to its keyfile folder,
    netreload's mark in its ``user`` setting or not."""
    settings: dict = {
        "connection": {"id": name, "type": "bridge", "interface-name": name, "autoconnect": False},
        "ipv4": {"method": "disabled"},
        "ipv6": {"method": "disabled"},
    }
    if marked:
        settings["user"] = {"data": {nm_dbus.MARK_KEY: nm_dbus.MARK_VALUE}}
    client = NmClient(lab.address, timeout=TIMEOUT)
    try:
        client.add_connection(settings, flags=nm_dbus.TO_DISK | nm_dbus.BLOCK_AUTOCONNECT)
    finally:
        client.close()


def remove_net_persistence(tmp_path: Path, lab: NmLab) -> dict:
    config = tmp_path / "netreload.conf"
    config.write_text(
        "[vars]\nnet_configurator = nm\n"
        f"[paths]\nrun_dir = {tmp_path / 'run'}\nlib_dir = {tmp_path / 'lib'}\n"
        f"[nm]\nbus = {lab.address}\nkeyfile_dir = {lab.keyfiles}\ntimeout = {TIMEOUT}\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "frontd.cli", "--config", str(config), "--json",
         "remove-net-persistence"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def keyfile_ids(lab: NmLab) -> dict[str, str]:
    """{profile id: file name} of the keyfiles in the lab's folder."""
    ids = {}
    for path in lab.keyfiles.iterdir():
        for line in path.read_text().splitlines():
            if line.startswith("id="):
                ids[line.removeprefix("id=")] = path.name
    return ids


def test_remove_net_persistence_removes_netreloads_keyfiles_only(
    lab: NmLab, tmp_path: Path
) -> None:
    on_disk_bridge(lab, "stale0", marked=True)
    on_disk_bridge(lab, "adminbr", marked=False)
    files = keyfile_ids(lab)
    assert set(files) == {"stale0", "adminbr"}
    lab.stop_nm()  # boot: NetworkManager starts after remove-net-persistence
    result = remove_net_persistence(tmp_path, lab)
    assert result == {"removed": [files["stale0"]]}
    assert keyfile_ids(lab) == {"adminbr": files["adminbr"]}
    lab.start_nm()
    held = {name for name, entry in lab.connections().items() if entry["type"] != "loopback"}
    assert held == {"adminbr"}
