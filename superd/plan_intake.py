"""What superd does with a plan it receives, before applying it: the plan
re-validated from the wire (:meth:`Plan.from_dict`), then checked against
the running configuration it would change (a stale plan is refused)."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

from shared.errors import ErrorCode, NetError
from shared.layered import FOLD_MIN, FoldedWalks
from shared.netmodel.host_qos import shaping
from shared.netmodel.plan import Plan


def plan_from_wire(args: Mapping) -> Plan:
    """The plan argument, re-validated; anything malformed is BAD_PARAMS."""
    if "plan" not in args:
        raise NetError(ErrorCode.BAD_PARAMS, "apply_plan: missing argument plan")
    try:
        return Plan.from_dict(args["plan"])
    except NetError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise NetError(ErrorCode.BAD_PARAMS, f"plan: malformed ({error})") from None


def check_plan_base(plan: Plan, running: Mapping) -> Plan:
    """Refuse a plan computed against another running configuration.

    Replaying the operations on ``running`` must be possible (nothing removed
    that is not there with the same attributes, nothing added twice) and must
    give the plan's expected running configuration. A plan sent without one
    (frontd's: the cost of a change must not be the size of the host) gets
    the replay's, checked (:meth:`Plan.with_running`). The plan to apply.
    ``running`` (the store's shared snapshot) is never written, here nor
    afterwards: the plan's expected configuration may be layered over it.
    """
    nets = _copy(running.get("networks", {}))
    bonds = _copy(running.get("bonds", {}))
    for op in plan.operations:
        kind, name = op["op"], op.get("name")
        if kind == "remove_network":
            ok = nets.pop(name, None) == op["attrs"]
        elif kind == "add_network":
            ok = name not in nets
            nets[name] = op["attrs"]
        elif kind == "remove_bond":
            ok = bonds.pop(name, None) == op["attrs"]
        elif kind in ("add_bond", "edit_bond"):
            ok = (name in bonds) == (kind == "edit_bond")
            bonds[name] = op["attrs"]
        else:
            ok = True  # set_mtu: a device, not configuration
        if not ok:
            raise NetError(
                ErrorCode.BAD_PARAMS,
                f"plan: {kind} {name} does not fit the running configuration (stale plan)",
            )
    expected = plan.running
    if expected is None:
        return plan.with_running({"networks": nets, "bonds": bonds})
    if expected and (expected.get("networks") != nets or expected.get("bonds") != bonds):
        raise NetError(
            ErrorCode.BAD_PARAMS,
            "plan: its expected running configuration does not follow from its operations "
            "and the current one (stale plan)",
        )
    return plan


def _copy(section: Mapping) -> MutableMapping:
    """``section`` to replay operations on. A host's worth of networks is
    layered over the store's dict (never written once shared: the store
    copies to write), so the replay and its release cost the operations,
    not the host; a walk of it later (the NICs' MTUs, the final state's
    checks) folds it once (:class:`FoldedWalks`). A few stay a dict: a
    block copy (dict() re-inserts key by key once the store's dicts have
    holes: 100 → 17 µs beside 5,000 networks)."""
    if type(section) is dict:
        return FoldedWalks(section) if len(section) > FOLD_MIN else section.copy()
    if type(section) is FoldedWalks:  # the store's layered section: shared too
        return section.derive()
    return dict(section)


def final_shapes(plan: Plan, running_shapes: bool) -> bool:
    """Whether the plan's final state may ask for shaping, from whether the
    running configuration does (``LiveNetinfo.running_shapes``, tracked from
    one configuration to the next) and the networks the plan adds: without
    QoS on the host, a change costs no walk over its networks. True when the
    running configuration shapes (a removal may end it: the configurator
    looks then)."""
    return running_shapes or any(
        op["op"] == "add_network" and shaping(op["attrs"]) for op in plan.operations
    )
