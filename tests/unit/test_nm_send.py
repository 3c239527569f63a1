"""What the NetworkManager configurator writes to the kernel itself after
sending (pure parts: which devices)."""

from __future__ import annotations

import pytest

from configurators import nm_send


def test_only_device_names_get_ipv6_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """A profile's name becomes a path under /proc/sys/net/ipv6/conf."""
    calls: list[tuple[str, tuple[str, ...]]] = []
    monkeypatch.setattr(
        nm_send, "restore_default", lambda _kernel, dev, names: calls.append((dev, names))
    )
    nm_send.give_ipv6_back(None, ["eth0", "bond0.20", "../../x", "", "..", "all", "default"])
    assert calls == [("eth0", ("disable_ipv6",)), ("bond0.20", ("disable_ipv6",))]
