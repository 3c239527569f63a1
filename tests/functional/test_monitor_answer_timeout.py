"""The live netinfo (superd.monitor) when the kernel does not answer a dump:
superd's start fails with a clear error instead of blocking, and a resync
that got no answer is reported, retried, and recovers once the kernel
answers again. The kernel is real (a namespace of its own); its silence is
a dump socket that swallows the requests sent while ``silent`` is set."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pyroute2 import netns as p2netns

from netlink import query
from shared.config import Config, load_config
from shared.errors import NetError
from superd.monitor import LiveNetinfo
from tests.functional.conftest import HostNs


class SilenceableSocket:
    """A strict NETLINK_ROUTE socket in ``ns`` whose requests are dropped
    (never reach the kernel, so never get an answer) while ``silent``."""

    def __init__(self, ns: str, silent: threading.Event) -> None:
        self._sock = query.strict(
            p2netns.create_socket(ns, socket.AF_NETLINK, socket.SOCK_RAW, 0, flags=0)
        )
        self._silent = silent

    def send(self, data: bytes) -> int:
        return len(data) if self._silent.is_set() else self._sock.send(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _config(root: Path) -> Config:
    for folder in ("run", "lib"):
        (root / folder).mkdir()
    (root / "resolv.conf").write_text("nameserver 192.0.2.53\n")
    (root / "netreload.conf").write_text(
        "[vars]\nnet_configurator = iproute2\nfake_nics = veth_*\n"
        f"[paths]\nrun_dir = {root / 'run'}\nlib_dir = {root / 'lib'}\n"
        f"resolv_conf = {root / 'resolv.conf'}\n"
    )
    return load_config(root / "netreload.conf")


@pytest.fixture
def short_deadline(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(query, "ANSWER_TIMEOUT", 0.5)
    return 0.5


def test_start_fails_with_a_clear_error_when_the_first_dump_gets_no_answer(
    host_ns: HostNs, tmp_path: Path, short_deadline: float
) -> None:
    silent = threading.Event()
    silent.set()
    live = LiveNetinfo(_config(tmp_path), netns=host_ns.name,
                       socket_factory=lambda: SilenceableSocket(host_ns.name, silent))  # fmt: skip
    started = time.monotonic()
    with pytest.raises(NetError, match="netlink monitor: .*no complete answer within 0.5 s"):
        live.start(timeout=30)
    assert time.monotonic() - started < 10
    assert not live.alive


def test_a_resync_without_answer_fails_then_the_monitor_recovers(
    host_ns: HostNs, tmp_path: Path, short_deadline: float
) -> None:
    silent = threading.Event()
    live = LiveNetinfo(_config(tmp_path), netns=host_ns.name,
                       socket_factory=lambda: SilenceableSocket(host_ns.name, silent))  # fmt: skip
    live.start(timeout=30)
    try:
        silent.set()
        with pytest.raises(query.AnswerTimeout):
            live.resync(timeout=30)
        assert live.alive
        host_ns.ip("link", "add", "nrt_later", "type", "bridge")
        silent.clear()
        state = live.resync(timeout=30)
        assert "nrt_later" in {link["name"] for link in state.links.values()}
    finally:
        live.close()
