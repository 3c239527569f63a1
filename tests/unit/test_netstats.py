"""Host.getNetworkStatistics' report from link dicts and counters (no root)."""

from __future__ import annotations

import socket

import pytest

from netlink import constants, query
from netlink.constants import NLMSG, NLMSG_DONE, NLMSG_ERROR, S32
from superd import netstats
from superd.netstats import IFF_RUNNING, IFF_UP, Counters, dump_counters, statistics

UP = IFF_UP | IFF_RUNNING


def link(index: int, name: str, flags: int = UP, **extra: object) -> dict:
    return {"index": index, "name": name, "flags": flags, "kind": None, "master": None,
            "link": None, "parent_dev": None, "info": {}, **extra}  # fmt: skip


def sysfs(values: dict[tuple[str, str], str]):
    return lambda device, attribute: values.get((device, attribute))


def fake_nic(name: str) -> bool:
    return name.startswith("eth")


def report(links: list[dict], counters=None, values=None) -> dict:
    return statistics(links, counters or {}, fake_nic, sysfs(values or {}), now=1700000000.5)


def test_each_device_in_the_agents_keys_and_types() -> None:
    counters = {2: Counters(rx=10, tx=20, rx_dropped=1, tx_dropped=2, rx_errors=3, tx_errors=4)}
    values = {("eth0", "speed"): "10000", ("eth0", "duplex"): "full"}
    entry = report([link(2, "eth0")], counters, values)["network"]["eth0"]
    assert entry == {
        "name": "eth0", "state": "up", "rx": "10", "tx": "20", "rxDropped": "1",
        "txDropped": "2", "rxErrors": "3", "txErrors": "4", "speed": "10000",
        "duplex": "full", "sampleTime": 1700000000.5,
    }  # fmt: skip


def test_sample_time_is_a_float_even_when_whole() -> None:
    entry = statistics([link(1, "lo")], {}, fake_nic, sysfs({}), now=1700000000)
    assert type(entry["network"]["lo"]["sampleTime"]) is float


def test_totals_are_strings_summing_each_kind() -> None:
    counters = {1: Counters(rx_dropped=5, tx_dropped=1), 2: Counters(rx_dropped=7, tx_dropped=0)}
    got = report([link(1, "lo"), link(2, "eth0")], counters)
    assert (got["rxDropped"], got["txDropped"]) == ("12", "1")


@pytest.mark.parametrize(("flags", "state"), [(UP, "up"), (IFF_UP, "down"), (0, "down")])
def test_state_is_up_only_when_up_and_running(flags: int, state: str) -> None:
    assert report([link(2, "eth0", flags)])["network"]["eth0"]["state"] == state


@pytest.mark.parametrize(
    "device",
    [link(3, "br0", kind="bridge"), link(1, "lo", UP | 0x8), link(2, "eth0", 0)],
    ids=["bridge", "loopback", "down"],
)
def test_duplex_is_not_read_where_the_kernel_cannot_tell(device: dict) -> None:
    values = {(device["name"], "duplex"): "full"}  # what a read would (never) say
    assert report([device], values=values)["network"][device["name"]]["duplex"] == "unknown"


def test_unknown_speed_and_duplex_are_reported_as_the_agent_does() -> None:
    entry = report([link(3, "br0", kind="bridge")])["network"]["br0"]
    assert (entry["speed"], entry["duplex"]) == ("1000", "unknown")


@pytest.mark.parametrize("text", ["-1", "65535", "4294967295", "", "fast"])
def test_a_nic_speed_sysfs_cannot_tell_is_unknown(text: str) -> None:
    entry = report([link(2, "eth0")], values={("eth0", "speed"): text})["network"]["eth0"]
    assert entry["speed"] == "1000"


def test_a_nic_not_running_has_no_speed() -> None:
    values = {("eth0", "speed"): "25000"}
    assert report([link(2, "eth0", IFF_UP)], values=values)["network"]["eth0"]["speed"] == "1000"


