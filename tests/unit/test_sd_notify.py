"""shared.sd_notify: the datagram systemd's NOTIFY_SOCKET expects."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from shared.sd_notify import notify_address, sd_notify


def test_abstract_socket_names_start_with_a_nul() -> None:
    assert notify_address("@netreload/x") == "\0netreload/x"


@pytest.mark.parametrize("value", [None, "", "relative/path", "vsock:2:1234"])
def test_unusable_addresses_send_nothing(value: str | None) -> None:
    assert notify_address(value) is None


def test_ready_reaches_an_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"netreload-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind("\0" + name)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert sd_notify("READY=1")
        assert listener.recv(64) == b"READY=1"


def test_ready_reaches_a_path_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind(str(tmp_path / "notify"))
        monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
        assert sd_notify("STOPPING=1")
        assert listener.recv(64) == b"STOPPING=1"


def test_without_notify_socket_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not sd_notify("READY=1")
