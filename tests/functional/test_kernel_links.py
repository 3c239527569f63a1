"""The iproute2 configurator's link reads inside a transaction
(``configurators.iproute2_netlink.Kernel.device``), against a real kernel in
a namespace: a bridge it creates comes back with the creation's answer, and
past ``LINK_READS`` reads one dump answers for every device, also for those
that do not exist — a request of a thousand networks does not ask the
kernel twice per bridge whether it is there."""

from __future__ import annotations

from tests.functional.conftest import HostNs
from tests.functional.ns_exec import run_json

SCRIPT = """
import json, socket, sys
from pyroute2 import IPRoute
from configurators import iproute2_netlink
from configurators.iproute2_netlink import Kernel

class Counting:
    def __init__(self, sock):
        self.sock, self.sent = sock, 0
    def send(self, data):
        self.sent += 1
        return self.sock.send(data)
    def __getattr__(self, name):
        return getattr(self.sock, name)

iproute2_netlink.LINK_READS = int(sys.argv[1])
raw = Counting(socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0))
kernel = Kernel(IPRoute(), raw)
kernel.cache_addresses(True)
out = {}
kernel.device("veth_0")
sent = raw.sent
out["absent"] = [kernel.device(f"nosuch{i}") for i in range(20)]
out["absent_requests"] = raw.sent - sent
sent = raw.sent
echoed = kernel.request("brq", "create bridge", "link", "add", ifname="brq", kind="bridge",
                        br_stp_state=0, br_forward_delay=0, mtu=1500, state="up", echo=True)
dev = kernel.created(echoed, "brq") or kernel.require("brq")
out["create_requests"] = raw.sent - sent
out["created"] = {k: dev[k] for k in ("name", "kind", "mtu")}
out["created_index_right"] = dev["index"] == IPRoute().link_lookup(ifname="brq")[0]
out["found_again"] = kernel.device("brq")["index"] == dev["index"]
kernel.mark(dev)
sent = raw.sent
indexes = kernel.link_indexes()
out["indexes_requests"] = raw.sent - sent
out["indexes_right"] = indexes == {
    link.get_attr("IFLA_IFNAME"): link["index"] for link in IPRoute().get_links()
}
kernel.delete_link(dev)
out["after_delete"] = kernel.device("brq")
print(json.dumps(out))
"""


def links_in_transaction(host_ns: HostNs, reads: int) -> dict:
    return run_json(host_ns.name, SCRIPT, str(reads))


def test_a_created_bridge_is_not_read_back(host_ns: HostNs) -> None:
    read = links_in_transaction(host_ns, reads=1000)
    assert read["create_requests"] == 1
    assert read["created"] == {"name": "brq", "kind": "bridge", "mtu": 1500}
    assert read["created_index_right"] and read["found_again"]
    assert read["after_delete"] is None


def test_past_the_per_device_reads_one_dump_answers_for_absent_devices(host_ns: HostNs) -> None:
    read = links_in_transaction(host_ns, reads=1)
    assert read["absent"] == [None] * 20
    assert read["absent_requests"] == 1  # the dump
    assert read["create_requests"] == 1
    assert read["created_index_right"] and read["found_again"]
    assert read["after_delete"] is None


def test_below_the_per_device_reads_each_device_is_asked_for(host_ns: HostNs) -> None:
    read = links_in_transaction(host_ns, reads=1000)
    assert read["absent"] == [None] * 20
    assert read["absent_requests"] == 20


def test_after_one_dump_the_link_indexes_come_from_the_transaction(host_ns: HostNs) -> None:
    """The host QoS sync at the end of a big request learns every link's
    index from what the transaction holds: no second dump of the host."""
    read = links_in_transaction(host_ns, reads=1)
    assert read["indexes_right"]
    assert read["indexes_requests"] == 0


def test_without_a_dump_the_link_indexes_are_dumped(host_ns: HostNs) -> None:
    read = links_in_transaction(host_ns, reads=1000)
    assert read["indexes_right"]
    assert read["indexes_requests"] == 1
