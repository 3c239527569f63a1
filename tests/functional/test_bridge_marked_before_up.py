"""A bridge the iproute2 configurator creates carries netreload's mark
before it comes up.

Why it matters: marking a device that is up is a state change the kernel
announces to every subsystem (NETDEV_CHANGE), and IPv6 answers it by walking
its whole routing table — beside 5,000 bridges ~3 ms of CPU per network
added (benchmarks/README.md, Round 7). Marked while down, the bridge costs
no such walk, and no one watching the host ever sees it up unmarked.
Read from the namespace's own link notifications (a socket bound to the
link group, no request sent on it).
"""

from __future__ import annotations

import re
import signal
import subprocess
import time

from shared.netmodel.ownership import OWNER_ALIAS
from tests.functional.conftest import HostNs
from tests.functional.test_iproute2_configurator import apply, bridge, call, link

# the first line of a link in `ip monitor`: "7: net1: <BROADCAST,UP,...> mtu ..."
HEAD = re.compile(r"^\d+: (?P<name>[^:@ ]+)[^:]*: <(?P<flags>[^>]*)>")


def link_states(ns: str, name: str, calls: list[dict]) -> list[tuple[bool, str | None]]:
    """(up, alias) of every link notification about ``name`` while ``calls``
    run (``ip -d monitor link``: the alias on a line of its own)."""
    monitor = subprocess.Popen(
        ["ip", "-d", "-n", ns, "monitor", "link"], stdout=subprocess.PIPE, text=True
    )
    try:
        time.sleep(0.3)  # subscribed before the calls
        apply(ns, *calls)
        time.sleep(0.5)
    finally:
        monitor.send_signal(signal.SIGTERM)
        output, _ = monitor.communicate(timeout=10)
    seen: list[list] = []
    for line in output.splitlines():
        head = HEAD.match(line)
        if head:
            seen.append([head["name"], "UP" in head["flags"].split(","), None])
        elif seen and line.strip().startswith("alias "):
            seen[-1][2] = line.strip().removeprefix("alias ")
    return [(up, alias) for link_name, up, alias in seen if link_name == name]


def test_a_new_bridge_is_marked_before_it_comes_up(host_ns: HostNs) -> None:
    ns = host_ns.name
    seen = link_states(ns, "net1", [call("create_bridge", bridge("net1", None))])
    assert any(up for up, _ in seen), seen  # it did come up, and we saw it
    assert all(alias == OWNER_ALIAS for up, alias in seen if up), seen
    br = link(ns, "net1")
    assert "UP" in br["flags"] and br.get("ifalias") == OWNER_ALIAS
