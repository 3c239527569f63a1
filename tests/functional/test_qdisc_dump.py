"""The root qdiscs hostQos looks at (``configurators.tc_hfsc.root_qdiscs``),
read through netreload's own netlink decoder, as pyroute2 reads them: same
devices, kinds and handles, against a real kernel in a namespace."""

from __future__ import annotations

import subprocess

from tests.functional.conftest import HostNs
from tests.functional.ns_exec import run_json

SCRIPT = """
import json, socket
from pyroute2 import IPRoute
from configurators.tc_hfsc import root_qdiscs
ipr = IPRoute()
raw = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
def named(roots):
    return {names[index]: root for index, root in roots.items()}
print(json.dumps({"raw": named(root_qdiscs(ipr, raw)), "pyroute2": named(root_qdiscs(ipr))}))
"""


def root_qdiscs_both_ways(host_ns: HostNs) -> dict:
    return run_json(host_ns.name, SCRIPT)


def test_root_qdiscs_read_raw_are_pyroute2s(host_ns: HostNs) -> None:
    subprocess.run(
        ["ip", "-n", host_ns.name, "link", "add", "brq", "up", "type", "bridge"], check=True
    )
    subprocess.run(
        ["tc", "-n", host_ns.name, "qdisc", "add", "dev", "veth_0", "root", "handle", "10:",
         "pfifo"],
        check=True,
    )  # fmt: skip
    read = root_qdiscs_both_ways(host_ns)
    assert read["raw"] == read["pyroute2"]
    assert read["raw"]["veth_0"] == {"kind": "pfifo", "handle": 0x10 << 16}
    assert read["raw"]["brq"]["kind"] == "noqueue"
