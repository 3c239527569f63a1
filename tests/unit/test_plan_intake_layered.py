"""superd's replay of a received plan on its running configuration
(``superd.plan_intake.check_plan_base``) costs the plan's operations, not
the host's networks: beside many networks the plan's expected running
configuration is layered over the store's dict, never copied nor written."""

from __future__ import annotations

import json

from shared.layered import FOLD_MIN, Layered
from shared.netmodel.plan import Plan, plan_setup_networks
from shared.netmodel.snapshot import RunningConfig
from superd.plan_intake import check_plan_base

MANY = FOLD_MIN + 36  # above the size a dict copy is kept for


def received(plan: Plan) -> Plan:
    return Plan.from_dict(json.loads(json.dumps(plan.to_dict(running=False))))


def host_running(host, count: int) -> dict:
    networks = {f"net{i}": {"nic": "veth_0", "vlan": i + 1} for i in range(count)}
    plan = plan_setup_networks(networks, {}, {}, host, RunningConfig())
    return plan.running


def test_a_plan_beside_many_networks_shares_the_stores_networks(host) -> None:
    before = host_running(host, MANY)
    store_networks = dict(before["networks"])
    plan = plan_setup_networks(
        {"extra": {"nic": "veth_0", "vlan": 999}, "net3": {"remove": True}}, {}, {}, host,
        RunningConfig.from_dict(before),
    )  # fmt: skip
    checked = check_plan_base(received(plan), before)
    networks = checked.running["networks"]
    assert isinstance(networks, Layered) and networks._base is before["networks"]
    assert (len(networks._over), len(networks._tail)) == (1, 1)  # net3 gone, extra added
    assert before["networks"] == store_networks  # the store's dict never written
    assert checked == plan  # as the plan's own expected configuration: items and order
    assert list(networks) == list(plan.running["networks"])


def test_a_plan_beside_a_few_networks_replays_on_a_dict(host) -> None:
    before = host_running(host, 10)
    plan = plan_setup_networks(
        {"extra": {"nic": "veth_0", "vlan": 999}}, {}, {}, host, RunningConfig.from_dict(before)
    )
    checked = check_plan_base(received(plan), before)
    assert type(checked.running["networks"]) is dict and checked == plan
