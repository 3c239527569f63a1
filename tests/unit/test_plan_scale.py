"""Planning one network on a host of many reads the others once: what a
one-network request costs follows the request, not the host (issue 21)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping

from shared.netmodel.plan import plan_setup_networks
from shared.netmodel.snapshot import NetinfoSnapshot, RunningConfig

HOST = 200


class Watched(Mapping):
    """A running network's attributes, counting the reads of each key."""

    def __init__(self, attrs: dict, reads: Counter) -> None:
        self._attrs, self._reads = attrs, reads

    def __getitem__(self, key: str) -> object:
        self._reads[key] += 1
        return self._attrs[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._attrs)

    def __len__(self) -> int:
        return len(self._attrs)


def running_network(i: int) -> dict:
    return {"bridged": True, "stp": False, "mtu": 1500, "bootproto": "none",
            "ipaddr": f"10.{i // 256}.{i % 256}.1", "netmask": "255.255.255.0",
            "defaultRoute": False, "dhcpv6": False, "ipv6autoconf": False,
            "nameservers": [], "switch": "legacy"}  # fmt: skip


def reads_per_other_network(request: dict) -> int:
    reads = [Counter() for _ in range(HOST)]
    running = RunningConfig(
        networks={f"bn{i}": Watched(running_network(i), reads[i]) for i in range(HOST)}
    )
    netinfo = NetinfoSnapshot(nics={"veth_0": {"mtu": 1500}})
    plan_setup_networks(request, {}, {"connectivityCheck": False}, netinfo, running)
    return max(sum(counter.values()) for counter in reads[1:])  # bn0 is the request's own


def test_adding_one_network_reads_each_other_once() -> None:
    request = {"new": {"bridged": True, "ipaddr": "10.200.0.1", "prefix": 24}}
    assert reads_per_other_network(request) <= 3  # its lower (nic, bonding), defaultRoute


def test_removing_one_network_reads_each_other_once() -> None:
    assert reads_per_other_network({"bn0": {"remove": True}}) <= 3
