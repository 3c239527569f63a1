"""configurators.dhcp with real dhclient processes against a real dnsmasq.

Each test builds its own namespace pair: ``nrd-XXXX`` (the "host", where
DhcpClients runs through ``ip netns exec``) holding ``veth_0``, and
``nrd-XXXX-p`` holding its peer ``p_0`` (static 10.77.0.1/24, fd77::1/64)
where dnsmasq serves.  Teardown kills every dhclient started for the test's
run dir, stops dnsmasq and deletes both namespaces, whatever happened.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared.config import Config
from shared.errors import ErrorCode, NetError
from tests.functional.dnsmasq import SBIN_PATH, Dnsmasq, dnsmasq_path

REPO = Path(__file__).resolve().parents[2]
NS_PREFIX = "nrd-"
PEER_V4 = "10.77.0.1"
PEER_V6 = "fd77::1"
DNS_V4 = "10.77.0.53"
DNS_V6 = "fd77::53"
V4_RANGE = "10.77.0.100,10.77.0.150,255.255.255.0,2m"
V6_RANGE = "fd77::100,fd77::1ff,64,2m"
LEASE_SECONDS = 120
INFINITY = 4294967295

pytestmark = pytest.mark.skipif(
    dnsmasq_path() is None
    or not any(os.access(os.path.join(d, "dhclient"), os.X_OK) for d in SBIN_PATH.split(":")),
    reason="needs dnsmasq (dnsmasq-base) and dhclient (isc-dhcp-client)",
)

# Runs DhcpClients inside the host namespace; prints one JSON line.
RUNNER = r"""
import json, sys, time
from pathlib import Path
from shared.config import Config
from shared.errors import NetError
from configurators.dhcp import DhcpClients

a = json.loads(sys.argv[1])
clients = DhcpClients(Config(run_dir=Path(a["run_dir"]), resolv_conf=Path(a["resolv_conf"])))
out = {"ok": True}
t0 = time.monotonic()
try:
    if a["op"] == "start":
        clients.start(a["device"], a["family"], a["blocking"], a["default_route"], a["timeout"])
    elif a["op"] == "stop":
        clients.stop(a["device"], a["family"])
except NetError as exc:
    out = {"ok": False, "code": int(exc.code), "message": exc.message}
out["elapsed"] = time.monotonic() - t0
out["running"] = clients.running(a["device"], a["family"])
print(json.dumps(out))
"""


def _run(*argv: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc.stdout


def _processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains ``text``."""
    found = []
    needle = text.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline and b"dhclient" in cmdline:
            found.append(int(entry))
    return found


@dataclass
class Env:
    ns: str
    peer: str
    tmp: Path
    server: Dnsmasq | None = None

    @property
    def run_dir(self) -> Path:
        return self.tmp / "run"

    @property
    def resolv(self) -> Path:
        return self.tmp / "resolv.conf"

    def dhcp(
        self,
        op: str,
        family: int = 4,
        *,
        device: str = "veth_0",
        blocking: bool = True,
        default_route: bool = False,
        timeout: float = 20.0,
    ) -> dict[str, Any]:
        args = {
            "op": op,
            "device": device,
            "family": family,
            "blocking": blocking,
            "default_route": default_route,
            "timeout": timeout,
            "run_dir": str(self.run_dir),
            "resolv_conf": str(self.resolv),
        }
        proc = subprocess.run(
            ["ip", "netns", "exec", self.ns, sys.executable, "-c", RUNNER, json.dumps(args)],
            capture_output=True,
            text=True,
            timeout=timeout + 60,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def start_server(self, *, v4: bool = True, v6: bool = False) -> Dnsmasq:
        ranges, options = [], []
        if v4:
            ranges.append(V4_RANGE)
            options.append(f"option:dns-server,{DNS_V4}")
        if v6:
            ranges.append(V6_RANGE)
            options.append(f"option6:dns-server,[{DNS_V6}]")
        self.server = Dnsmasq(self.peer, "p_0", self.tmp / "dnsmasq", ranges, options)
        return self.server.start()

    def addresses(self, family: int) -> list[dict[str, Any]]:
        out = _run("ip", "-n", self.ns, "-j", f"-{family}", "addr", "show", "dev", "veth_0")
        # With -4/-6, a link without addresses of that family is left out.
        links = json.loads(out) if out.strip() else []
        return [a for link in links for a in link["addr_info"] if a.get("scope") == "global"]

    def default_routes(self) -> list[dict[str, Any]]:
        out = _run("ip", "-n", self.ns, "-j", "-4", "route", "show", "default")
        return json.loads(out) if out.strip() else []

    def pid(self, family: int = 4) -> int:
        return int((self.run_dir / "dhcp" / f"veth_0.v{family}.pid").read_text())

    def nameservers(self) -> list[str]:
        if not self.resolv.exists():
            return []
        return [
            line.split()[1]
            for line in self.resolv.read_text().splitlines()
            if line.startswith("nameserver ")
        ]

    def wait_for(self, predicate, timeout: float, what: str):  # noqa: ANN001
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                log = self.server.log()[-3000:] if self.server else ""
                raise AssertionError(f"timed out waiting for {what}\n{log}")
            time.sleep(0.1)


def _create_pair() -> tuple[str, str]:
    ns = f"{NS_PREFIX}{secrets.token_hex(4)}"
    peer = f"{ns}-p"
    try:
        _run("ip", "netns", "add", ns)
        _run("ip", "netns", "add", peer)
        host_cmds = [
            "link set lo up",
            f"link add veth_0 type veth peer name p_0 netns {peer}",
            "link set veth_0 up",
        ]
        peer_cmds = [
            "link set lo up",
            "link set p_0 up",
            f"addr add {PEER_V4}/24 dev p_0",
            f"addr add {PEER_V6}/64 dev p_0 nodad",
        ]
        for name, cmds in ((ns, host_cmds), (peer, peer_cmds)):
            subprocess.run(
                ["ip", "-n", name, "-batch", "-"],
                input="\n".join(cmds) + "\n",
                text=True,
                check=True,
                capture_output=True,
                timeout=60,
            )
    except BaseException:
        _delete_pair(ns, peer)
        raise
    return ns, peer


def _delete_pair(ns: str, peer: str) -> None:
    for name in (ns, peer):
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=60)


