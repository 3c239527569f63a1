"""A one-network change on a host of thousands walks none of the other
networks or devices where a fact superd tracks says there is nothing to do:
the host QoS sync after each transaction (``shapes``: the final state asks
for no shaping) and the NetworkManager lease-rules listener on each monitor
batch (only the devices the batch touched)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import SimpleNamespace
from typing import Any

from configurators.iproute2 import Iproute2Configurator
from configurators.nm_lease_rules import IFA_F_PERMANENT, LeaseRulesListener
from configurators.registry import Configurators
from shared.config import Config
from shared.netmodel.canonical import canonicalize_network
from shared.netmodel.plan import Plan
from shared.source_routing import source_table
from superd.applier import NetworkApplier
from superd.plan_intake import final_shapes
from tests.unit.test_applier import Recorder


class Untouchable(Mapping):
    """A host's worth of entries that must not be walked: lookups by key
    answer, iterating raises."""

    def __init__(self, entries: Mapping) -> None:
        self._entries = dict(entries)

    def __getitem__(self, key: Any) -> Any:
        return self._entries[key]

    def get(self, key: Any, default: Any = None) -> Any:
        return self._entries.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator:
        raise AssertionError("walked every entry")

    def __len__(self) -> int:
        return len(self._entries)


def net(**kwargs: Any) -> dict:
    out = canonicalize_network("x", kwargs)
    assert out is not None
    return out


SHAPED = net(nic="eth0", vlan=10, hostQos={"out": {"ls": {"m2": 20}}})


def plan_adding(attrs: dict) -> Plan:
    return Plan([{"op": "add_network", "name": "new", "attrs": attrs}], {}, None)


def test_a_change_on_a_host_without_qos_leaves_the_final_state_unshaped() -> None:
    assert final_shapes(plan_adding(net(bridged=True)), running_shapes=False) is False


def test_a_network_added_with_host_qos_makes_the_final_state_shaped() -> None:
    assert final_shapes(plan_adding(SHAPED), running_shapes=False) is True


def test_a_shaped_running_configuration_keeps_the_sync_looking() -> None:
    removal = Plan([{"op": "remove_network", "name": "a", "attrs": SHAPED}], {}, None)
    assert final_shapes(removal, running_shapes=True) is True


def test_the_applier_told_nothing_shapes_walks_no_network_at_the_end() -> None:
    calls: list = []
    configurators = Configurators(Config(), {"iproute2": Recorder(calls)})
    host = Untouchable({f"bn{i}": net(bridged=True) for i in range(50)})
    applier = NetworkApplier(configurators, {"networks": host, "bonds": {}}, shapes=False)
    applier.finish()  # Untouchable raises if sync_host_qos walks the networks
    assert calls == []


def test_iproute2_told_nothing_shapes_neither_walks_nor_dumps() -> None:
    configurator = Iproute2Configurator.__new__(Iproute2Configurator)  # no kernel needed
    configurator._shaped = False  # nothing of netreload's shaping seen
    host = Untouchable({f"bn{i}": net(bridged=True) for i in range(50)})
    assert configurator.sync_host_qos(host, shapes=False) == []


# -- the lease-rules listener ----------------------------------------------------

MAIN_IDENT = (4, 254, None, 0, 0, 0, 0)
LEASED = {"family": 4, "scope": 0, "address": "10.66.0.105", "prefixlen": 24, "flags": 0}


def kernel_state(links: Mapping, by_oif: Mapping, touched: frozenset[int] | None,
                 rules: tuple = ()) -> SimpleNamespace:  # fmt: skip
    return SimpleNamespace(
        links=links,
        addresses={1: ({**LEASED, "address": "192.0.2.10", "flags": IFA_F_PERMANENT},),
                   2: (LEASED,)},  # fmt: skip
        by_oif=by_oif,
        defaults={MAIN_IDENT: None},
        routes={MAIN_IDENT: {0: SimpleNamespace(route={"oif": 1, "gateway": "192.0.2.1"})}},
        rules=rules,
        touched=touched,
    )


class Rules:
    def __init__(self) -> None:
        self.written: list[tuple] = []

    def rule(self, how: str, **spec: Any) -> None:
        self.written.append((how, spec.get("src"), spec.get("dst"), spec["table"]))


def host_links(n: int) -> dict[int, dict]:
    links = {1: {"name": "eth0"}, 2: {"name": "eth1"}}
    links.update({i: {"name": f"bn{i}"} for i in range(3, n + 3)})
    return links


def listener_after_a_first_state() -> tuple[LeaseRulesListener, Rules, SimpleNamespace]:
    rules = Rules()
    listener = LeaseRulesListener(lambda: rules)
    first = kernel_state(host_links(200), {1: {MAIN_IDENT: frozenset()}}, None)
    listener.on_state(first)  # a full dump: every device looked at, eth1 has no route yet
    assert rules.written == []
    return listener, rules, first


def test_the_lease_listener_looks_only_at_the_devices_a_batch_touched() -> None:
    listener, rules, first = listener_after_a_first_state()
    table = source_table("eth1")
    by_oif = {**first.by_oif, 2: {(4, table, None, 0, 0, 0, 0): frozenset()}}
    listener.on_state(kernel_state(Untouchable(first.links), by_oif, frozenset({2})))
    assert set(rules.written) == {("add", None, "10.66.0.0", table),
                                  ("add", "10.66.0.0", None, table)}  # fmt: skip


def test_a_batch_adding_a_leases_route_alone_still_gets_its_rules() -> None:
    listener, rules, first = listener_after_a_first_state()
    table = source_table("eth1")
    by_oif = {**first.by_oif, 2: {(4, table, None, 0, 0, 0, 0): frozenset()}}
    listener.on_state(kernel_state(Untouchable(first.links), by_oif, frozenset()))
    assert len(rules.written) == 2


# -- superd's facts of a running configuration -----------------------------------


class NotWalked(dict):
    def items(self):  # type: ignore[override]
        raise AssertionError("walked every network")

    def keys(self):  # type: ignore[override]
        raise AssertionError("walked every network")


def test_the_shaping_fact_follows_the_networks_the_running_store_names() -> None:
    from superd.monitor_report import _NetworkFacts

    facts = _NetworkFacts()
    host = {f"bn{i}": net(bridged=True) for i in range(50)}
    assert facts.update(host) == (False, False)
    assert facts.update(NotWalked({**host, "q": SHAPED}), {"q"}) == (True, False)
    assert facts.update(NotWalked(host), {"q"}) == (False, False)
