"""Load: a hundred engine clients polling capabilities while networks change.

The lab of ``test_end_to_end`` (``demo.lab.Lab``): superd and
frontd in an ``nrl-*-host`` namespace, the clients in the ``nrl-*-engine``
one, over the control path with mutual TLS. The clients are one process
(``tests.functional.load_clients``, asyncio): 100 pollers sending
``Host.getCapabilities`` back to back, a writer swapping groups of networks
with ``Host.setupNetworks`` back to back, and a contender toggling its own
group at the same time (see that module for the workload and for what a
half-applied view is). Every caps answer is checked; latencies are printed
as a table.

frontd accepts 64 STOMP connections (``frontd.stomp.MAX_CONNECTIONS``, no
setting): the first test shows the cap as shipped, the load test runs the
real frontd with the cap raised to fit 102 clients.

``NETRELOAD_SOAK=1``: two minutes of load instead of 15 seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from demo.lab import HOST_CONTROL_IP, SOURCE_ROOT, STOMP_PORT, Lab
from tests.functional.load_workload import groups_of

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")

SOAK = os.environ.get("NETRELOAD_SOAK") == "1"
POLLERS = 100
SECONDS = 120.0 if SOAK else 15.0
GROUPS, GROUP_SIZE = 3, 3  # main writer's groups; the contender has one more
SHIPPED_CAP = 64
RAISED_CAP = 128


def _lab(frontd_config: str = "") -> Iterator[Lab]:
    with Lab(prefix="nrl-", nics=3, frontd_config=frontd_config) as the_lab:
        try:
            yield the_lab
        finally:
            for name in ("superd", "frontd", "load"):
                text = the_lab.log(name)
                if text:
                    print(f"----- {name} log (end) -----\n{text[-4000:]}")


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from _lab()


@pytest.fixture
def raised_cap_lab() -> Iterator[Lab]:
    """frontd serving more STOMP connections than the shipped 64."""
    yield from _lab(f"max_connections = {RAISED_CAP}")


def run_clients(lab: Lab, **spec: object) -> dict:
    """Run the load driver in the engine namespace; its summary."""
    spec = {"host": HOST_CONTROL_IP, "port": STOMP_PORT, "pki": str(lab.pki),
            "groups": GROUPS, "group_size": GROUP_SIZE, **spec}  # fmt: skip
    path = lab.root / "load.json"
    path.write_text(json.dumps(spec))
    with (lab.logs / "load.log").open("ab") as log:
        proc = subprocess.run(
            ["ip", "netns", "exec", lab.engine_ns, sys.executable, "-m",
             "tests.functional.load_clients", "run", str(path)],
            stdout=subprocess.PIPE, stderr=log, cwd=SOURCE_ROOT,
            timeout=float(spec.get("seconds", 0)) + 180,
        )  # fmt: skip
    assert proc.returncode == 0, f"load driver failed:\n{lab.log('load')}"
    return json.loads(proc.stdout)


def test_frontd_serves_at_most_its_stomp_connection_cap_and_says_so_to_the_rest(
    lab: Lab,
) -> None:
    # Refused at CONNECT or pushed out later for a newcomer: either way an
    # ERROR frame saying why, and the cap's worth of clients still served.
    lab.start()
    summary = run_clients(lab, clients=SHIPPED_CAP + 4, connect_only=True)  # + 2 writers
    assert summary["pinged"] == SHIPPED_CAP
    turned_away = summary["refused"] + summary["ping_failures"]
    assert summary["refused_count"] + len(summary["ping_failures"]) == 6, turned_away
    assert all("too many connections" in why for why in turned_away), turned_away


def test_capabilities_read_while_setup_networks_runs_show_all_or_none_of_it(lab: Lab) -> None:
    # Few clients, big groups: each change is long enough to be read midway.
    lab.start()
    summary = run_clients(lab, clients=4, seconds=4.0, groups=2, group_size=8)
    assert_whole_views(lab, summary, groups=2, group_size=8)


def test_a_hundred_engine_clients_never_see_a_half_applied_setup_networks(
    raised_cap_lab: Lab, capsys: pytest.CaptureFixture
) -> None:
    lab = raised_cap_lab
    lab.start()
    summary = run_clients(lab, clients=POLLERS, seconds=SECONDS)
    with capsys.disabled():
        print("\n" + latency_table(summary))
        if slow := slow_setup_logs(lab, summary):
            print(slow)
    assert summary["connected"] == POLLERS + 2, summary["refused"]
    assert_whole_views(lab, summary, GROUPS, GROUP_SIZE)
    assert summary["per_client"]["min"] > 0  # every poller was served


def assert_whole_views(lab: Lab, summary: dict, groups: int, group_size: int) -> None:
    """No error but code 40, no half-applied view in any answer, both
    writers collided at least once, the host ends as the writers were told."""
    caps, writers = summary["caps"], summary["writers"]
    assert caps["errors"] == {}, caps["samples"]
    assert summary["violation_count"] == 0, json.dumps(
        [summary["violation_kinds"], *summary["violations"][:3]], indent=1
    )
    assert caps["ok"]["count"] > 0
    assert writers["main"]["errors"] == {}, writers["main"]["samples"]
    assert writers["contender"]["errors"] == {}, writers["contender"]["samples"]
    assert writers["main"]["ok"]["count"] >= 3
    refusals = writers["main"]["refused"]["count"] + writers["contender"]["refused"]["count"]
    assert refusals > 0, "the two writers never collided: code 40 was not exercised"
    assert summary["final_problems"] == []
    assert_host_matches(lab, summary["state"], groups, group_size)


def assert_host_matches(lab: Lab, state: dict, groups: int, group_size: int) -> None:
    """Kernel and running configuration hold exactly the groups the writers
    were last told were applied."""
    every = {g.name: g for g in [*groups_of(0, groups, group_size), *groups_of(1, 1, group_size)]}
    present = [state["main"]] if state["main"] else []
    if state["contender"]:
        present.append("w1g0")
    expected = {name for g in present for name in every[g].networks}
    assert set(lab.running_config()["nets"]) == expected
    links = {link["ifname"]: link for link in lab.ip_json("-d", "link", "show")}
    bridges = {
        n for n, link in links.items() if link.get("linkinfo", {}).get("info_kind") == "bridge"
    }
    assert bridges == expected
    for g in present:
        for name in every[g].networks:
            _, ports, address = every[g].devices(name)
            assert sorted(n for n, link in links.items() if link.get("master") == name) == ports
            addrs = lab.ip_json("addr", "show", "dev", name)[0]["addr_info"]
            assert address in {f"{a['local']}/{a['prefixlen']}" for a in addrs}


def slow_setup_logs(lab: Lab, summary: dict, slow: float = 5.0) -> str:
    """The daemons' log lines while the slowest setupNetworks ran, when it
    took over ``slow`` seconds (the lab and its logs go away after the test)."""
    found = [w["slowest"][0] for w in summary["writers"].values() if w["slowest"]]
    if not found or max(found)[0] < slow:
        return ""
    seconds, sent = max(found)
    h, m, s = map(int, sent.split(":"))
    end = h * 3600 + m * 60 + s + int(seconds) + 2
    until = f"{end // 3600 % 24:02}:{end // 60 % 60:02}:{end % 60:02}"
    lines = [f"----- logs from {sent} to {until} -----"]
    for name in ("superd", "frontd"):
        for line in lab.log(name).splitlines():
            stamp = line[11:19]  # "YYYY-MM-DD HH:MM:SS,mmm ..."
            if sent <= stamp <= until and "RESOURCE_UNAVAILABLE" not in line:
                lines.append(f"{name}: {line}")
    return "\n".join(lines[:200])


def latency_table(summary: dict) -> str:
    """The figures to quote: one row per kind of request."""
    rows = [
        ("getCapabilities", summary["caps"]["ok"]),
        ("setupNetworks (main, done)", summary["writers"]["main"]["ok"]),
        ("setupNetworks (main, code 40)", summary["writers"]["main"]["refused"]),
        ("setupNetworks (contender, done)", summary["writers"]["contender"]["ok"]),
        ("setupNetworks (contender, code 40)", summary["writers"]["contender"]["refused"]),
    ]
    elapsed = summary["elapsed"]
    lines = [
        f"load: {summary['connected']} STOMP/TLS clients ({POLLERS} pollers + 2 writers), "
        f"{elapsed:.1f} s, connected in {summary['connect_seconds']:.2f} s, "
        f"{summary['caps']['ok']['count'] / elapsed:.0f} caps answers/s, "
        f"per poller {summary['per_client']['min']}..{summary['per_client']['max']}, "
        f"half-applied views: {summary['violation_count']}",
        f"{'request':<36}{'count':>7}{'median':>9}{'p95':>9}{'p99':>9}{'max':>9}  (ms)",
    ]
    for label, stats in rows:
        if not stats.get("count"):
            lines.append(f"{label:<36}{0:>7}")
            continue
        ms = [stats[k] * 1000 for k in ("median", "p95", "p99", "max")]
        lines.append(f"{label:<36}{stats['count']:>7}" + "".join(f"{v:>9.1f}" for v in ms))
    slow = [w["slowest"][0] for w in summary["writers"].values() if w["slowest"]]
    if slow:  # to find it in the daemons' logs
        seconds, sent = max(slow)
        lines.append(f"slowest setupNetworks: {seconds:.2f} s, sent at {sent}")
    return "\n".join(lines)
