"""The change plan: what frontd computes and superd executes.

canonicalize → build model → validate → **plan** → (superd) apply → verify
→ persist. A plan is plain JSON: ordered operations plus the running
configuration expected once they all succeeded. An edit of a network is a
removal followed by an addition, as in the production agent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from shared.errors import ErrorCode, NetError
from shared.netmodel.canonical import (
    canonicalize_bond,
    canonicalize_network,
    canonicalize_options,
    persisted_form,
)
from shared.netmodel.names import (
    validate_bond_name,
    validate_network_name,
    validate_nic_name,
)
from shared.netmodel.plan_checks import (
    OPERATION_KEYS,
    PLAN_KEYS,
    RUNNING_KEYS,
    check_bond_devices,
    check_final_state,
    check_keys,
    check_mapping,
    check_mtus,
    check_network_devices,
    check_sequence,
)
from shared.netmodel.request import Request, canonicalize_request
from shared.netmodel.snapshot import NetinfoSnapshot, RunningConfig
from shared.netmodel.validation import FinalState, validate_request
from shared.netmodel.values import to_int

PLAN_VERSION = 1
# Execution order; superd accepts no other operation names.
OPERATIONS = (
    "remove_network",
    "remove_bond",
    "edit_bond",
    "add_bond",
    "set_mtu",
    "add_network",
)


@dataclass(frozen=True)
class Plan:
    operations: list[dict]
    options: dict
    # expected running config after; None in a plan received without it,
    # until superd derives it from its own (:meth:`with_running`)
    running: dict | None = field(default_factory=dict)
    # superd's own knowledge, never sent: whether the expected running
    # configuration asks for shaping (``superd.plan_intake.final_shapes``);
    # None when not known (the configurator then looks at every network)
    shapes: bool | None = None

    @property
    def is_empty(self) -> bool:
        return not self.operations

    def to_dict(self, running: bool = True) -> dict:
        """The plan as JSON data; ``running=False`` leaves out the expected
        running configuration (the whole host's networks): superd derives it
        from its own and the operations, so a one-network plan sent to it
        stays the size of one network on a host of thousands."""
        out = {"version": PLAN_VERSION, "operations": self.operations, "options": self.options}
        if running and self.running is not None:
            out["running"] = self.running
        return out

    def with_running(self, running: Mapping) -> Plan:
        """This plan, received without its expected running configuration,
        with ``running`` — superd's own configuration with the operations
        replayed on it (``superd.plan_intake.check_plan_base``) — checked as
        :meth:`from_dict` checks a received one (MTUs, final state)."""
        check_mtus(self.operations, running)
        check_final_state(self.operations, running)
        return replace(self, running=dict(running))

    def with_shapes(self, shapes: bool) -> Plan:
        """This plan, knowing whether its final state asks for shaping."""
        return replace(self, shapes=shapes)

    @classmethod
    def from_dict(cls, data: object) -> Plan:
        """Rebuild and re-validate a plan received from the wire.

        Each value is re-canonicalized; then the plan as a whole must be one
        frontd could have computed (``plan_checks``): known keys only, device
        names safe, operations in order and not repeated, MTUs only where
        and as the plan's networks need them. A plan without ``running``
        (``to_dict(running=False)``) comes back with ``running`` None: its
        receiver completes it with :meth:`with_running`.
        """
        if not isinstance(data, Mapping) or data.get("version") != PLAN_VERSION:
            raise NetError(ErrorCode.BAD_PARAMS, "plan: not a version 1 plan")
        check_keys(data, PLAN_KEYS, "plan")
        ops = data.get("operations")
        if not isinstance(ops, list):
            raise NetError(ErrorCode.BAD_PARAMS, "plan: operations must be a list")
        operations = [_check_operation(op) for op in ops]
        check_sequence(operations, OPERATIONS)
        options = canonicalize_options(data.get("options", {}), strict=True)
        if "running" not in data:  # superd derives it: with_running
            return cls(operations=operations, options=options, running=None)
        running = check_mapping(data.get("running", {}), "plan: running")
        check_keys(running, RUNNING_KEYS, "plan: running")
        checked_running = {
            "networks": {
                validate_network_name(n): _recanonical_network(n, a)
                for n, a in check_mapping(running.get("networks", {}), "running networks").items()
            },
            "bonds": {
                validate_bond_name(n): _recanonical_bond(n, a)
                for n, a in check_mapping(running.get("bonds", {}), "running bonds").items()
            },
        }
        # Devices are checked in the operations only: the rest of the expected
        # running configuration must equal superd's own (check_plan_base).
        check_mtus(operations, checked_running)
        check_final_state(operations, checked_running)
        return cls(operations=operations, options=options, running=checked_running)


def _recanonical_network(name: str, attrs: object) -> dict:
    canonical = canonicalize_network(name, attrs)
    if canonical is None or canonical != attrs:
        raise NetError(ErrorCode.BAD_PARAMS, f"plan: network {name} is not canonical")
    return canonical


def _recanonical_bond(name: str, attrs: object) -> dict:
    canonical = canonicalize_bond(name, attrs)
    if canonical is None or canonical != attrs:
        raise NetError(ErrorCode.BAD_PARAMS, f"plan: bond {name} is not canonical")
    return canonical


def _check_operation(op: object) -> dict:
    if not isinstance(op, Mapping) or op.get("op") not in OPERATIONS:
        raise NetError(ErrorCode.BAD_PARAMS, f"plan: unknown operation {str(op)[:60]}")
    kind = op["op"]
    check_keys(op, OPERATION_KEYS[kind], f"{kind} operation")
    if kind == "set_mtu":
        device = validate_nic_name(op.get("device"))
        return {
            "op": kind,
            "device": device,
            "mtu": to_int(op.get("mtu"), "mtu", 68, 65535),
        }
    if kind.endswith("_network"):
        name = validate_network_name(op.get("name"))
        attrs = _recanonical_network(name, op.get("attrs"))
        check_network_devices(name, attrs)
        if "blockingdhcp" in op:
            if not isinstance(op["blockingdhcp"], bool):  # not "no", which bool() calls True
                raise NetError(ErrorCode.BAD_PARAMS, "plan: blockingdhcp must be true or false")
            return {"op": kind, "name": name, "attrs": attrs, "blockingdhcp": op["blockingdhcp"]}
    else:
        name = validate_bond_name(op.get("name"))
        attrs = _recanonical_bond(name, op.get("attrs"))
        check_bond_devices(name, attrs, added=kind != "remove_bond")
    return {"op": kind, "name": name, "attrs": attrs}


def hand_over_default_route(request: Request, running: RunningConfig) -> Request:
    """The network that held the default route is re-sent without it."""
    if not any(a["defaultRoute"] for a in request.added_networks.values()):
        return request
    networks = dict(request.networks)
    for name, attrs in running.networks.items():
        if name not in networks and attrs.get("defaultRoute"):
            networks[name] = {**attrs, "defaultRoute": False, "nameservers": []}
    return Request(networks, request.bonds, request.options)


def compute_plan(
    request: Request,
    final: FinalState,
    netinfo: NetinfoSnapshot,
    running: RunningConfig,
) -> Plan:
    removes, adds = [], []
    for name in sorted(request.networks):
        attrs = request.networks[name]
        old = running.networks.get(name)
        if attrs is not None and old is not None and persisted_form(attrs) == old:
            continue  # unchanged: minimal change, nothing to do
        if old is not None:
            removes.append({"op": "remove_network", "name": name, "attrs": dict(old)})
        if attrs is not None:
            op = {"op": "add_network", "name": name, "attrs": persisted_form(attrs)}
            if "blockingdhcp" in attrs:
                op["blockingdhcp"] = attrs["blockingdhcp"]
            adds.append(op)
    bond_ops = []
    for name in sorted(request.bonds):
        attrs, old = request.bonds[name], running.bonds.get(name)
        if attrs is None:
            bond_ops.append(
                {"op": "remove_bond", "name": name, "attrs": dict(old or {})}
            )
        elif old is None:
            bond_ops.append({"op": "add_bond", "name": name, "attrs": attrs})
        elif attrs != old:
            bond_ops.append({"op": "edit_bond", "name": name, "attrs": attrs})
    bond_ops.sort(key=lambda op: OPERATIONS.index(op["op"]))
    mtu_ops = _mtu_operations(removes, adds, bond_ops, final, netinfo)
    return Plan(
        operations=removes + bond_ops + mtu_ops + adds,
        options=dict(request.options),
        running={"networks": _persisted(final.networks, request), "bonds": dict(final.bonds)},
    )


def _persisted(networks: Mapping[str, Mapping], request: Request) -> dict:
    """The final networks in persisted form. A running entry is in that form
    already (kept, not copied): only the request's additions may carry
    ``blockingdhcp``."""
    out = dict(networks)
    for name, attrs in request.networks.items():
        if attrs is not None and "blockingdhcp" in attrs and name in out:
            out[name] = persisted_form(out[name])
    return out


def _mtu_operations(
    removes: list,
    adds: list,
    bond_ops: list,
    final: FinalState,
    netinfo: NetinfoSnapshot,
) -> list[dict]:
    """Set each touched NIC/bond to the maximum MTU of its users (or 1500)."""
    touched = {op["name"] for op in bond_ops if op["op"] != "remove_bond"}
    for op in removes + adds:
        lower = op["attrs"].get("nic") or op["attrs"].get("bonding")
        if lower:
            touched.add(lower)
    removed_bonds = {op["name"] for op in bond_ops if op["op"] == "remove_bond"}
    ops = []
    for device in sorted(touched - removed_bonds):
        target = final.lower_mtus.get(device, 1500)
        current = netinfo.device_mtu(device)
        if current is None:
            current = 1500  # a bond about to be created starts at the default
        if current != target:
            ops.append({"op": "set_mtu", "device": device, "mtu": target})
    return ops


def plan_setup_networks(
    networks: object,
    bondings: object,
    options: object,
    netinfo: NetinfoSnapshot,
    running: RunningConfig,
) -> Plan:
    """The whole pure pipeline, request in, plan out (raises NetError)."""
    request = canonicalize_request(networks, bondings, options, netinfo.nameservers)
    request = hand_over_default_route(request, running)
    final = validate_request(request, netinfo, running)
    return compute_plan(request, final, netinfo, running)
