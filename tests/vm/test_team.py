"""Bonds as teams (``[vars] bonding_driver = team``): teamd driving the
kernel's team device, on the VM lane's kernel (the host's has no team).

One module-scoped scenario drives netreload's core (``superd.oneshot``,
the configuration naming ``bonding_driver = team``): request 1 creates a
team per supported mode, two networks (a bridged VLAN and an untagged one)
on the active-backup team and a team to be removed; the active port of
the active-backup team then loses its carrier; request 2 edits a team's
mode and another's ports and removes one. Refused and rolled-back
requests come after, in their own tests. Read back with ``teamdctl …
config dump`` / ``state dump``, ``ip -j -d`` and ``/proc``.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_bonds_and_vlans import REQUEST_TIMEOUT, Scenario, apply, host, link, link_names, ok

from tests.functional.agent import Agent

MODES = {
    "bondrr": ("mode=0 miimon=100", {"name": "roundrobin"}),
    "bondab": ("mode=1 miimon=100 updelay=200", {"name": "activebackup"}),
    "bondlb": ("mode=2 xmit_hash_policy=layer3+4",
               {"name": "loadbalance", "tx_hash": ["ipv4", "ipv6", "l4"]}),
    "bondbc": ("mode=3", {"name": "broadcast"}),
    "bondlacp": ("mode=4 lacp_rate=fast miimon=100",
                 {"name": "lacp", "active": True, "fast_rate": True}),
}  # fmt: skip
PORTS = {
    "bondrr": ["dummy_0", "dummy_1"],
    "bondab": ["dummy_2", "dummy_3"],
    "bondlb": ["dummy_4", "dummy_5"],
    "bondbc": ["dummy_6", "dummy_7"],
    "bondlacp": ["dummy_8", "dummy_9"],
    "bondgo": ["dummy_10", "dummy_11"],
}
FAILOVER_WAIT = 120.0  # seconds; the emulated guest is slow, no timing is asserted


def teamdctl(ns: str, team: str, *args: str) -> Any:
    out = subprocess.run(
        ["ip", "netns", "exec", ns, "teamdctl", team, *args],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return json.loads(out)


def teamd_processes(team: str) -> list[int]:
    """Pids of teamd processes driving ``team`` (from /proc)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"teamd") and team.encode() in argv:
            pids.append(int(proc.name))
    return pids


