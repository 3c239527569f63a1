"""The incremental report builder gives the report a full build gives.

Random changes to plain host data (devices added, removed, renamed, moved
between bridges, VLANs on them, addresses, default routes, networks of the
running configuration, a bond), each followed by an incremental build told
the ifindexes it touched: the report equals a fresh full build of the same
data, and a change of one device does not walk the host.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import netinfo_delta as delta
from shared.netinfo_incremental import IncrementalBuilder
from shared.netinfo_report import IFA_F_PERMANENT, ReportBuilder
from tests.unit.test_netinfo_report import addr, fake, link

IS_FAKE_NIC = fake("veth*")
NAMES = ("br0", "br1", "br2", "veth0", "veth1", "veth2")


class Host:
    """Plain host data as a live netinfo state holds it, changed in place
    the way states change (a new dict per changed link / address tuple)."""

    def __init__(self) -> None:
        self.links: dict[int, dict] = {}
        self.addresses: dict[int, tuple] = {}
        self.routes: list[dict] = []
        self.running: dict[str, Any] = {"networks": {}, "bonds": {}}
        self.touched: set[int] = set()
        self.version = 0
        self.log: dict[int, frozenset[int]] = {}
        for index, name in enumerate(("veth0", "veth1", "veth2"), start=2):
            self.links[index] = link(name, index)

    def index_of(self, name: str) -> int | None:
        return next((i for i, x in self.links.items() if x["name"] == name), None)

    def set_link(self, index: int, **changes: Any) -> None:
        self.links[index] = {**self.links[index], **changes}
        self.touched.add(index)

    def apply(self, op: tuple) -> None:
        kind, a, b = op
        index = self.index_of(a)
        if kind == "add_bridge" and index is None:
            new = max(self.links, default=1) + 1
            self.links[new] = link(a, new, kind="bridge", info={"br_stp_state": 0})
            self.touched.add(new)
        elif kind == "del" and index is not None:
            for other, x in list(self.links.items()):
                if x.get("master") == index or x.get("link") == index:
                    if x.get("link") == index:  # a VLAN goes with its lower device
                        del self.links[other]
                        self.addresses.pop(other, None)
                    else:
                        x = {**x, "master": None, "slave_kind": None}
                        self.links[other] = x
                    self.touched.add(other)
            del self.links[index]
            self.addresses.pop(index, None)
            self.routes = [r for r in self.routes if r["oif"] != index]
            self.touched.add(index)
        elif kind == "rename" and index is not None and self.index_of(b) is None:
            self.set_link(index, name=b)
        elif kind == "master" and index is not None and a.startswith("veth"):
            master = self.index_of(b)
            if master is not None and self.links[master]["kind"] == "bridge":
                self.set_link(index, master=master, slave_kind="bridge")
        elif kind == "nomaster" and index is not None:
            self.set_link(index, master=None, slave_kind=None)
        elif kind == "mtu" and index is not None:
            self.set_link(index, mtu=int(b))
        elif kind == "vlan" and index is not None and self.links[index]["kind"] != "vlan":
            name = f"{a}.{b}"
            if self.index_of(name) is None:
                new = max(self.links) + 1
                self.links[new] = link(name, new, kind="vlan", link=index,
                                       info={"vlan_id": int(b)})  # fmt: skip
                self.touched.add(new)
        elif kind == "addr" and index is not None:
            self.addresses[index] = (addr(index, b, 24, IFA_F_PERMANENT),)
            self.touched.add(index)
        elif kind == "dhcp_addr" and index is not None:
            self.addresses[index] = (addr(index, b, 24, 0),)
            self.touched.add(index)
        elif kind == "noaddr" and index is not None and index in self.addresses:
            del self.addresses[index]
            self.touched.add(index)
        elif kind == "default" and index is not None:
            self.routes = [{"family": 4, "table": 254, "type": 1, "dst": None, "dst_len": 0,
                            "gateway": b, "oif": index, "priority": 0, "nexthops": []}]  # fmt: skip
        elif kind == "nodefault":
            self.routes = []
        elif kind == "network":
            nets = dict(self.running["networks"])
            nets[a] = {"bridged": True, "nic": b, "mtu": 1500}
            if b == "dhcp":
                nets[a] = {"bridged": True, "bootproto": "dhcp", "mtu": 1500}
            self.running = {**self.running, "networks": nets}
        elif kind == "flat":
            nets = {**self.running["networks"], a: {"bridged": False, "nic": b, "mtu": 1500}}
            self.running = {**self.running, "networks": nets}
        elif kind == "unnetwork":
            nets = {n: x for n, x in self.running["networks"].items() if n != a}
            self.running = {**self.running, "networks": nets}

    def with_networks(self, count: int, addressed: bool = False) -> Host:
        """``count`` bridged networks br0, br1, ... (each its bridge, on a
        NIC veth9 the host lacks; ``addressed``: an address on each), as one
        version."""
        for i in range(count):
            self.apply(("add_bridge", f"br{i}", ""))
            if addressed:
                self.apply(("addr", f"br{i}", f"10.{i // 250}.{i % 250}.1"))
            self.apply(("network", f"br{i}", "veth9"))
        self.next_version()
        return self

    def next_version(self) -> int:
        self.version += 1
        self.log[self.version] = frozenset(self.touched)
        self.touched = set()
        return self.version

    def changed_between(self, old: int, new: int) -> frozenset[int] | None:
        low, high = sorted((old, new))
        out: set[int] = set()
        for version in range(low + 1, high + 1):
            out |= self.log[version]
        return frozenset(out)

    def build(self, builder: Any, incremental: bool = True, is_fake_nic: Any = IS_FAKE_NIC) -> dict:
        # a state's mappings never change: each build gets its own
        args = (dict(self.links), dict(self.addresses), list(self.routes), self.running,
                ["192.0.2.53"], is_fake_nic, ())  # fmt: skip
        if incremental:
            return builder.build(*args, self.version, self.changed_between)
        return builder.build(self.links.values(), *args[1:])


_name = st.sampled_from(NAMES)
OPERATION = st.one_of(
    st.tuples(st.just("add_bridge"), st.sampled_from(("br0", "br1", "br2")), st.just("")),
    st.tuples(st.just("del"), _name, st.just("")),
    st.tuples(st.just("rename"), _name, _name),
    st.tuples(st.just("master"), st.sampled_from(("veth0", "veth1", "veth2")),
              st.sampled_from(("br0", "br1", "br2"))),
    st.tuples(st.just("nomaster"), _name, st.just("")),
    st.tuples(st.just("mtu"), _name, st.sampled_from(("1400", "9000"))),
    st.tuples(st.just("vlan"), _name, st.sampled_from(("10", "20"))),
    st.tuples(st.sampled_from(("addr", "dhcp_addr")), _name,
              st.sampled_from(("10.0.0.1", "10.1.0.1"))),
    st.tuples(st.just("noaddr"), _name, st.just("")),
    st.tuples(st.just("default"), _name, st.sampled_from(("10.0.0.254", "10.1.0.254"))),
    st.tuples(st.just("nodefault"), st.just(""), st.just("")),
    st.tuples(st.just("network"), st.sampled_from(("br0", "br1", "br9")),
              st.sampled_from(("veth0", "veth1", "veth7", "dhcp"))),
    st.tuples(st.just("flat"), st.sampled_from(("fl0", "fl1")), _name),
    st.tuples(st.just("unnetwork"), st.sampled_from(("br0", "br1", "br9", "fl0", "fl1")),
              st.just("")),
)  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.lists(OPERATION, min_size=1, max_size=4), min_size=1, max_size=12))
def test_incremental_builds_equal_full_builds(batches: list[list[tuple]]) -> None:
    host = Host()
    builder = IncrementalBuilder()
    reports = [host.build(builder)]
    kept = [copy.deepcopy(reports[0])]
    for batch in batches:
        for op in batch:
            host.apply(op)
        host.next_version()
        reports.append(host.build(builder))
        kept.append(copy.deepcopy(reports[-1]))
        assert reports[-1] == host.build(ReportBuilder(), incremental=False), batch
    # reports share what did not change: none was written after it was given
    assert reports == kept
    # the builder's hint gives the delta a full comparison gives, from any
    # earlier report (when it knows one)
    for old in (reports[0], reports[-2]):
        hint = builder.changes_between(old, reports[-1])
        if hint is not None:
            assert delta.patch(old, delta.diff(old, reports[-1], hint)) == reports[-1]


class Config:
    def is_fake_nic(self, name: str) -> bool:
        return IS_FAKE_NIC(name)


def test_a_change_of_one_device_is_not_a_full_build() -> None:
    """Not even with the NIC predicate a bound method (a new object each
    time it is read, as ``config.is_fake_nic``)."""
    host = Host().with_networks(200, addressed=True)
    builder, config = IncrementalBuilder(), Config()
    host.build(builder, is_fake_nic=config.is_fake_nic)
    host.apply(("add_bridge", "new0", ""))
    host.apply(("network", "new0", "veth0"))
    host.next_version()
    report = host.build(builder, is_fake_nic=config.is_fake_nic)
    assert builder.full_builds == 1
    assert report == host.build(ReportBuilder(), incremental=False)
    assert "new0" in report["networks"] and "new0" in report["bridges"]


def test_the_delta_hint_names_only_what_changed() -> None:
    host = Host().with_networks(50)
    builder = IncrementalBuilder()
    old = host.build(builder)
    host.apply(("addr", "br7", "10.7.0.1"))
    host.next_version()
    new = host.build(builder)
    hint = builder.changes_between(old, new)
    assert hint is not None and hint["networks"] == {"br7"} and "br7" in hint["bridges"]
    assert delta.diff(old, new, hint) == delta.diff(old, new)


def test_a_change_shares_the_sections_it_does_not_write() -> None:
    """Adding a bridge writes the bridges and the networks; the NICs and
    VLANs sections are the last report's own (no copy of the host's)."""
    host = Host().with_networks(50, addressed=True)
    host.apply(("vlan", "veth1", "10"))
    host.next_version()
    builder = IncrementalBuilder()
    old = host.build(builder)
    host.apply(("add_bridge", "new0", ""))
    host.apply(("network", "new0", "veth0"))
    host.next_version()
    new = host.build(builder)
    assert builder.full_builds == 1 and "new0" in new["bridges"]
    assert new["nics"] is old["nics"] and new["vlans"] is old["vlans"]
    assert new["bridges"] is not old["bridges"] and "new0" not in old["bridges"]


def test_an_unknown_change_is_a_full_build() -> None:
    host = Host()
    builder = IncrementalBuilder()
    host.build(builder)
    host.apply(("add_bridge", "br0", ""))
    host.next_version()
    builder.build(host.links, host.addresses, [], host.running, [], IS_FAKE_NIC, (),
                  host.version, lambda old, new: None)  # fmt: skip
    assert builder.full_builds == 2


class NotWalked(dict):
    """A running configuration's networks that may be looked up by name but
    not walked (the builder's hint names the few that changed)."""

    def items(self):  # type: ignore[override]
        raise AssertionError("walked every network")

    def __iter__(self):  # type: ignore[override]
        raise AssertionError("walked every network")

    def keys(self):  # type: ignore[override]
        raise AssertionError("walked every network")


def test_the_builder_judges_only_the_networks_the_running_store_names() -> None:
    host = Host().with_networks(50)
    builder = IncrementalBuilder()
    host.build(builder)
    host.apply(("add_bridge", "new0", ""))
    host.apply(("network", "new0", "veth0"))
    host.next_version()
    running = {**host.running, "networks": NotWalked(host.running["networks"])}
    report = builder.build(dict(host.links), dict(host.addresses), list(host.routes), running,
                           ["192.0.2.53"], IS_FAKE_NIC, (), host.version, host.changed_between,
                           lambda old, new: {"new0"})  # fmt: skip
    assert builder.full_builds == 1
    assert report == host.build(ReportBuilder(), incremental=False)


def test_a_full_build_lets_the_reports_before_it_go() -> None:
    """No delta spans a full build, so the builder keeps no report from
    before one: after removing thousands of networks (a full build), the
    reports that held them are freed (issue 21: superd's memory)."""
    host = Host().with_networks(100)
    builder = IncrementalBuilder()
    before = [host.build(builder)]
    host.apply(("addr", "br7", "10.7.0.1"))
    host.next_version()
    before.append(host.build(builder))
    for i in range(100):  # more than MANY devices changed: a full build
        host.apply(("del", f"br{i}", ""))
        host.apply(("unnetwork", f"br{i}", ""))
    host.next_version()
    after = host.build(builder)
    assert builder.full_builds == 2
    assert builder.changes_between(before[0], after) is None
    kept = [report for report, _ in builder._history]
    assert kept == [after] and all(report is not old for report in kept for old in before)
