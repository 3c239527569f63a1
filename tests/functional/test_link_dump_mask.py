"""A link dump without the IPv6 statistics (``netlink.query``'s request
carries ``RTEXT_FILTER_SKIP_STATS``) decodes, on a real kernel, to exactly
the links a dump with them gives: what the live netinfo and the
configurator read does not change, only the bytes the kernel sends."""

from __future__ import annotations

from tests.functional.conftest import HostNs
from tests.functional.ns_exec import run_json

SCRIPT = """
import json, socket
from netlink import constants, query
from netlink.constants import IFINFO

sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)

def links():
    return {m.body["name"]: m.body for m in query.dump(sock, constants.RTM_GETLINK)
            if m.family == socket.AF_UNSPEC}

masked = links()
request = query._REQUEST_BODY[constants.RTM_GETLINK]
query._REQUEST_BODY[constants.RTM_GETLINK] = lambda family: IFINFO.pack(family, 0, 0, 0, 0)
try:
    full = links()
finally:
    query._REQUEST_BODY[constants.RTM_GETLINK] = request
print(json.dumps({"masked": masked, "full": full}, sort_keys=True, default=repr))
"""


def test_a_link_dump_without_statistics_decodes_to_the_same_links(host_ns: HostNs) -> None:
    host_ns.batch([
        "link add brm type bridge stp_state 0 forward_delay 0",
        "link set brm alias netreload",
        "addr add 10.99.0.1/24 dev brm",
        "link set brm up",
        "link set veth_1 master brm",
    ])  # fmt: skip
    read = run_json(host_ns.name, SCRIPT)
    assert {"brm", "veth_0", "veth_1", "lo"} <= set(read["masked"])
    assert read["masked"] == read["full"]