BOND_SLAVES = [link(2, "eth0", master=9), link(3, "eth1", master=9)]
SPEEDS = {("eth0", "speed"): "1000", ("eth1", "speed"): "10000"}


@pytest.mark.parametrize(
    ("info", "speed"),
    [({"mode": 1, "active_slave": 3}, "10000"), ({"mode": 4}, "11000"),
     ({"mode": 0}, "11000"), ({"mode": 3}, "1000")],
    ids=["active-backup", "802.3ad", "balance-rr", "broadcast"],
)  # fmt: skip
def test_a_bond_speed_follows_its_mode(info: dict, speed: str) -> None:
    links = [link(9, "bond0", kind="bond", info=info), *BOND_SLAVES]
    assert report(links, values=SPEEDS)["network"]["bond0"]["speed"] == speed


def test_a_vlan_has_the_speed_of_the_device_under_it() -> None:
    links = [link(2, "eth1"), link(5, "eth1.20", kind="vlan", link=2)]
    assert report(links, values=SPEEDS)["network"]["eth1.20"]["speed"] == "10000"


def test_a_device_without_counters_counts_zero() -> None:
    entry = report([link(4, "gone")], {})["network"]["gone"]
    assert entry["rx"] == entry["tx"] == "0"


@pytest.mark.parametrize("name", ["../../etc", "a/b", ".", "..", "x" * 16, ""])
def test_sysfs_is_never_read_through_a_path_like_name(name: str) -> None:
    assert netstats.read_sysfs(name, "speed") is None


# -- the RTM_GETSTATS dump ----------------------------------------------------------


class FakeNetlink:
    """Answers one RTM_GETSTATS dump with the given (ifindex, stats64) messages."""

    def __init__(self, entries: list[tuple[int, tuple[int, ...]]], error: int = 0) -> None:
        self.entries, self.error, self.sent = entries, error, b""

    def send(self, data: bytes) -> None:
        self.sent = data

    def recv(self, size: int) -> bytes:
        seq = NLMSG.unpack_from(self.sent)[3]
        out = b""
        for index, values in self.entries:
            body = constants.IF_STATS_MSG.pack(socket.AF_UNSPEC, 0, 0, index, 1)
            stats = constants.STATS64.pack(*values) + bytes(8 * 16)  # the rest of the struct
            body += query.nla(constants.IFLA_STATS_LINK_64, stats)
            out += NLMSG.pack(NLMSG.size + len(body), constants.RTM_NEWSTATS, 2, seq, 0)
            out += body
        if self.error:
            body = S32.pack(-self.error) + bytes(16)
            head = NLMSG.pack(NLMSG.size + len(body), NLMSG_ERROR, 0, seq, 0)
            return out + head + body
        return out + NLMSG.pack(NLMSG.size + 4, NLMSG_DONE, 2, seq, 0) + bytes(4)


def test_the_dump_asks_for_64_bit_link_counters_only() -> None:
    sock = FakeNetlink([])
    dump_counters(sock)  # type: ignore[arg-type]
    kind = NLMSG.unpack_from(sock.sent)[1]
    filter_mask = constants.IF_STATS_MSG.unpack_from(sock.sent, NLMSG.size)[4]
    assert (kind, filter_mask) == (constants.RTM_GETSTATS, 1)


def test_the_dump_reads_each_devices_counters() -> None:
    # rx/tx packets, rx/tx bytes, rx/tx errors, rx/tx dropped
    sock = FakeNetlink([(1, (1, 2, 300, 400, 5, 6, 7, 8)), (2, (0, 0, 2**40, 9, 0, 0, 0, 0))])
    assert dump_counters(sock) == {  # type: ignore[arg-type]
        1: Counters(rx=300, tx=400, rx_dropped=7, tx_dropped=8, rx_errors=5, tx_errors=6),
        2: Counters(rx=2**40, tx=9),
    }


def test_a_dump_the_kernel_refuses_is_an_os_error() -> None:
    with pytest.raises(OSError):
        dump_counters(FakeNetlink([], error=95))  # type: ignore[arg-type]
