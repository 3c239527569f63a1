"""The capabilities do not depend on the configurator: the same request
applied through iproute2, then (after its removal) through NetworkManager,
in the same namespace, gives the same ``caps`` report."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.functional.configurator_params import configured_agent
from tests.functional.conftest import HostNs, ip_json
from tests.functional.contract import assert_caps_contract
from tests.functional.nm_lab import why_no_nm

pytestmark = pytest.mark.skipif(why_no_nm() is not None, reason=str(why_no_nm()))

REQUEST = {
    "mgmt": {
        "nic": "veth_0",
        "ipaddr": "192.0.2.10",
        "prefix": 24,
        "gateway": "192.0.2.1",
        "defaultRoute": True,
        "ipv6addr": "2001:db8:1::10/64",
        "ipv6gateway": "2001:db8:1::1",
        "mtu": 1400,
    },
    "storage": {
        "nic": "veth_1",
        "bridged": False,
        "ipaddr": "198.51.100.7",
        "prefix": 24,
        "gateway": "198.51.100.1",
    },
}


def leaves(value: object, path: str = "") -> dict[str, object]:
    """{"bridges.mgmt.mtu": "1400", …}: a report's values by path."""
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for key, item in value.items():
            out.update(leaves(item, f"{path}.{key}" if path else str(key)))
        return out
    return {path: value}


def settled_caps(agent) -> dict:
    """The report once no IPv6 address is tentative (DAD is the kernel's)."""
    deadline = time.monotonic() + 30
    while tentative := ip_json(agent.host.name, "-6", "addr", "show", "tentative"):
        assert time.monotonic() < deadline, f"IPv6 DAD did not end: {tentative}"
        time.sleep(0.1)
    return assert_caps_contract(agent.caps())


def test_caps_are_the_same_under_iproute2_and_nm(host_ns: HostNs, tmp_path: Path) -> None:
    reports = {}
    for configurator in ("iproute2", "nm"):
        root = tmp_path / configurator
        with configured_agent(configurator, host_ns, root) as agent:
            assert agent.setup(REQUEST)["code"] == 0
            reports[configurator] = settled_caps(agent)
            removal = {name: {"remove": True} for name in REQUEST}
            assert agent.setup(removal)["code"] == 0
    nm, iproute2 = leaves(reports["nm"]), leaves(reports["iproute2"])
    differences = {
        key: (iproute2.get(key), nm.get(key))
        for key in set(nm) | set(iproute2)
        if nm.get(key) != iproute2.get(key)
    }
    assert differences == {}