def _kill_clients(run_dir: Path) -> None:
    for _ in range(50):
        pids = _processes_mentioning(str(run_dir))
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)


@pytest.fixture(scope="module", autouse=True)
def real_resolv_conf_untouched() -> Iterator[None]:
    def digest() -> str | None:
        try:
            return hashlib.sha256(Path("/etc/resolv.conf").read_bytes()).hexdigest()
        except OSError:
            return None

    before = digest()
    yield
    assert digest() == before, "/etc/resolv.conf changed"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    ns, peer = _create_pair()
    env = Env(ns, peer, tmp_path)
    try:
        yield env
    finally:
        try:
            _kill_clients(env.run_dir)
            if env.server is not None:
                env.server.stop()
        finally:
            _delete_pair(ns, peer)


@pytest.fixture
def served(env: Env) -> Env:
    env.start_server(v4=True, v6=True)
    return env


# ---------------------------------------------------------------------------


def test_blocking_dhcpv4_gets_a_dynamic_address(served: Env) -> None:
    result = served.dhcp("start", 4, blocking=True)
    assert result["ok"], result
    assert result["running"]
    (addr,) = served.addresses(4)
    assert addr["local"].startswith("10.77.0.")
    assert addr["prefixlen"] == 24
    assert addr.get("dynamic") is True
    assert 0 < addr["valid_life_time"] <= LEASE_SECONDS
    assert addr["valid_life_time"] != INFINITY
    # Not the default-route network: no route, resolv.conf never written.
    assert served.default_routes() == []
    assert not served.resolv.exists()


def test_start_is_idempotent(served: Env) -> None:
    assert served.dhcp("start", 4)["ok"]
    pid = served.pid(4)
    again = served.dhcp("start", 4)
    assert again["ok"] and again["running"]
    assert served.pid(4) == pid
    assert len(_processes_mentioning(str(served.run_dir))) == 1
    assert len(served.addresses(4)) == 1


def test_nonblocking_returns_at_once_and_address_follows(served: Env) -> None:
    result = served.dhcp("start", 4, blocking=False)
    assert result["ok"] and result["running"]
    assert result["elapsed"] < 1.0, result
    served.wait_for(lambda: served.addresses(4), 10, "a DHCPv4 address")


def test_default_route_and_nameservers_only_for_default_route_network(served: Env) -> None:
    assert served.dhcp("start", 4, default_route=True)["ok"]
    (route,) = served.default_routes()
    assert route["gateway"] == PEER_V4
    assert route["dev"] == "veth_0"
    assert route["protocol"] == "dhcp"
    assert served.nameservers() == [DNS_V4]

    # Same client, the network no longer holds the default route.
    result = served.dhcp("start", 4, default_route=False)
    assert result["ok"], result
    assert served.default_routes() == []
    assert served.nameservers() == []
    assert len(served.addresses(4)) == 1

    # ... and back.
    assert served.dhcp("start", 4, default_route=True)["ok"]
    assert [r["gateway"] for r in served.default_routes()] == [PEER_V4]
    assert served.nameservers() == [DNS_V4]


def test_stop_releases_and_removes_everything(served: Env) -> None:
    assert served.dhcp("start", 4, default_route=True)["ok"]
    pid = served.pid(4)
    (addr,) = served.addresses(4)
    served.wait_for(lambda: addr["local"] in served.server.leases(), 5, "dnsmasq's lease")

    result = served.dhcp("stop", 4)
    assert result["ok"] and not result["running"]
    assert served.addresses(4) == []
    assert served.default_routes() == []
    assert served.nameservers() == []
    assert (
        not Path(f"/proc/{pid}/cmdline").exists() or not Path(f"/proc/{pid}/cmdline").read_bytes()
    )
    assert _processes_mentioning(str(served.run_dir)) == []
    # The lease was released, not just forgotten.
    served.wait_for(lambda: addr["local"] not in served.server.leases(), 5, "the release")

    # Stopping a stopped client is fine.
    again = served.dhcp("stop", 4)
    assert again["ok"] and not again["running"]


