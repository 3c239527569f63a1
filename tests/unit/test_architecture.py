"""docs/ARCHITECTURE.md's example configurator, registered and used as the
document says: adding a configurator is a class plus one registry line.
The example is ``tests/unit/log_configurator.py``, word for word."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from configurators.registry import Configurators, registered
from shared.config import Config
from shared.errors import ErrorCode, NetError
from shared.netmodel.plan import Plan, plan_setup_networks
from shared.netmodel.snapshot import RunningConfig
from superd.applier import NetworkApplier
from tests.unit.test_applier import Recorder

DOC = Path(__file__).resolve().parents[2] / "docs" / "ARCHITECTURE.md"


def example_source() -> str:
    """The document's one Python block."""
    return DOC.read_text(encoding="utf-8").split("```python\n", 1)[1].split("```", 1)[0]


@pytest.fixture
def example() -> Iterator[None]:
    """The example's module run (it registers itself), undone afterwards."""
    with registered():
        from tests.unit import log_configurator

        importlib.reload(log_configurator)
        yield


def test_the_document_shows_the_example_module_word_for_word() -> None:
    example = Path(__file__).with_name("log_configurator.py").read_text(encoding="utf-8")
    assert example_source() == example


def apply(plan: Plan, calls: list) -> Configurators:
    configurators = Configurators(Config(), {"iproute2": Recorder(calls)})
    applier = NetworkApplier(configurators, plan.running)
    for op in plan.operations:
        applier.apply(op, {})
    applier.finish()
    return configurators


def test_the_example_is_about_ten_lines_of_logic() -> None:
    lines = [line for line in example_source().splitlines() if line.strip()]
    assert len(lines) <= 25


def test_an_unregistered_switch_is_refused_when_canonicalized(host) -> None:
    with pytest.raises(NetError) as raised:
        request = {"n": {"nic": "veth_0", "switch": "log"}}
        plan_setup_networks(request, {}, {}, host, RunningConfig())
    assert raised.value.code == ErrorCode.BAD_PARAMS and "switch 'log'" in raised.value.message


def test_the_registered_example_gets_the_networks_and_bonds_of_its_switch(host, example) -> None:
    calls: list = []
    plan = plan_setup_networks(
        {"logged": {"bonding": "bond1", "switch": "log", "mtu": 9000},
         "plain": {"nic": "veth_1", "bridged": False}},
        {"bond1": {"nics": ["veth_0", "veth_2"], "switch": "log"}},
        {}, host, RunningConfig(),
    )  # fmt: skip
    configurators = apply(plan, calls)
    assert configurators.get("log").done == [  # type: ignore[attr-defined]
        "bond bond1 of veth_0,veth_2",
        "mtu bond1 9000",
        "add logged on bond1",
    ]
    assert ("legacy", "setup_nic", "veth_1") in calls  # the default keeps its own
    assert not any(name in ("logged", "bond1") for _, _, name in calls)


def test_the_example_is_made_only_when_a_plan_uses_its_switch(host, example) -> None:
    plan = plan_setup_networks({"plain": {"nic": "veth_1"}}, {}, {}, host, RunningConfig())
    assert not apply(plan, []).started("log")
