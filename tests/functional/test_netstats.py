"""superd's network statistics read from a real kernel, in a test namespace,
without a live netinfo (superd's fallback: a link dump and a stats dump)."""

from __future__ import annotations

import subprocess
import sys

from tests.functional.conftest import HostNs, ip_json
from tests.functional.ns_exec import run_json

COLLECT = (
    "import json, socket\n"
    "from superd import netstats\n"
    "sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)\n"
    "print(json.dumps(netstats.collect(None, lambda name: name.startswith('veth_'), sock)))\n"
)


def collect(ns: str) -> dict:
    return run_json(ns, COLLECT)


def test_counters_are_the_kernels(host_ns: HostNs) -> None:
    loopback_traffic = (
        "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "for _ in range(3): s.sendto(bytes(500), ('127.0.0.1', 9))"
    )
    subprocess.run(["ip", "netns", "exec", host_ns.name, sys.executable, "-c", loopback_traffic],
                   check=True, timeout=60)  # fmt: skip
    stats = collect(host_ns.name)["network"]
    kernel = {link["ifname"]: link for link in ip_json(host_ns.name, "-s", "link", "show")}
    assert stats.keys() == kernel.keys()
    lo = kernel["lo"]["stats64"]
    assert lo["rx"]["bytes"] >= 3 * 500
    assert stats["lo"]["rx"] == str(lo["rx"]["bytes"])
    assert stats["lo"]["tx"] == str(lo["tx"]["bytes"])
    for name in ("veth_0", "veth_1"):  # links just up: neighbour discovery may still talk
        assert int(stats[name]["tx"]) <= kernel[name]["stats64"]["tx"]["bytes"]
        assert int(stats[name]["rxDropped"]) <= kernel[name]["stats64"]["rx"]["dropped"]


def test_a_nic_reports_its_sysfs_speed_and_duplex(host_ns: HostNs) -> None:
    read = ["ip", "netns", "exec", host_ns.name, "cat"]
    speed = subprocess.run([*read, "/sys/class/net/veth_0/speed"], capture_output=True, text=True,
                           check=True).stdout.strip()  # fmt: skip
    entry = collect(host_ns.name)["network"]["veth_0"]
    assert (entry["state"], entry["speed"], entry["duplex"]) == ("up", speed, "full")
