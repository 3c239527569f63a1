"""The iproute2 configurator's address reads inside a transaction
(``configurators.iproute2_netlink.Kernel.addresses``), against a real
kernel in a namespace: each device is read by a dump of its own addresses
when first asked for, so a one-network change on a host of thousands does
not read the whole host's addresses."""

from __future__ import annotations

from tests.functional.conftest import HostNs
from tests.functional.ns_exec import run_json

# Reads veth_0, lets `ip` add an address to veth_1, then reads veth_1.
SCRIPT = """
import json, socket, subprocess, sys
from pyroute2 import IPRoute
from configurators import iproute2_netlink
from configurators.iproute2_netlink import Kernel

iproute2_netlink.ADDRESS_READS = int(sys.argv[1])
ipr = IPRoute()
kernel = Kernel(ipr, socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))
index = {name: ipr.link_lookup(ifname=name)[0] for name in ("veth_0", "veth_1")}
kernel.cache_addresses(True)
first = kernel.addresses(index["veth_0"], socket.AF_INET)
subprocess.run(["ip", "addr", "add", "10.9.1.1/24", "dev", "veth_1"], check=True)
second = kernel.addresses(index["veth_1"], socket.AF_INET)
print(json.dumps({"veth_0": first, "veth_1": second}))
"""


def read_in_transaction(host_ns: HostNs, reads: int) -> dict:
    return run_json(host_ns.name, SCRIPT, str(reads))


def test_a_device_first_asked_for_is_read_then_not_with_the_first_one(host_ns: HostNs) -> None:
    host_ns.ip("addr", "add", "10.9.0.1/24", "dev", "veth_0")
    read = read_in_transaction(host_ns, reads=16)
    assert read == {"veth_0": [["10.9.0.1", 24]], "veth_1": [["10.9.1.1", 24]]}


def test_past_the_per_device_reads_one_dump_serves_the_rest(host_ns: HostNs) -> None:
    host_ns.ip("addr", "add", "10.9.0.1/24", "dev", "veth_0")
    read = read_in_transaction(host_ns, reads=1)
    assert read == {"veth_0": [["10.9.0.1", 24]], "veth_1": [["10.9.1.1", 24]]}
