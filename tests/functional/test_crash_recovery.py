"""superd killed (SIGKILL) at every step of a 20-network setupNetworks.

The change goes from state OLD (ten networks) to state NEW (five of them
removed, five edited, ten added: twenty network entries) and back. A trial
starts superd with ``NETRELOAD_TEST_KILL_AT_STEP=k`` (``shared.faults``: the
process kills itself just before its k-th durable write — kernel request,
sysctl, persistence document, journal), sends the change and waits for the
process to die. The next trial's start-up is the recovery of the previous
kill; right after READY=1 the test asserts:

* kernel state (links with MTU/master/up, addresses, routes of every table,
  policy rules) and running configuration are exactly OLD, or exactly NEW
  if the kill came after the commit (the journal's removal) — and both the
  same one: each network with a gateway has its source-routing table and
  rules of one state, and no rule is left looking up a table without a
  default route (an orphan);
* no journal is left, every persistence document parses;
* no orphaned device: the namespace holds exactly the links of that state;
* another agent's bridge (``virbr0`` with an address, as libvirt makes it),
  on the host from the start, is there after every recovery, unmarked,
  with its address: a kill at any step never deletes nor takes over a
  device netreload did not create. A kill between creating a device and
  marking it as netreload's leaves one its running configuration names:
  superd marks it at start-up, and the recovery removes it.

k runs from 1 upwards in each direction until the change completes without
being killed (every step is a kill point once: about 200 kills); the two
directions are swept side by side in two namespaces. ``NETRELOAD_SOAK=1``
repeats the sweep ``SOAK_ROUNDS`` times. The counts are printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from persistence.journal import before_from
from shared.faults import KILL_ENV, LOG_ENV
from shared.wire import encode_frame, recv_frame
from tests.functional.conftest import HostNs, socket_folder
from tests.functional.superd_daemon import Superd, error_of, make_plan

NICS = 20
FOREIGN, FOREIGN_ADDR = "virbr0", "192.168.122.1/24"  # another agent's bridge
MIN_TRIALS = 190  # kills per round: every step of both directions
SOAK_ROUNDS = 5
SOAK = os.environ.get("NETRELOAD_SOAK") == "1"


def _net(nic: int, address: str | None, bridged: bool = True, ipv6: str | None = None,
         gateway: bool = False, default_route: bool = False) -> dict:  # fmt: skip
    attrs: dict[str, Any] = {"nic": f"veth_{nic}", "bridged": bridged}
    if address is not None:
        attrs.update(ipaddr=address, prefix=24)
        if gateway or default_route:
            attrs["gateway"] = address.rsplit(".", 1)[0] + ".254"
        if default_route:
            attrs["defaultRoute"] = True
    if ipv6 is not None:
        attrs["ipv6addr"] = ipv6
    return attrs


# OLD: n00..n09. NEW: n00..n04 removed, n05..n09 re-addressed, m10..m19 added
# (half of them with IPv4 and IPv6 addresses). Gateways: source routing for
# n00, n02, n07 in OLD and n05, n07, m13, m15 in NEW; the default route on
# n05 in OLD, on m11 in NEW.
OLD = {
    f"n{i:02}": _net(i, f"10.0.{i}.1", bridged=i % 3 != 0, gateway=i in (0, 2, 7),
                     default_route=i == 5)
    for i in range(10)
}  # fmt: skip
NEW = {
    **{f"n{i:02}": _net(i, f"10.1.{i}.1", bridged=i % 3 != 0, gateway=i in (5, 7))
       for i in range(5, 10)},
    **{
        f"m{i}": _net(
            i,
            f"10.2.{i}.1" if i % 2 else None,
            bridged=i % 4 != 1,
            ipv6=f"2001:db8:{i}::1/64" if i % 2 else None,
            gateway=i in (13, 15),
            default_route=i == 11,
        )
        for i in range(10, 20)
    },
}  # fmt: skip


def request_towards(target: dict, current: dict) -> dict:
    out: dict = {name: {"remove": True} for name in current if name not in target}
    out.update({name: attrs for name, attrs in target.items() if current.get(name) != attrs})
    return out


FORWARD = request_towards(NEW, OLD)
BACKWARD = request_towards(OLD, NEW)
assert len(FORWARD) == len(BACKWARD) == 20


def kernel_state(ns: str) -> dict:
    """Links, addresses, routes and rules, without what the kernel varies by
    itself (ifindex, link-local addresses, carrier flags on routes, the local
    table, the order of rules of one priority)."""

    def ip(*args: str) -> Any:
        out = subprocess.run(["ip", "-n", ns, "-j", *args], check=True, capture_output=True)
        return json.loads(out.stdout or b"[]")

    links = {
        link["ifname"]: (link.get("mtu"), link.get("master"), "UP" in link.get("flags", []),
                         link.get("linkinfo", {}).get("info_kind"))
        for link in ip("-d", "link", "show")
    }  # fmt: skip
    addrs = sorted(
        (a["ifname"], i["local"], i["prefixlen"])
        for a in ip("addr", "show")
        for i in a.get("addr_info", [])
        if not i["local"].startswith("fe80")
    )
    routes = sorted(
        (family, r.get("dst"), r.get("dev"), r.get("gateway"), r.get("table", "main"))
        for family in ("-4", "-6")
        for r in ip(family, "route", "show", "table", "all")
        if not str(r.get("dst", "")).startswith(("fe80", "ff00"))
        and r.get("type") != "multicast"
        # the local table mirrors the addresses (compared above); an IPv6
        # address gets its entry only once duplicate detection is over
        and r.get("table") != "local"
    )
    rules = sorted(
        (r["priority"], f"{r.get('src', 'all')}/{r.get('srclen', '')}",
         f"{r.get('dst', 'all')}/{r.get('dstlen', '')}", str(r["table"]))
        for r in ip("-4", "rule", "show")
    )  # fmt: skip
    return {"links": links, "addrs": addrs, "routes": routes, "rules": rules}


def orphan_rules(state: dict) -> list[tuple]:
    """Rules looking up a table (not the kernel's own) without a default route."""
    defaults = {table for (family, dst, _, _, table) in state["routes"]
                if family == "-4" and dst == "default"}  # fmt: skip
    return [rule for rule in state["rules"]
            if rule[3] not in ("local", "main", "default") and rule[3] not in defaults]


def documents(root: Path) -> dict[str, Any]:
    """Every persistence document under ``root`` (run and lib dirs), parsed:
    a truncated or torn one fails here."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.parent.name in ("nets", "bonds"):
            out[str(path.relative_to(root))] = json.loads(path.read_text())
    return out


def running_docs(root: Path) -> dict:
    """The running configuration's documents (temporary files included: a
    kill mid-write must not leave any behind once superd started again)."""
    tree = root / "run" / "netconf"
    return {
        kind: {p.name: json.loads(p.read_text()) for p in sorted((tree / kind).glob("*"))}
        for kind in ("nets", "bonds")
    }


class Sweep:
    """Trials against one superd home; knows what OLD and NEW look like."""

    def __init__(self, superd: Superd) -> None:
        self.superd = superd
        self.ns = superd.host.name
        self.states: dict[str, tuple[dict, dict]] = {}
        self.outcomes: Counter[str] = Counter()
        self.steps: dict[str, int] = {}

    def apply(self, request: dict, options: dict) -> dict:
        conn = self.superd.connect()
        try:
            plan = make_plan(conn, request, options)
            conn.sock.sendall(encode_frame({"id": 1, "verb": "apply_plan", "args": {"plan": plan}}))
            answer = recv_frame(conn.sock)
        except OSError:
            answer = None
        finally:
            conn.close()
        return {"ok": None} if answer is None else answer  # None: superd died under us

    def fingerprint(self) -> tuple[dict, dict]:
        return kernel_state(self.ns), running_docs(self.superd.root)

    def which_state(self) -> str:
        """OLD or NEW, asserting everything the recovery promises."""
        journal = self.superd.root / "run" / "transaction.journal"
        assert not journal.exists(), "journal left behind after start-up"
        documents(self.superd.root)  # every document parses
        assert_foreign_bridge_intact(self.ns)
        kernel, running = self.fingerprint()
        assert orphan_rules(kernel) == []
        for name, (want_kernel, want_running) in self.states.items():
            if running == want_running:
                assert kernel == want_kernel, f"running config is {name}, kernel is not:\n" + (
                    _diff(want_kernel, kernel)
                )
                return name
        raise AssertionError(f"running config is neither OLD nor NEW: {running}")

    def predicted(self) -> str:
        """The state the next start-up must find, from the files on disk: a
        journal's ``before`` (a change was interrupted), else the running
        configuration."""
        journal = self.superd.root / "run" / "transaction.journal"
        tree = self.superd.root / "run" / "netconf" / "nets"
        nets = {  # a temporary file of a write cut short is not a document
            p.name: json.loads(p.read_text()) for p in tree.glob("*") if not p.name.startswith(".")
        }
        if journal.exists():  # its ``before``, or its changes over what is on disk
            entry = json.loads(journal.read_text())
            nets = before_from(entry, {"networks": nets, "bonds": {}})["networks"]
        return next(name for name, (_, running) in self.states.items() if running["nets"] == nets)

    def trial(self, kill_at: int | None) -> bool:
        """Start superd (recovering the previous kill), check, change, maybe
        die there. Whether superd was killed."""
        expected = self.predicted()
        self.superd.env.pop(KILL_ENV, None)
        if kill_at is not None:
            self.superd.env[KILL_ENV] = str(kill_at)
        self.superd.start()
        state = self.which_state()
        assert state == expected, f"recovered to {state}, the journal said {expected}"
        request, target = (FORWARD, "NEW") if state == "OLD" else (BACKWARD, "OLD")
        options = {"connectivityCheck": False, "commitOnSuccess": target == "NEW"}
        answer = self.apply(request, options)
        killed = answer["ok"] is None
        if killed:
            self.superd.reap_killed()
        else:
            assert answer["ok"], error_of(answer)
            self.superd.stop()
        self.outcomes[f"{state}->{target} " + ("killed" if killed else "completed")] += 1
        return killed


def add_foreign_bridge(host: HostNs) -> None:
    host.batch([f"link add {FOREIGN} type bridge", f"addr add {FOREIGN_ADDR} dev {FOREIGN}",
                f"link set {FOREIGN} up"])  # fmt: skip


def assert_foreign_bridge_intact(ns: str) -> None:
    out = subprocess.run(["ip", "-n", ns, "-j", "-d", "addr", "show", "dev", FOREIGN],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 0, f"{FOREIGN}, another agent's bridge, was deleted"
    (bridge,) = json.loads(out.stdout)
    assert bridge["linkinfo"]["info_kind"] == "bridge" and "UP" in bridge["flags"]
    assert "ifalias" not in bridge, f"{FOREIGN} was marked as netreload's"
    addrs = [f"{a['local']}/{a['prefixlen']}" for a in bridge["addr_info"] if a["family"] == "inet"]
    assert addrs == [FOREIGN_ADDR], f"{FOREIGN} lost its address"


def _diff(want: dict, got: dict) -> str:
    lines = []
    for key in want:
        if want[key] != got.get(key):
            lines.append(f"{key}: want {want[key]}\n{key}: got  {got.get(key)}")
    return "\n".join(lines)


@pytest.fixture
def sweeps(make_host_ns: Callable[..., HostNs], tmp_path: Path) -> Iterator[list[Sweep]]:
    """Two superd homes (namespace, files, socket): the two directions are
    swept side by side."""
    daemons: list[Superd] = []
    with socket_folder("nrc-sock-") as sock_0, socket_folder("nrc-sock-") as sock_1:
        try:
            for i, sock_dir in enumerate((sock_0, sock_1)):
                (tmp_path / str(i)).mkdir()
                host = make_host_ns(NICS, prefix="nrc-")
                add_foreign_bridge(host)
                daemons.append(Superd(host, tmp_path / str(i), sock_dir))
            yield [Sweep(daemon) for daemon in daemons]
        finally:
            for daemon in daemons:
                daemon.kill()


def learn_states(sweep: Sweep) -> None:
    """OLD and NEW as an uninterrupted superd makes them; steps per direction."""
    log = sweep.superd.root / "steps.log"
    sweep.superd.env[LOG_ENV] = str(log)
    sweep.superd.start()
    try:
        conn = sweep.superd.connect()
        try:
            conn.result("apply_plan", plan=make_plan(conn, OLD, {"connectivityCheck": False}))
            sweep.states["OLD"] = sweep.fingerprint()
            for name, request, target in (("forward", FORWARD, "NEW"), ("back", BACKWARD, "OLD")):
                marks = len(log.read_text().splitlines()) if log.exists() else 0
                options = {"connectivityCheck": False, "commitOnSuccess": target == "NEW"}
                conn.result("apply_plan", plan=make_plan(conn, request, options))
                sweep.steps[name] = len(log.read_text().splitlines()) - marks
                if target == "NEW":
                    sweep.states["NEW"] = sweep.fingerprint()
            assert sweep.fingerprint() == sweep.states["OLD"], "the way back is not exact"
            for name, sourced in (("OLD", 3), ("NEW", 4)):  # networks with a table
                kernel = sweep.states[name][0]
                assert len([r for r in kernel["rules"] if r[0] == 3200]) == 2 * sourced, name
        finally:
            conn.close()
    finally:
        sweep.superd.stop()
        del sweep.superd.env[LOG_ENV]


def sweep_direction(sweep: Sweep, start: str, rounds: int) -> None:
    """Kill the change leaving ``start`` at step 1, 2, ... until it completes
    unkilled; ``rounds`` times. Whenever the host is in the other state (a
    kill after the commit, or the change completed), cross back unkilled."""
    for _ in range(rounds):
        k = 1
        while k:
            if sweep.predicted() != start:
                sweep.trial(None)
                continue
            k = k + 1 if sweep.trial(k) else 0


def test_sigkill_at_every_step_leaves_old_or_new_state(sweeps: list[Sweep]) -> None:
    forward, backward = sweeps
    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(learn_states, sweeps))
        rounds = SOAK_ROUNDS if SOAK else 1
        jobs = [
            pool.submit(sweep_direction, forward, "OLD", rounds),
            pool.submit(sweep_direction, backward, "NEW", rounds),
        ]
        for job in jobs:
            job.result()
    for sweep in sweeps:  # the last trial's end state, recovered once more
        sweep.superd.start()
        sweep.which_state()
        sweep.superd.stop()
    outcomes = forward.outcomes + backward.outcomes
    killed = outcomes["OLD->NEW killed"] + outcomes["NEW->OLD killed"]
    print(
        f"\ncrash sweep: {killed} kills, each recovered and checked, in "
        f"{time.monotonic() - started:.0f} s; steps per change {forward.steps}; "
        f"outcomes {dict(outcomes)}"
    )
    # every step of each direction was a kill point (the first commit of the
    # persistent configuration takes a step more than the later ones)
    assert abs(outcomes["OLD->NEW killed"] - rounds * forward.steps["forward"]) <= rounds
    assert abs(outcomes["NEW->OLD killed"] - rounds * backward.steps["back"]) <= rounds
    assert killed >= MIN_TRIALS * rounds