def ports_of(ns: str, team: str) -> list[str]:
    out = subprocess.run(
        ["ip", "-n", ns, "-j", "link", "show", "master", team],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return sorted(entry["ifname"] for entry in json.loads(out or "[]"))


def active_port(ns: str, team: str) -> str:
    return teamdctl(ns, team, "state", "dump").get("runner", {}).get("active_port", "")


def use_team(agent: Agent) -> None:
    text = agent.config_path.read_text().replace("[vars]\n", "[vars]\nbonding_driver = team\n")
    agent.config_path.write_text(text)


def stop_teamds(agent: Agent) -> None:
    for pid_file in (agent.root / "run" / "team").glob("*.pid"):
        try:
            subprocess.run(["kill", pid_file.read_text().strip()], check=False)
        except OSError:
            pass


@pytest.fixture(scope="module")
def teams(vm_kernel_modules, tmp_path_factory) -> Iterator[Scenario]:
    with host(tmp_path_factory, 14) as agent:
        use_team(agent)
        s = Scenario(agent)
        ns = s.ns
        try:
            bondings = {
                name: {"nics": PORTS[name], "options": MODES[name][0]} for name in MODES
            }
            bondings["bondgo"] = {"nics": PORTS["bondgo"], "options": "mode=1 miimon=100"}
            ok(apply(agent, {
                "tnet": {"bonding": "bondab", "vlan": 100, "ipaddr": "10.100.0.1", "prefix": 24},
                "tuntag": {"bonding": "bondab", "bridged": False,
                           "ipaddr": "10.101.0.1", "prefix": 24},
            }, bondings))  # fmt: skip
            s.seen["config"] = {name: teamdctl(ns, name, "config", "dump") for name in bondings}
            s.seen["ports"] = {name: ports_of(ns, name) for name in bondings}
            s.seen["bondgo_pids"] = teamd_processes("bondgo")
            # failover: the active port of bondab loses its carrier
            before = active_port(ns, "bondab")
            s.seen["active_before"] = before
            subprocess.run(["ip", "-n", ns, "link", "set", before, "carrier", "off"], check=True)
            deadline = time.monotonic() + FAILOVER_WAIT
            while active_port(ns, "bondab") == before and time.monotonic() < deadline:
                time.sleep(0.5)
            s.seen["active_after"] = active_port(ns, "bondab")
            s.seen["caps"] = agent.run("caps", timeout=REQUEST_TIMEOUT)
            subprocess.run(["ip", "-n", ns, "link", "set", before, "carrier", "on"], check=True)
            # edit a mode and a team's ports, remove a team
            ok(apply(agent, {}, {
                "bondrr": {"nics": PORTS["bondrr"], "options": "mode=1 miimon=100"},
                "bondlb": {"nics": ["dummy_4"], "options": MODES["bondlb"][0]},
                "bondgo": {"remove": True},
            }))  # fmt: skip
            s.seen["edited_config"] = {
                name: teamdctl(ns, name, "config", "dump") for name in ("bondrr", "bondlb")
            }
            s.seen["edited_ports"] = {name: ports_of(ns, name) for name in ("bondrr", "bondlb")}
            # teamd of bondab killed: the device stays, nothing drives it
            ok(agent.run("set-safe-config", timeout=REQUEST_TIMEOUT))
            (killed,) = teamd_processes("bondab")
            subprocess.run(["kill", "-KILL", str(killed)], check=True)
            deadline = time.monotonic() + FAILOVER_WAIT
            while teamd_processes("bondab") and time.monotonic() < deadline:
                time.sleep(0.2)
            s.seen["killed"] = {"pid": killed, "device_left": "bondab" in link_names(ns)}
            s.seen["restore"] = agent.run("restore-nets", timeout=REQUEST_TIMEOUT)
            s.seen["restored"] = {
                "pids": teamd_processes("bondab"), "ports": ports_of(ns, "bondab"),
                "vlan": link(ns, "bondab.100"), "runner": teamdctl(ns, "bondab", "config", "dump"),
            }  # fmt: skip
            yield s
        finally:
            stop_teamds(agent)


# -- creation ---------------------------------------------------------------


@pytest.mark.parametrize("team", sorted(MODES))
def test_each_supported_mode_runs_its_teamd_runner(teams, team: str) -> None:
    runner = teams.seen["config"][team]["runner"]
    # what the options asked for; teamd adds its defaults (lacp: a tx_hash)
    assert MODES[team][1].items() <= runner.items(), runner
    assert teams.seen["ports"][team] == PORTS[team]


def test_miimon_and_updelay_become_the_ethtool_link_watch(teams) -> None:
    watch = teams.seen["config"]["bondab"]["link_watch"]
    assert (watch["name"], watch["delay_up"]) == ("ethtool", 200)


def test_a_team_is_a_team_device_marked_as_netreloads(teams) -> None:
    entry = link(teams.ns, "bondab")
    assert entry["linkinfo"]["info_kind"] == "team"
    assert entry.get("ifalias") == "netreload"


def test_networks_and_vlans_sit_on_a_team(teams) -> None:
    ns = teams.ns
    vlan = link(ns, "bondab.100")
    assert vlan["linkinfo"]["info_kind"] == "vlan" and vlan["link"] == "bondab"
    assert vlan["master"] == "tnet"
    caps = teams.seen["caps"]
    assert caps["networks"]["tnet"]["southbound"] == "bondab.100"
    assert caps["networks"]["tuntag"]["iface"] == "bondab"
    assert "10.101.0.1/24" in caps["bondings"]["bondab"]["ipv4addrs"]


def test_capabilities_report_a_team_under_bondings_as_requested(teams) -> None:
    entry = teams.seen["caps"]["bondings"]["bondlacp"]
    assert entry["opts"] == {"mode": "4", "lacp_rate": "1", "miimon": "100"}
    assert entry["slaves"] == PORTS["bondlacp"]


# -- failover -----------------------------------------------------------------


def test_active_backup_fails_over_when_the_active_ports_carrier_goes(teams) -> None:
    before, after = teams.seen["active_before"], teams.seen["active_after"]
    assert before in PORTS["bondab"] and after in PORTS["bondab"]
    assert after != before


def test_capabilities_name_the_active_port(teams) -> None:
    assert teams.seen["caps"]["bondings"]["bondab"]["active_slave"] == teams.seen["active_after"]


# -- edit and removal -----------------------------------------------------------


def test_a_mode_edit_restarts_the_team_with_the_new_runner(teams) -> None:
    assert teams.seen["edited_config"]["bondrr"]["runner"] == {"name": "activebackup"}
    assert teams.seen["edited_ports"]["bondrr"] == PORTS["bondrr"]


def test_a_port_edit_releases_the_port_free_and_up(teams) -> None:
    assert teams.seen["edited_ports"]["bondlb"] == ["dummy_4"]
    entry = link(teams.ns, "dummy_5")
    assert "master" not in entry and "UP" in entry["flags"]


def test_removal_leaves_no_teamd_process_and_no_device(teams) -> None:
    assert teams.seen["bondgo_pids"], "bondgo's teamd was running before its removal"
    assert teamd_processes("bondgo") == []
    names = {e["ifname"] for e in json.loads(subprocess.run(
        ["ip", "-n", teams.ns, "-j", "link", "show"], capture_output=True, text=True, check=True,
    ).stdout)}  # fmt: skip
    assert "bondgo" not in names
    for port in PORTS["bondgo"]:
        entry = link(teams.ns, port)
        assert "master" not in entry and "UP" in entry["flags"]


def test_restore_nets_restarts_a_team_whose_teamd_was_killed(teams) -> None:
    assert teams.seen["killed"]["device_left"]
    assert teams.seen["restore"]["code"] == 0, teams.seen["restore"]
    restored = teams.seen["restored"]
    assert restored["pids"] and teams.seen["killed"]["pid"] not in restored["pids"]
    assert restored["ports"] == PORTS["bondab"]
    assert restored["runner"]["runner"]["name"] == "activebackup"


def test_restore_nets_rebuilds_the_networks_on_a_restarted_team(teams) -> None:
    vlan = teams.seen["restored"]["vlan"]
    assert vlan["link"] == "bondab" and vlan["master"] == "tnet"


# -- refusal and rollback ---------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [("mode=1 fail_over_mac=active", "fail_over_mac"), ("mode=6", "mode=6")],
)
def test_an_option_without_team_equivalent_changes_nothing(teams, options, named) -> None:
    agent = teams.agent
    kernel_before, running_before = agent.kernel_state(), agent.running()
    config_before = teamdctl(teams.ns, "bondbc", "config", "dump")
    result = apply(agent, {}, {
        "bondbc": {"nics": PORTS["bondbc"], "options": options},
        "bondnew": {"nics": ["dummy_12"], "options": "mode=1 miimon=100"},
    })  # fmt: skip
    assert result["code"] == 25 and named in result["message"], result
    assert agent.kernel_state() == kernel_before
    assert agent.running() == running_before
    assert teamdctl(teams.ns, "bondbc", "config", "dump") == config_before
    assert teamd_processes("bondnew") == []


def test_a_failed_change_rolls_a_new_team_back(teams) -> None:
    agent = teams.agent
    kernel_before, running_before = agent.kernel_state(), agent.running()
    # add_bond bondrb, [failure], add_network
    result = apply(
        agent,
        {"onrb": {"bonding": "bondrb", "vlan": 7, "bridged": False}},
        {"bondrb": {"nics": ["dummy_12", "dummy_13"], "options": "mode=1 miimon=100"}},
        env={"NETRELOAD_TEST_FAIL_AFTER_OPS": "1"},
    )
    assert result["code"] == 29 and "injected" in result["message"], result
    assert teamd_processes("bondrb") == []
    assert agent.kernel_state() == kernel_before
    assert agent.running() == running_before
