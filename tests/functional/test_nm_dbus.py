"""netreload's NetworkManager D-Bus client against a real NetworkManager.

Each test starts a private NetworkManager on a private bus inside the
test's namespace (``nm_lab``) and drives it with ``configurators.nm_dbus``
from a process in that namespace (the client itself does not care where it
runs: D-Bus is a socket; the devices are the namespace's). Assertions read
NetworkManager back with ``nmcli`` on the private bus and the kernel with
``ip -j``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from configurators import nm_dbus
from configurators.nm_dbus import NmClient
from shared.errors import ErrorCode, NetError
from tests.functional.conftest import HostNs, ip_json
from tests.functional.nm_lab import TIMEOUT, NmLab, why_no_nm

pytestmark = pytest.mark.skipif(why_no_nm() is not None, reason=str(why_no_nm()))


@pytest.fixture
def lab(host_ns: HostNs, tmp_path: Path) -> Iterator[NmLab]:
    with NmLab(host_ns.name, tmp_path / "nm") as lab:
        yield lab


@pytest.fixture
def client(lab: NmLab) -> Iterator[NmClient]:
    client = NmClient(lab.address, timeout=TIMEOUT)
    try:
        yield client
    finally:
        client.close()


def bridge_profile(name: str, address: str) -> dict:
    return {
        "connection": {"id": name, "type": "bridge", "interface-name": name, "autoconnect": False},
        "bridge": {"stp": False, "forward-delay": 2},
        "ipv4": {"method": "manual", "address-data": [{"address": address, "prefix": 24}]},
        "ipv6": {"method": "disabled"},
        "user": {"data": {nm_dbus.MARK_KEY: nm_dbus.MARK_VALUE}},
    }


def port_profile(name: str, bridge: str) -> dict:
    return {
        "connection": {
            "id": name,
            "type": "802-3-ethernet",
            "interface-name": name,
            "master": bridge,
            "slave-type": "bridge",
            "autoconnect": False,
        },
        "user": {"data": {nm_dbus.MARK_KEY: nm_dbus.MARK_VALUE}},
    }


def addresses(ns: str, device: str) -> list[str]:
    (entry,) = ip_json(ns, "-4", "addr", "show", "dev", device)
    return [f"{a['local']}/{a['prefixlen']}" for a in entry.get("addr_info", [])]


def test_unreachable_networkmanager_is_its_own_error(tmp_path: Path) -> None:
    with pytest.raises(NetError) as info:
        NmClient(f"unix:path={tmp_path / 'no-bus.sock'}")
    assert info.value.code == ErrorCode.NM_CONNECTION == 33


def test_a_bus_without_networkmanager_is_the_same_error(lab: NmLab) -> None:
    lab.stop_nm()
    with pytest.raises(NetError) as info:
        NmClient(lab.address)
    assert info.value.code == ErrorCode.NM_CONNECTION


def test_networkmanager_not_answering_is_told_apart_from_absent(lab: NmLab) -> None:
    client = NmClient(lab.address, timeout=1)  # a call waits 1 + 5 s
    try:
        with lab.frozen_nm(), pytest.raises(NetError) as info:
            client.connection_paths()
    finally:
        client.close()
    assert info.value.code == ErrorCode.NM_CONNECTION
    assert "gave no answer to ListConnections (waited up to 6 s)" in info.value.message


def test_in_memory_bridge_profile_activates_with_its_port(lab: NmLab, client: NmClient) -> None:
    bridge = client.add_connection(bridge_profile("nrbr0", "10.30.0.1"))
    port = client.add_connection(port_profile("veth_0", "nrbr0"))
    active = {"nrbr0": client.activate(bridge), "veth_0": client.activate(port)}
    assert client.wait_active(active) == {}
    ns = lab.netns
    assert addresses(ns, "nrbr0") == ["10.30.0.1/24"]
    (veth,) = ip_json(ns, "link", "show", "dev", "veth_0")
    assert veth["master"] == "nrbr0"
    profiles = lab.connections()
    assert profiles["nrbr0"]["device"] == "nrbr0" and profiles["veth_0"]["device"] == "veth_0"
    assert list(lab.keyfiles.iterdir()) == []  # in memory: nothing written
    assert lab.connection("nrbr0", "connection.autoconnect")["connection.autoconnect"] == "no"


def test_update_changes_an_active_profile_after_reactivation(lab: NmLab, client: NmClient) -> None:
    path = client.add_connection(bridge_profile("nrbr1", "10.31.0.1"))
    assert client.wait_active({"b": client.activate(path)}) == {}
    client.update_connection(path, bridge_profile("nrbr1", "10.31.0.2"))
    assert client.wait_active({"b": client.activate(path)}) == {}
    assert addresses(lab.netns, "nrbr1") == ["10.31.0.2/24"]


def test_deactivation_is_awaited(lab: NmLab, client: NmClient) -> None:
    path = client.add_connection(bridge_profile("nrbr2", "10.32.0.1"))
    active = client.activate(path)
    assert client.wait_active({"b": active}) == {}
    client.deactivate(active)
    assert client.wait_active({"b": active}, want=nm_dbus.DEACTIVATED) == {}
    assert "nrbr2" not in lab.device_states() or lab.device_states()["nrbr2"] != "connected"


def test_owned_profiles_are_exactly_the_marked_ones(lab: NmLab, client: NmClient) -> None:
    client.add_connection(bridge_profile("ours", "10.33.0.1"))
    lab.nmcli("connection", "add", "type", "bridge", "ifname", "admins", "con-name", "admins")
    assert set(client.owned_profiles()) == {"ours"}
    assert {"ours", "admins"} <= set(lab.connections())


def test_delete_removes_the_profile_and_tolerates_a_second_time(
    lab: NmLab, client: NmClient
) -> None:
    path = client.add_connection(bridge_profile("gone", "10.34.0.1"))
    client.delete_connection(path)
    client.delete_connection(path)
    assert "gone" not in lab.connections()
    assert client.settings(path) is None


def test_managed_property_is_set_on_the_nic(lab: NmLab, client: NmClient) -> None:
    device = client.device("veth_1")
    client.set_managed(device, False)
    assert lab.device_states()["veth_1"] == "unmanaged"
    client.set_managed(device, True)
    assert client.managed(device) is True
    assert lab.device_states()["veth_1"] != "unmanaged"
    assert client.device("no_such_nic") is None


def test_checkpoint_rollback_deletes_new_profiles_and_devices(lab: NmLab, client: NmClient) -> None:
    nic = client.device("veth_0")
    checkpoint = client.checkpoint_create([nic], rollback_timeout=60)
    assert lab.checkpoints() == [checkpoint]
    bridge = client.add_connection(bridge_profile("nrbr3", "10.35.0.1"))
    port = client.add_connection(port_profile("veth_0", "nrbr3"))
    assert client.wait_active({"b": client.activate(bridge), "p": client.activate(port)}) == {}
    result = client.checkpoint_rollback(checkpoint)
    assert result == {nic: nm_dbus.ROLLBACK_OK}
    assert client.devices_settled([nic])
    assert lab.checkpoints() == []
    assert not {"nrbr3", "veth_0"} & set(lab.connections())
    (veth,) = ip_json(lab.netns, "link", "show", "dev", "veth_0")
    assert "master" not in veth


def test_checkpoint_destroy_keeps_the_changes(lab: NmLab, client: NmClient) -> None:
    checkpoint = client.checkpoint_create([client.device("veth_0")], rollback_timeout=60)
    path = client.add_connection(bridge_profile("nrbr4", "10.36.0.1"))
    assert client.wait_active({"b": client.activate(path)}) == {}
    client.checkpoint_destroy(checkpoint)
    client.checkpoint_destroy(checkpoint)  # already gone: nothing
    assert lab.checkpoints() == []
    assert addresses(lab.netns, "nrbr4") == ["10.36.0.1/24"]


def test_load_connections_reads_a_written_keyfile(lab: NmLab, client: NmClient) -> None:
    keyfile = lab.keyfiles / "loaded.nmconnection"
    keyfile.write_text(
        "[connection]\nid=loaded\ntype=bridge\ninterface-name=loaded\n"
        "autoconnect=false\n[ipv4]\nmethod=disabled\n[ipv6]\nmethod=disabled\n"
    )
    keyfile.chmod(0o600)
    assert client.load_connections([str(keyfile)]) == []
    assert "loaded" in lab.connections()


def test_networkmanager_restart_forgets_in_memory_profiles(lab: NmLab, client: NmClient) -> None:
    client.add_connection(bridge_profile("volatile", "10.37.0.1"))
    lab.stop_nm()
    lab.start_nm()
    assert "volatile" not in lab.connections()
