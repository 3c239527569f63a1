"""Functional tests: root, inside throw-away network namespaces only.

Nothing here touches the root namespace: every device is created with
``ip -n NS`` inside a namespace this file created, and every namespace is
deleted at teardown, even when the test or the set-up failed. A session
check asserts that the root namespace's link list did not change.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # superd_daemon imports this module
    from tests.functional.superd_daemon import Client, Superd

NS_PREFIX = "nrt-"
# Namespaces this process created and has not deleted yet. Only these are
# ever cleaned up by the session check: other test runs on the same machine
# may have nrt-* namespaces of their own.
_CREATED: set[str] = set()


def _why_not_runnable() -> str | None:
    if os.geteuid() != 0:
        return "functional tests need root (network namespaces)"
    if shutil.which("ip") is None:
        return "functional tests need iproute2's `ip`"
    try:
        subprocess.run(["ip", "netns", "list"], check=True, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`ip netns` is not usable here: {exc}"
    return None


_SKIP_REASON = _why_not_runnable()


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here + os.sep):
            item.add_marker(pytest.mark.functional)
            if _SKIP_REASON:
                item.add_marker(pytest.mark.skip(reason=_SKIP_REASON))


def run_ip(*args: str, input_text: str | None = None) -> str:
    """Run ``ip ARGS``; raise with ip's own message on failure."""
    proc = subprocess.run(
        ["ip", *args], input=input_text, capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def ip_json(ns: str, *args: str) -> Any:
    """Parsed ``ip -n NS -j ARGS`` output (``[]`` when ip prints nothing)."""
    out = run_ip("-n", ns, "-j", *args)
    return json.loads(out) if out.strip() else []


def addresses(ns: str, name: str) -> set[str]:
    """Device ``name``'s addresses as ``addr/prefix``, but the IPv6
    link-local ones (the kernel's own)."""
    return {
        f"{i['local']}/{i['prefixlen']}"
        for entry in ip_json(ns, "addr", "show", "dev", name)
        for i in entry["addr_info"]
        if not i["local"].startswith("fe80")
    }


def ipv6_conf(ns: str, device: str, name: str = "disable_ipv6") -> str:
    """The device's IPv6 sysctl ``name`` as namespace NS has it
    (``/proc/sys/net/ipv6/conf/DEVICE/NAME``)."""
    return subprocess.run(
        ["ip", "netns", "exec", ns, "cat", f"/proc/sys/net/ipv6/conf/{device}/{name}"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip


def ip_batch(ns: str, commands: list[str]) -> None:
    """Run many ``ip`` commands in NS with one ``ip -n NS -batch -``."""
    run_ip("-n", ns, "-batch", "-", input_text="\n".join(commands) + "\n")


# What ``ip monitor`` prints that is no event of the namespace it watches:
# a message about a peer namespace reference, seen on a loaded machine.
NOT_NETLINK_EVENTS = ("Peer netns reference is invalid",)


@contextmanager
def netlink_events(ns: str) -> Iterator[list[str]]:
    """The lines ``ip monitor link address route`` prints in ``ns`` while the
    block runs (subscribed 0.3 s before it, read 0.3 s after it), less the
    ones that are no event (:data:`NOT_NETLINK_EVENTS`); the list is filled
    when the block ends."""
    events: list[str] = []
    monitor = subprocess.Popen(
        ["ip", "-n", ns, "monitor", "link", "address", "route"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(0.3)  # subscribed before the block starts
        yield events
        time.sleep(0.3)
    finally:
        monitor.send_signal(signal.SIGTERM)
        output, _ = monitor.communicate(timeout=10)
    events.extend(
        line
        for line in output.splitlines()
        if line.strip() and not any(text in line for text in NOT_NETLINK_EVENTS)
    )


def delete_netns(name: str) -> None:
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=60)


@dataclass
class HostNs:
    """A namespace standing for a host, its veth "NICs" and their peers."""

    name: str
    peer: str
    nics: list[str] = field(default_factory=list)

    def ip(self, *args: str) -> str:
        return run_ip("-n", self.name, *args)

    def ip_json(self, *args: str) -> Any:
        return ip_json(self.name, *args)

    def batch(self, commands: list[str]) -> None:
        ip_batch(self.name, commands)


def create_host_ns(n: int = 2, prefix: str = NS_PREFIX) -> HostNs:
    """Create NAME and NAME-peer with veth_i (in NAME) ↔ p_i (in the peer).

    On any failure both namespaces are deleted before the error propagates.
    """
    name = f"{prefix}{secrets.token_hex(4)}"
    host = HostNs(name=name, peer=f"{name}-peer")
    try:
        _CREATED.update((host.name, host.peer))
        run_ip("netns", "add", host.name)
        run_ip("netns", "add", host.peer)
        commands = ["link set lo up"]
        for i in range(n):
            # Created inside NAME, peer moved straight into NAME-peer: the
            # root namespace never sees either end.
            commands.append(f"link add veth_{i} type veth peer name p_{i} netns {host.peer}")
            commands.append(f"link set veth_{i} up")
            host.nics.append(f"veth_{i}")
        ip_batch(host.name, commands)
        ip_batch(host.peer, ["link set lo up"] + [f"link set p_{i} up" for i in range(n)])
    except BaseException:
        destroy_host_ns(host)
        raise
    return host


def destroy_host_ns(host: HostNs) -> None:
    for name in (host.name, host.peer):
        delete_netns(name)
        _CREATED.discard(name)


def _root_links() -> list[tuple[int, str, str]]:
    links = json.loads(run_ip("-j", "link", "show"))
    return sorted((link["ifindex"], link["ifname"], link.get("link_type", "")) for link in links)


def _namespaces() -> set[str]:
    out = run_ip("-j", "netns", "list")
    return {entry["name"] for entry in json.loads(out)} if out.strip() else set()


@pytest.fixture(scope="session", autouse=True)
def root_namespace_untouched() -> Iterator[None]:
    """The root namespace's links are the same after the session as before."""
    if _SKIP_REASON:
        yield
        return
    before = _root_links()
    yield
    leftover = sorted(_CREATED & _namespaces())
    for name in leftover:
        delete_netns(name)
    _CREATED.clear()
    assert _root_links() == before, "the root namespace's link list changed"
    assert not leftover, f"namespaces left behind: {leftover}"


@pytest.fixture
def make_host_ns() -> Iterator[Callable[..., HostNs]]:
    """Factory: ``make_host_ns(n, prefix)`` → a HostNs with n veth NICs."""
    created: list[HostNs] = []

    def make(n: int = 2, prefix: str = NS_PREFIX) -> HostNs:
        host = create_host_ns(n, prefix)
        created.append(host)
        return host

    try:
        yield make
    finally:
        for host in created:
            destroy_host_ns(host)


@pytest.fixture
def host_ns(make_host_ns: Callable[..., HostNs]) -> HostNs:
    """A namespace with veth_0 and veth_1 (peers in ``<ns>-peer``), all up."""
    return make_host_ns(2)


@pytest.fixture
def host(make_host_ns: Callable[..., HostNs]) -> HostNs:
    """The live netinfo's tests' namespace (``tests.functional.monitor_lab``):
    an ``nrl-*`` one with veth_0, veth_1 and veth_2."""
    return make_host_ns(3, prefix="nrl-")


@contextmanager
def socket_folder(prefix: str = "nrs-sock-") -> Iterator[Path]:
    """A fresh folder in /tmp, mode 0755, for superd's socket folder (which
    superd creates inside it): frontd's user must reach the socket, and
    pytest's ``tmp_path`` is root's alone. Removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        path.chmod(0o755)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A :func:`socket_folder` for the test."""
    with socket_folder() as path:
        yield path


@pytest.fixture(name="ip_json")
def _ip_json_fixture() -> Callable[..., Any]:
    return ip_json


# -- superd as a daemon (tests.functional.superd_daemon) --------------------------


@pytest.fixture
def make_ns(make_host_ns: Callable[..., HostNs]) -> Callable[[], HostNs]:
    """``make_ns()`` → a fresh ``nrs-*`` namespace with veth_0 and veth_1."""
    return lambda: make_host_ns(2, prefix="nrs-")


@pytest.fixture
def superd(make_ns: Callable[[], HostNs], tmp_path: Path, sock_dir: Path) -> Iterator[Superd]:
    """A started superd in its own ``make_ns()`` namespace."""
    from tests.functional.superd_daemon import Superd

    with Superd(make_ns(), tmp_path, sock_dir) as daemon:
        yield daemon


@pytest.fixture
def client(superd: Superd) -> Iterator[Client]:
    """One connection to ``superd``."""
    conn = superd.connect()
    yield conn
    conn.close()
