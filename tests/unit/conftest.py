"""Shared helpers for the pure unit tests: a small host described as data."""

from __future__ import annotations

import pytest

from shared.netmodel.snapshot import NetinfoSnapshot, RunningConfig


def nic(mtu: int = 1500) -> dict:
    return {"mtu": mtu, "hwaddr": "52:54:00:00:00:01", "addr": "", "ipv4addrs": []}


@pytest.fixture
def host() -> NetinfoSnapshot:
    """Four NICs, one of them under an external bond, one with a VLAN."""
    return NetinfoSnapshot(
        nics={name: nic() for name in ("veth_0", "veth_1", "veth_2", "veth_3", "eth9")},
        bondings={"bond9": {"slaves": ["eth9"], "mtu": 1500, "opts": {"mode": "1"}}},
        vlans={"veth_3.7": {"iface": "veth_3", "vlanid": 7, "mtu": 1500}},
        nameservers=("192.0.2.53",),
    )


@pytest.fixture
def empty_running() -> RunningConfig:
    return RunningConfig()
