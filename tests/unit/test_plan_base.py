"""superd's check of a received plan against its own running configuration
(``superd.plan_intake.check_plan_base``), for plans sent with and without the
expected running configuration."""

from __future__ import annotations

import json

import pytest

from shared.errors import ErrorCode, NetError
from shared.netmodel.plan import Plan, plan_setup_networks
from shared.netmodel.snapshot import RunningConfig
from superd.plan_intake import check_plan_base


def received(plan: Plan, running: bool) -> Plan:
    return Plan.from_dict(json.loads(json.dumps(plan.to_dict(running=running))))


def test_plan_without_running_gets_the_one_its_operations_give(host) -> None:
    first = plan_setup_networks({"a": {"nic": "veth_0", "vlan": 1}}, {}, {}, host, RunningConfig())
    before = first.running
    plan = plan_setup_networks(
        {"b": {"nic": "veth_0", "vlan": 2}, "a": {"remove": True}}, {}, {}, host,
        RunningConfig.from_dict(before),
    )  # fmt: skip
    assert check_plan_base(received(plan, running=False), before) == plan


def test_plan_without_running_still_refused_when_stale(host) -> None:
    plan = plan_setup_networks({"a": {"nic": "veth_0"}}, {}, {}, host, RunningConfig())
    already = {"networks": {"a": plan.running["networks"]["a"]}, "bonds": {}}
    with pytest.raises(NetError) as info:
        check_plan_base(received(plan, running=False), already)
    assert info.value.code == ErrorCode.BAD_PARAMS and "stale plan" in info.value.message


def test_plan_with_running_kept_as_sent(host) -> None:
    plan = plan_setup_networks({"a": {"nic": "veth_0"}}, {}, {}, host, RunningConfig())
    assert check_plan_base(received(plan, running=True), {"networks": {}, "bonds": {}}) == plan
