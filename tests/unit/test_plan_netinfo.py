"""superd's ownership check of a received plan reads its netinfo restricted
to the devices the plan names (``superd.verbs.plan_netinfo``): the cost of
the plan, not of the host's report, and the same refusals."""

from __future__ import annotations

import pytest

from shared.errors import ErrorCode, NetError
from shared.netmodel.plan import Plan
from shared.netmodel.plan_checks import check_plan_owned
from superd.verbs import plan_netinfo

BRIDGE = {"ports": [], "mtu": 1500}


def host_report(bridges: int) -> dict:
    return {
        "nics": {"veth_0": {"mtu": 1500}},
        "bondings": {},
        "vlans": {},
        "bridges": {f"bn{i}": dict(BRIDGE) for i in range(bridges)} | {"virbr0": dict(BRIDGE)},
        "networks": {},
        "nameservers": ["192.0.2.53"],
    }


def adding(name: str) -> Plan:
    attrs = {"nic": "veth_0", "bridged": True, "mtu": 1500, "stp": False}
    return Plan([{"op": "add_network", "name": name, "attrs": attrs}], {}, None)


def test_netinfo_of_a_plan_holds_only_the_devices_it_names() -> None:
    netinfo = plan_netinfo(adding("bn5"), host_report(2000), frozenset({"bn5", "bn6"}))
    assert netinfo.bridges == {"bn5": BRIDGE} and netinfo.nics == {"veth_0": {"mtu": 1500}}
    assert netinfo.owned == frozenset({"bn5"})


def test_plan_reusing_another_agents_bridge_is_still_refused() -> None:
    netinfo = plan_netinfo(adding("virbr0"), host_report(10), frozenset({"bn1"}))
    with pytest.raises(NetError) as info:
        check_plan_owned(adding("virbr0").operations, {"networks": {}, "bonds": {}}, netinfo)
    assert info.value.code == ErrorCode.USED_BRIDGE
