"""The live netinfo's reports (:class:`superd.monitor.LiveNetinfo`'s half
that builds, names and caches them): one report per (kernel state, running
configuration, nameservers, OVSDB and teamd/tc state), built incrementally
from the last one (:mod:`shared.netinfo_incremental`) with the ifindexes
the states in between touched.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

import orjson

from persistence.sections import plain_snapshot
from shared.caches import forget_me
from shared.config import Config
from shared.layered import Layered, LayeredSet, plain
from shared.netinfo_incremental import IncrementalBuilder
from shared.netmodel.host_qos import shaping
from shared.netmodel.ownership import OWNER_ALIAS
from shared.wire import to_json
from superd import netstats, qos_report, team_report
from superd.admin_state import is_held_down
from superd.netinfo import ovs_state, read_nameservers, with_ovs
from superd.netstate import NetState
from superd.ovs_report import digest as ovs_digest

READ_OVS = object()  # report(): read OVSDB's state now
CACHED_REPORTS = 1  # each is the whole host; the builder shares entries anyway
TOUCHED_KEPT = 256  # versions whose touched ifindexes are remembered
KNOWN_GENERATIONS = 4  # running configurations whose generation is remembered
OWNED_STEPS = 32  # changes of the marked devices remembered (see owned_changes)


class ReportCache:
    """The report half of the monitor; the monitor provides ``config``,
    ``netns``, ``epoch``, ``_state`` and ``_request_socket``, and calls
    :meth:`_init_reports` and, with each state it publishes, :meth:`_touched`."""

    config: Config
    netns: str | None
    epoch: str
    _state: NetState

    def _init_reports(self) -> None:
        self._caps_lock = threading.Lock()  # guards _caps
        self._caps: OrderedDict[tuple, list] = OrderedDict()
        self._builder = IncrementalBuilder()  # one build at a time: safe to share
        self._touched_log: dict[int, frozenset[int] | None] = {}
        self._facts: tuple[Mapping, tuple[bool, bool]] | None = None
        self._facts_lock = threading.Lock()  # guards _net_facts
        self._net_facts = _NetworkFacts()
        # (version, marked ifindex → name, sorted names or None until asked, names)
        self._owned_memo: tuple[int, Layered, list[str] | None, LayeredSet] | None = None
        # id(a set owned() gave) → (that set, the one before it, the names that moved)
        self._owned_steps: OrderedDict[int, tuple[AbstractSet, AbstractSet, frozenset]]
        self._owned_steps = OrderedDict()
        # (version, marked ifindex held down → name, those names): see held_down
        self._down_memo: tuple[int, dict[int, str], frozenset[str]] | None = None
        # the running store's log (``changed_between(old, new)`` of
        # generations), set by its owner (``superd.verbs``); the generations
        # of the last running configurations seen, by identity
        self.running_names: Callable[[int, int], Mapping[str, Collection[str]] | None] | None = None
        self._generations: OrderedDict[int, tuple[Mapping, int]] = OrderedDict()
        self._generations_lock = threading.Lock()
        self._facts_running: Mapping | None = None  # the running of _net_facts
        # emptied after a big change (shared.caches): "not known" until refilled
        forget_me(lambda r: (r._generations.clear(), r._touched_log.clear()), self,
                  self._generations_lock)  # fmt: skip

    def _touched(self, state: NetState) -> None:
        """Remember which ifindexes ``state`` touched (monitor thread)."""
        self._touched_log[state.version] = state.touched
        self._touched_log.pop(state.version - TOUCHED_KEPT, None)

    def owned(self, state: NetState) -> tuple[list[str], AbstractSet[str]]:
        """The devices of ``state`` carrying netreload's mark, sorted and as
        a set (:meth:`owned_set`; the sorted list is made when asked: only
        a whole netinfo answer needs it)."""
        owned = self.owned_set(state)
        memo = self._owned_memo
        if memo is None or memo[3] is not owned:  # another thread moved on meanwhile
            return sorted(owned), owned
        if memo[2] is None:
            memo = (*memo[:2], sorted(owned), owned)
            self._owned_memo = memo
        return memo[2], owned  # type: ignore[return-value]

    def owned_set(self, state: NetState) -> AbstractSet[str]:
        """The devices of ``state`` carrying netreload's mark; from the last
        answer and the ifindexes touched since when known (a walk over every
        device otherwise). The marked ifindexes are layered (their copy
        costs the change, ``shared.layered``); the set is derived by one
        :meth:`LayeredSet.moved` of the names that moved (a frozenset's
        ``difference``/``union`` copied the host's names)."""
        memo = self._owned_memo
        if memo is not None and memo[0] == state.version:
            return memo[3]
        changed = self.changed_between(memo[0], state.version) if memo is not None else None
        if memo is None or changed is None:
            marked = Layered({i: x["name"] for i, x in state.links.items()
                              if x.get("alias") == OWNER_ALIAS})  # fmt: skip
            memo = (state.version, marked, None, LayeredSet(marked.values()))
        else:
            updates = {}  # ifindex → its marked name now (None: not marked)
            for index in changed:
                link = state.links.get(index) or {}
                name = link["name"] if link.get("alias") == OWNER_ALIAS else None
                if memo[1].get(index) != name:
                    updates[index] = name
            if not updates:  # the marks did not change: shared, not copied
                memo = (state.version, *memo[1:])
            else:
                marked = memo[1].copy()
                added, removed = set(), set()
                for index, name in updates.items():
                    if index in marked:
                        removed.add(marked.pop(index))
                    if name is not None:
                        marked[index] = name
                        added.add(name)
                before = memo[3]
                gone = {name for name in removed - added if name in before}
                new = {name for name in added if name not in before}
                owned = before.moved(new, gone) if gone or new else before
                if owned is not memo[3]:  # a step to itself would hide the one that made it
                    self._owned_steps[id(owned)] = (owned, memo[3], frozenset(added | removed))
                    while len(self._owned_steps) > OWNED_STEPS:
                        self._owned_steps.popitem(last=False)
                names = memo[2] if owned is memo[3] else None
                memo = (state.version, marked, names, owned)
        self._owned_memo = memo
        return memo[3]

    def held_down(self, state: NetState) -> frozenset[str]:
        """The devices of ``state`` carrying netreload's mark that are
        administratively down (``superd.admin_state``): from the last answer
        and the ifindexes touched since when known (a handful: the set is
        empty on a healthy host), a walk over every link otherwise (after a
        full dump)."""
        memo = self._down_memo
        if memo is not None and memo[0] == state.version:
            return memo[2]
        changed = self.changed_between(memo[0], state.version) if memo is not None else None
        if memo is None or changed is None:
            down = {i: x["name"] for i, x in state.links.items() if is_held_down(x)}
        else:
            down = dict(memo[1])  # the few held down: a copy costs nothing
            for index in changed:
                link = state.links.get(index)
                if link is not None and is_held_down(link):
                    down[index] = link["name"]
                else:
                    down.pop(index, None)
        names = memo[2] if memo is not None and down == memo[1] else frozenset(down.values())
        self._down_memo = (state.version, down, names)
        return names

    def owned_changes(self, old: AbstractSet[str], new: AbstractSet[str]) -> frozenset[str] | None:
        """The names that may be in one of two sets :meth:`owned` gave and
        not in the other (the others are in both or neither), from the
        steps it took between them; None when not known. For a delta of the
        marked devices at the cost of the change."""
        for first, last in ((old, new), (new, old)):  # either may be the later one
            names: frozenset[str] = frozenset()
            at: AbstractSet[str] = last
            for _ in range(OWNED_STEPS + 1):
                if at is first:
                    return names
                step = self._owned_steps.get(id(at))
                if step is None or step[0] is not at:
                    break
                at, names = step[1], names | step[2]
        return None

    def report_changes(self, old: dict, new: dict) -> dict[str, set[str]] | None:
        """Per section, the names whose entries may differ between two
        reports (:meth:`IncrementalBuilder.changes_between`)."""
        return self._builder.changes_between(old, new)

    def changed_between(self, old: int, new: int) -> Collection[int] | None:
        """The ifindexes whose link or addresses may differ between the
        states of versions ``old`` and ``new``; None when not known."""
        low, high = sorted((old, new))
        out: set[int] = set()
        for version in range(low + 1, high + 1):
            touched = self._touched_log.get(version)
            if touched is None:
                return None
            out |= touched
        return out

    def capabilities(self, running: Mapping[str, Any], state: NetState | None = None) -> dict:
        """The report of ``state`` (default: the current one), built once per
        (version, running, nameservers). Shared between callers: read-only."""
        state = self._state if state is None else state
        running_key = orjson.dumps(  # names the running configuration: a whole host's
            plain_snapshot(running),  # a layered section as its dict, not its repr
            option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
            default=str,
        )
        ovs = self.ovs_state(running)
        qos = self._qos_trees(running)
        return self._report(running, state, running_key, read_nameservers(self.config), ovs,
                            qos)[0]  # fmt: skip

    def _qos_trees(self, running: Mapping[str, Any]) -> dict | None:
        """What the report takes from outside rtnetlink, read now: the HFSC
        trees of the shaped devices (tc changes send no link notification)
        and the teams' active ports (teamd's); None when there is neither."""
        extra: dict[str, Any] = {}
        if self._running_facts(running)[0]:
            from pyroute2 import IPRoute

            with IPRoute(netns=self.netns) if self.netns else IPRoute() as ipr:
                extra["qos"] = qos_report.read_trees(running, ipr)
        active = team_report.read_active_ports(running, self.config)
        if active is not None:
            extra["team"] = active
        return extra or None

    def network_statistics(self) -> dict:
        """``Host.getNetworkStatistics``' report: the cached links, their
        counters dumped now on a socket of the caller's (:mod:`superd.netstats`)."""
        state = self._state
        with contextlib.closing(self._request_socket()) as sock:
            return netstats.collect(state.links.values(), self.config.is_fake_nic, sock)

    def ovs_state(self, running: Mapping[str, Any]) -> dict | None:
        """OVSDB's bridges and ports, if ``running`` has OVS networks."""
        if not self._running_facts(running)[1]:
            return None
        return ovs_state(running, self.config)

    def running_shapes(self, running: Mapping[str, Any]) -> bool:
        """Whether a network of ``running`` asks for shaping (known from the
        report built for it: no walk over the networks)."""
        return self._running_facts(running)[0]

    def _running_facts(self, running: Mapping[str, Any]) -> tuple[bool, bool]:
        """(a network asks for shaping, a network or bond is OVS's) of
        ``running``, computed once per running configuration (asked several
        times per change), from the last one's: only the networks whose
        attributes are not the same objects are judged again."""
        memo = self._facts
        if memo is not None and memo[0] is running:
            return memo[1]
        with self._facts_lock:
            names = self.networks_changed(self._facts_running, running)
            facts = self._net_facts.update(running.get("networks") or {}, names)
            self._facts_running = running
            ovs_bond = any(a.get("switch") == "ovs" for a in (running.get("bonds") or {}).values())
            memo = (running, (facts[0], facts[1] or ovs_bond))
            self._facts = memo
        return memo[1]

    def _remember(self, running: Mapping[str, Any], generation: int) -> None:
        with self._generations_lock:
            self._generations[id(running)] = (running, generation)  # held: ids not reused
            self._generations.move_to_end(id(running))
            while len(self._generations) > KNOWN_GENERATIONS:
                self._generations.popitem(last=False)

    def networks_changed(self, old: Mapping | None, new: Mapping) -> Collection[str] | None:
        """The networks whose attributes may differ between the running
        configurations ``old`` and ``new`` (the store's log, when both are
        generations seen lately); None when not known."""
        if old is None or self.running_names is None:
            return None
        with self._generations_lock:
            before, after = self._generations.get(id(old)), self._generations.get(id(new))
        if before is None or after is None or before[0] is not old or after[0] is not new:
            return None
        names = self.running_names(before[1], after[1])
        return None if names is None else names.get("networks")

    def current_report(self, running: Mapping[str, Any], running_key: object) -> dict:
        """The current report as a dict (shared, read-only): the one the
        netinfo verb just served for ``running_key`` costs nothing."""
        nameservers = read_nameservers(self.config)
        ovs = self.ovs_state(running)
        qos = self._qos_trees(running)
        return self._report(running, self._state, running_key, nameservers, ovs, qos)[0]

    def report(
        self,
        running: Mapping[str, Any],
        running_key: object,
        known: object = None,
        state: NetState | None = None,
        ovs: dict | None | object = READ_OVS,
    ) -> tuple[str, bytes | None]:
        """(token, the report of ``state`` — default: the current one — as
        compact JSON), the JSON encoded once per report. ``running_key`` names
        ``running`` (its generation). The token names the report in this run
        (an equal token, an equal report): when ``known`` is that token, the
        JSON is None — the caller has it."""
        token, entry = self._token_and_report(running, running_key, known, state, ovs)
        if entry is None:
            return token, None
        if entry[1] is None:
            entry[1] = to_json(plain_report(entry[0]))
        return token, entry[1]

    def report_dict(
        self,
        running: Mapping[str, Any],
        running_key: object,
        state: NetState | None = None,
        ovs: dict | None | object = READ_OVS,
    ) -> tuple[str, dict]:
        """(token, the report as a dict — shared, read-only) as :meth:`report`
        names it, not encoded: for a delta against an earlier one."""
        token, entry = self._token_and_report(running, running_key, None, state, ovs)
        assert entry is not None
        return token, entry[0]

    def _token_and_report(
        self, running: Mapping[str, Any], running_key: object, known: object,
        state: NetState | None, ovs: dict | None | object,
    ) -> tuple[str, list | None]:  # fmt: skip
        state = self._state if state is None else state
        if type(running_key) is int:  # a generation of the running store
            self._remember(running, running_key)
        nameservers = read_nameservers(self.config)
        # OVS bridges and ports are OVSDB's, read fresh: they name the report too
        if ovs is READ_OVS:
            ovs = self.ovs_state(running)
        token = f"{self.epoch}.{state.version}.{running_key}.{','.join(nameservers)}"
        if ovs is not None:
            token += f".{ovs_digest(ovs)}"
        qos = self._qos_trees(running)
        if qos is not None:
            token += f".q{_extra_digest(qos)}"
        if known == token:
            return token, None
        return token, self._report(running, state, running_key, nameservers, ovs, qos)

    def _report(self, running: Mapping[str, Any], state: NetState, running_key: object,
                nameservers: list[str], ovs: dict | None = None,
                qos: dict | None = None) -> list:  # fmt: skip
        """[report, its JSON or None], cached by key; few entries: each is
        the whole host."""
        key = (state.version, running_key, *nameservers, ovs_digest(ovs) if ovs else None,
               _extra_digest(qos) if qos is not None else None)  # fmt: skip
        with self._caps_lock:
            if (entry := self._caps.get(key)) is not None:
                self._caps.move_to_end(key)
                return entry
        caps = self._builder.build(state.links, state.addresses, state.default_routes(), running,
                                   nameservers, self.config.is_fake_nic, state.rules,
                                   state.version, self.changed_between,
                                   self.networks_changed)  # fmt: skip
        if ovs is not None:  # ovs_report.overlay copies dict sections only, writes into them
            caps = plain_report(caps)
        if qos is not None and qos.get("qos") is not None:
            caps = qos_report.overlay(caps, qos["qos"], running)
        if qos is not None and qos.get("team") is not None:
            caps = team_report.overlay(caps, qos["team"])
        if ovs is not None:
            caps = with_ovs(caps, running, self.config, ovs)
        entry = [caps, None]
        with self._caps_lock:
            entry = self._caps.setdefault(key, entry)
            while len(self._caps) > CACHED_REPORTS:
                self._caps.popitem(last=False)
        return entry


class _NetworkFacts:
    """Which networks of the last running configuration ask for shaping
    (``qos_report.shaped_devices``' rule) and which are OVS's, updated from
    one configuration to the next by identity of their attributes (the
    running store shares those of the networks a write did not change)."""

    def __init__(self) -> None:
        self.networks: Mapping[str, Any] = {}
        self.shaped: set[str] = set()
        self.ovs: set[str] = set()

    def update(
        self, networks: Mapping[str, Any], names: Collection[str] | None = None
    ) -> tuple[bool, bool]:
        """``names``: the only networks that may differ from the last
        configuration's (None: compared by identity, every one)."""
        old = self.networks
        if networks is not old:
            if names is None:
                changed = [name for name, attrs in networks.items() if old.get(name) is not attrs]
            else:
                changed = [n for n in names if n in networks and old.get(n) is not networks[n]]
            for name in changed:
                attrs = networks[name]
                lower = attrs.get("nic") or attrs.get("bonding")
                legacy = attrs.get("switch", "legacy") == "legacy"
                (self.shaped.add if shaping(attrs) and legacy and lower else self.shaped.discard)(
                    name
                )
                (self.ovs.add if attrs.get("switch") == "ovs" else self.ovs.discard)(name)
            for name in old.keys() - networks.keys() if names is None else (
                n for n in names if n not in networks
            ):
                self.shaped.discard(name)
                self.ovs.discard(name)
            self.networks = networks
        return bool(self.shaped), bool(self.ovs)


def plain_report(caps: dict) -> dict:
    """The report with its layered sections (``shared.netinfo_incremental``)
    as dicts: a block copy each, for orjson and the overlays."""
    if not any(isinstance(v, Layered) for v in caps.values()):
        return caps
    return {key: plain(value) for key, value in caps.items()}


def _extra_digest(extra: Mapping[str, Any]) -> str:
    """A short name of what ``LiveNetinfo._qos_trees`` read."""
    trees, teams = extra.get("qos"), extra.get("team") or {}
    return f"{qos_report.digest(trees) if trees else ''}.{sorted(teams.items())}"
