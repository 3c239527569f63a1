"""Routing of a mixed plan: legacy operations to the default configurator,
``switch: ovs`` ones to the OVS configurator, OVS edits sent before any
legacy operation and after the last one (plan order across configurators)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from configurators.base import Configurator
from configurators.device_stack import DeviceStackConfigurator
from configurators.registry import Configurators, Entry, registered
from shared.config import Config
from shared.netmodel.canonical import canonicalize_network
from superd.applier import NetworkApplier


class Recorder(DeviceStackConfigurator):
    """The default configurator: records (who, call, device name)."""

    name = "iproute2"

    def __init__(self, calls: list) -> None:
        self.calls = calls

    def _note(self, call: str, device: Any) -> None:
        self.calls.append(("legacy", call, getattr(device, "name", device)))

    def setup_nic(self, nic: Any) -> None:
        self._note("setup_nic", nic)

    def release_nic(self, nic: Any) -> None:
        self._note("release_nic", nic)

    def create_bond(self, bond: Any) -> None:
        self._note("create_bond", bond)

    def modify_bond(self, bond: Any, old: Any) -> None:
        self._note("modify_bond", bond)

    def delete_bond(self, bond: Any) -> None:
        self._note("delete_bond", bond)

    def create_vlan(self, vlan: Any) -> None:
        self._note("create_vlan", vlan)

    def delete_vlan(self, vlan: Any) -> None:
        self._note("delete_vlan", vlan)

    def create_bridge(self, bridge: Any) -> None:
        self._note("create_bridge", bridge)

    def delete_bridge(self, bridge: Any) -> None:
        self._note("delete_bridge", bridge)

    def set_mtu(self, device: str, mtu: int) -> None:
        self._note("set_mtu", device)

    def set_ip(self, device: str, ip: Any, previous: Any = None) -> None:
        self._note("set_ip", device)

    def clear_ip(self, device: str, ip: Any, stays: bool = False) -> None:
        self._note("clear_ip", device)


class OvsRecorder(Configurator):
    name = "ovs"
    switch = "ovs"

    def __init__(self, calls: list) -> None:
        self.calls = calls

    def add_network(self, network: Any, lower_mtu: Any, blocking: bool) -> None:
        self.calls.append(("ovs", "add_network", network.name))

    def remove_network(self, network: Any, keep_bond: bool = True) -> None:
        self.calls.append(("ovs", "remove_network", network.name))

    def create_bond(self, bond: Any) -> None: ...

    def modify_bond(self, bond: Any, old: Any) -> None: ...

    def delete_bond(self, bond: Any) -> None: ...

    def set_mtu(self, device: str, mtu: int) -> None:
        self.calls.append(("ovs", "set_mtu", device))

    def flush(self) -> None:
        self.calls.append(("ovs", "flush", ""))

    def begin(self) -> None: ...


@pytest.fixture
def recorders() -> Iterator[Callable[..., Configurators]]:
    """Configurators whose default (iproute2) and ovs record their calls;
    the ovs one made on first use, noted in ``made``."""
    seen: dict[str, list] = {}

    def ovs(config: Config, peers: Configurators) -> Configurator:
        seen["made"].append(1)
        return OvsRecorder(seen["calls"])

    def make(calls: list, made: list | None = None) -> Configurators:
        seen["calls"], seen["made"] = calls, made if made is not None else []
        return Configurators(Config(), {"iproute2": Recorder(calls)})

    with registered(Entry("ovs", ovs, switch="ovs")):
        yield make


def attrs(**kwargs: Any) -> dict:
    out = canonicalize_network("x", kwargs)
    assert out is not None
    return out


def test_ovs_edits_are_sent_before_a_legacy_operation_and_at_the_end(recorders) -> None:
    calls: list = []
    mixed = recorders(calls)
    networks = {
        "aovs": attrs(nic="eth0", vlan=10, switch="ovs"),
        "blegacy": attrs(nic="eth1", bridged=False),
        "covs": attrs(nic="eth0", vlan=20, switch="ovs"),
    }
    applier = NetworkApplier(mixed, {"networks": networks, "bonds": {}})
    for name, net in networks.items():
        applier.apply({"op": "add_network", "name": name, "attrs": net}, {})
    applier.apply({"op": "set_mtu", "device": "eth0", "mtu": 1500}, {})
    applier.finish()
    assert calls == [
        ("ovs", "add_network", "aovs"),
        ("ovs", "flush", ""),
        ("legacy", "setup_nic", "eth1"),
        ("legacy", "set_ip", "eth1"),
        ("ovs", "add_network", "covs"),
        ("ovs", "set_mtu", "eth0"),
        ("ovs", "flush", ""),
    ]


def test_a_legacy_only_plan_never_makes_the_ovs_configurator(recorders) -> None:
    made: list = []
    mixed = recorders([], made)
    net = attrs(nic="eth1")
    applier = NetworkApplier(mixed, {"networks": {"n": net}, "bonds": {}})
    applier.apply({"op": "add_network", "name": "n", "attrs": net}, {})
    applier.finish()
    assert made == [] and not mixed.started("ovs")


def test_the_applier_names_no_switch() -> None:
    """Which configurator owns what is the registry's business."""
    import ast
    from pathlib import Path

    import superd.applier

    tree = ast.parse(Path(superd.applier.__file__).read_text(encoding="utf-8"))
    literals = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    assert not literals & {"legacy", "ovs"}