def test_blocking_timeout_without_server(env: Env) -> None:
    result = env.dhcp("start", 4, blocking=True, default_route=True, timeout=3)
    assert not result["ok"]
    assert result["code"] == ErrorCode.FAILED_IFUP == 29
    assert 3 <= result["elapsed"] < 12, result
    assert not result["running"]
    assert _processes_mentioning(str(env.run_dir)) == []
    assert env.addresses(4) == []
    assert env.default_routes() == []


def test_no_such_device(env: Env) -> None:
    result = env.dhcp("start", 4, device="veth_9")
    assert not result["ok"]
    assert result["code"] == 29
    assert _processes_mentioning(str(env.run_dir)) == []


def test_dhcpv6_gets_a_128(served: Env) -> None:
    result = served.dhcp("start", 6, blocking=True, default_route=True, timeout=30)
    assert result["ok"], result
    (addr,) = served.addresses(6)
    assert addr["local"].startswith("fd77::")
    assert addr["prefixlen"] == 128
    assert addr.get("dynamic") is True
    assert 0 < addr["valid_life_time"] <= LEASE_SECONDS
    assert not addr.get("tentative"), "blocking start returns after DAD"
    assert served.nameservers() == [DNS_V6]

    # Both families on the default-route network share resolv.conf.
    assert served.dhcp("start", 4, default_route=True)["ok"]
    assert served.nameservers() == [DNS_V4, DNS_V6]

    result = served.dhcp("stop", 6)
    assert result["ok"] and not result["running"]
    assert served.addresses(6) == []
    assert served.nameservers() == [DNS_V4]
    assert served.dhcp("stop", 4)["ok"]
    assert _processes_mentioning(str(served.run_dir)) == []


@pytest.mark.parametrize(
    ("device", "family", "code"),
    [
        ("../etc", 4, ErrorCode.BAD_NIC),
        ("-r", 4, ErrorCode.BAD_NIC),
        ("a/b", 4, ErrorCode.BAD_NIC),
        ("", 4, ErrorCode.BAD_NIC),
        ("x" * 16, 4, ErrorCode.BAD_NIC),
        ("veth_0", 5, ErrorCode.BAD_PARAMS),
        ("veth_0", True, ErrorCode.BAD_PARAMS),
    ],
)
def test_arguments_are_validated(tmp_path: Path, device: str, family: int, code: int) -> None:
    from configurators.dhcp import DhcpClients

    clients = DhcpClients(Config(run_dir=tmp_path / "run", resolv_conf=tmp_path / "resolv"))
    with pytest.raises(NetError) as info:
        clients.running(device, family)
    assert info.value.code == code
    with pytest.raises(NetError):
        clients.stop(device, family)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").rglob("*.pid"))


def test_bridge_and_vlan_names_are_accepted(tmp_path: Path) -> None:
    from configurators.dhcp import DhcpClients

    clients = DhcpClients(Config(run_dir=tmp_path / "run", resolv_conf=tmp_path / "resolv"))
    for name in ("net1", "veth_0.10", "ovirtmgmt"):
        assert clients.running(name, 4) is False
        assert clients.running(name, 6) is False


def test_nonblocking_dhcpv6_keeps_trying_until_carrier(env: Env) -> None:
    # No carrier: veth_0 has no link-local address, dhclient -6 cannot bind.
    _run("ip", "-n", env.peer, "link", "set", "p_0", "down")
    result = env.dhcp("start", 6, blocking=False, default_route=False)
    assert result["ok"] and result["running"], result
    assert result["elapsed"] < 1.0, result
    time.sleep(1)
    assert env.dhcp("status", 6)["running"]

    _run("ip", "-n", env.peer, "link", "set", "p_0", "up")
    _run("ip", "-n", env.peer, "addr", "replace", f"{PEER_V6}/64", "dev", "p_0", "nodad")
    env.start_server(v4=False, v6=True)
    (addr,) = env.wait_for(lambda: env.addresses(6), 15, "a DHCPv6 address")
    assert addr["prefixlen"] == 128

    assert env.dhcp("stop", 6)["ok"]
    assert _processes_mentioning(str(env.run_dir)) == []


def test_dhcpv4_server_appearing_later_is_found(env: Env) -> None:
    result = env.dhcp("start", 4, blocking=False, default_route=True)
    assert result["ok"] and result["running"]
    time.sleep(1)
    env.start_server(v4=True)
    env.wait_for(lambda: env.addresses(4), 15, "a DHCPv4 address")
    env.wait_for(lambda: env.default_routes(), 5, "the default route")


def test_stop_after_the_device_vanished(served: Env) -> None:
    assert served.dhcp("start", 4, default_route=True)["ok"]
    assert served.nameservers() == [DNS_V4]
    _run("ip", "-n", served.ns, "link", "del", "veth_0")
    result = served.dhcp("stop", 4)
    assert result["ok"] and not result["running"], result
    assert _processes_mentioning(str(served.run_dir)) == []
    assert served.nameservers() == []
