"""Host network QoS (a network's ``hostQos``) as HFSC, described as data.

Pure: validation, class ids, the translation of the engine's curves into
the kernel's units, the wanted tree of each device and its comparison with
what the kernel holds. ``configurators.tc_hfsc`` reads and writes the
kernel (netlink); nothing here does.

What the engine sends (its Host Network QoS; outbound only)::

    "hostQos": {"out": {"ls": {"m2": 50},
                        "ul": {"m2": 100000000},
                        "rt": {"m1": 0, "d": 0, "m2": 20000000}}}

Three HFSC service curves, each two slopes: ``m1`` for the first ``d``
microseconds (a burst), then ``m2``. ``ul`` (upper limit) and ``rt``
(real time) are rates in bits per second; ``ls`` (link share) is a
relative weight among the classes of one device (the engine sends 1..100).
The kernel keeps every slope in bytes per second (a u32) and ``d`` in
microseconds (a u32): a rate in bits per second is divided by 8 (rounded
down, as tc does), and a link-share weight is used as bytes per second as
it is, so that it reads back exactly (tc would print it as ``8*weight`` bit).

The tree on a network's NIC or bond (its ``southbound`` lower device):

* root qdisc ``hfsc``, handle ``ROOT_MAJOR:`` (netreload's mark: a root
  qdisc with another handle is another agent's, never replaced), default
  class ``ROOT_MAJOR:DEFAULT_MINOR``;
* one class per network with ``hostQos``, minor = its VLAN tag, or
  ``DEFAULT_MINOR`` for the untagged network (which thus is the default
  class: its traffic is what no VLAN filter takes);
* without an untagged network asking for QoS, a default class of its own,
  link share only: the largest ``ls.m2`` of the device's classes;
* per tagged class a ``basic`` filter ``meta(vlan_tag eq TAG)`` at
  preference TAG sending the VLAN's frames to it;
* under every class an ``fq_codel`` leaf qdisc (handle ``minor:``), for
  fairness between the flows of one class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from shared.errors import ErrorCode, NetError
from shared.netmodel.values import to_dict, to_int

U32_MAX = 2**32 - 1
ROOT_MAJOR = 0x1389  # 5001
DEFAULT_MINOR = 0x1388  # 5000: above every VLAN tag (0..4094)
BITS_PER_BYTE = 8
LEAF_QDISC = "fq_codel"


@dataclass(frozen=True, slots=True)
class CurveKind:
    """One of the three service curves of ``hostQos.out``."""

    name: str  # the engine's key
    netlink: str  # pyroute2's keyword for its TCA_HFSC_* attribute
    unit: str  # what m1/m2 are, as sent
    help: str
    min_rate: int  # the smallest m2 (and non-zero m1) accepted, in the sent unit
    max_rate: int  # the largest m1/m2 accepted, in the sent unit

    def to_kernel(self, rate: int) -> int:
        """A slope as the kernel keeps it: bytes per second."""
        return rate if self.name == "ls" else rate // BITS_PER_BYTE

    def from_kernel(self, rate: int) -> int:
        return rate if self.name == "ls" else rate * BITS_PER_BYTE


CURVES: Mapping[str, CurveKind] = MappingProxyType(
    {
        "ls": CurveKind(
            "ls", "fsc", "a relative weight",
            "link share: the class's share of the device when classes compete"
            " (the engine sends 1..100)",
            1, U32_MAX,
        ),
        "ul": CurveKind(
            "ul", "usc", "bits per second",
            "upper limit: a cap on the class's traffic (needs ls)",
            BITS_PER_BYTE, U32_MAX * BITS_PER_BYTE,
        ),
        "rt": CurveKind(
            "rt", "rsc", "bits per second",
            "real time: a rate guaranteed to the class whatever the others"
            " send (at most ul)",
            BITS_PER_BYTE, U32_MAX * BITS_PER_BYTE,
        ),
    }
)  # fmt: skip

#: the attributes of one curve: (help, unit)
CURVE_KEYS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "m1": ("slope of the first segment (the burst); needs d", "the curve's unit"),
        "d": ("length of the first segment; needs m1", "microseconds"),
        "m2": ("slope of the second segment (the sustained rate); required", "the curve's unit"),
    }
)
HOST_QOS_KEYS = frozenset({"out"})

# A curve in kernel units: (m1 bytes/s, d µs, m2 bytes/s).
KernelCurve = tuple[int, int, int]


def _bad(message: str) -> NetError:
    return NetError(ErrorCode.BAD_PARAMS, message)


def _curve(kind: CurveKind, value: object, what: str) -> dict[str, int]:
    what = f"{what}.{kind.name}"
    curve = to_dict(value, what)
    unknown = sorted(str(k) for k in curve if k not in CURVE_KEYS)
    if unknown:
        raise _bad(f"{what}: unknown key(s) {', '.join(repr(k)[:20] for k in unknown[:5])};"
                   f" a curve has {', '.join(CURVE_KEYS)}")  # fmt: skip
    if "m2" not in curve:
        raise _bad(f"{what}: m2 ({kind.unit}) is required")
    if ("m1" in curve) != ("d" in curve):
        raise _bad(f"{what}: m1 and d go together (a burst of m1 for d microseconds)")
    out = {"m2": to_int(curve["m2"], f"{what}.m2", kind.min_rate, kind.max_rate)}
    if "m1" in curve:
        m1 = to_int(curve["m1"], f"{what}.m1", 0, kind.max_rate)
        if 0 < m1 < kind.min_rate:
            raise _bad(f"{what}.m1: {m1} is below {kind.min_rate} {kind.unit}")
        out["m1"] = m1
        out["d"] = to_int(curve["d"], f"{what}.d", 0, U32_MAX)
    return out


def canonical_host_qos(value: object, what: str) -> dict:
    """The network's ``hostQos`` checked and in canonical form (integers,
    only the keys given), or a NetError(21) naming the curve and key.

    Refused: keys other than ``out``; curves other than ``ls``, ``ul``,
    ``rt``; keys other than ``m1``, ``d``, ``m2``; a missing ``m2``; ``m1``
    without ``d`` or the reverse; negative or non-integer values, values the
    kernel's u32 cannot hold; ``ul`` without ``ls`` (HFSC caps link sharing:
    an upper limit alone would never apply); ``rt.m2`` above ``ul.m2`` (a
    guarantee above the cap). An empty ``hostQos`` or ``out`` asks for no
    shaping."""
    what = f"{what}: hostQos"
    qos = to_dict(value, what)
    unknown = sorted(str(k) for k in qos if k not in HOST_QOS_KEYS)
    if unknown:
        raise _bad(f"{what}: unknown key(s) {', '.join(repr(k)[:20] for k in unknown[:5])};"
                   " only 'out' (outbound) is supported")  # fmt: skip
    if "out" not in qos:
        return {}
    out = to_dict(qos["out"], f"{what}.out")
    unknown = sorted(str(k) for k in out if k not in CURVES)
    if unknown:
        raise _bad(f"{what}.out: unknown curve(s) {', '.join(repr(k)[:20] for k in unknown[:5])};"
                   f" the curves are {', '.join(CURVES)}")  # fmt: skip
    curves = {n: _curve(CURVES[n], out[n], f"{what}.out") for n in CURVES if n in out}
    if not curves:
        return {"out": {}}
    if "ls" not in curves:
        raise _bad(f"{what}.out: ls (link share) is required with ul or rt")
    if "ul" in curves and "rt" in curves and curves["rt"]["m2"] > curves["ul"]["m2"]:
        raise _bad(
            f"{what}.out: rt.m2 {curves['rt']['m2']} is above ul.m2 {curves['ul']['m2']}:"
            " the upper limit must not be below the real-time rate"
        )
    return {"out": curves}


def shaping(attrs: Mapping) -> dict | None:
    """The curves of a canonical network's ``hostQos.out``, or None."""
    out = (attrs.get("hostQos") or {}).get("out")
    return out or None


def class_minor(vlan: int | None) -> int:
    """The class of a network on its device: its VLAN tag, or the default
    class for the untagged one."""
    return DEFAULT_MINOR if vlan is None else vlan


def kernel_curve(kind: str, curve: Mapping[str, int]) -> KernelCurve:
    k = CURVES[kind]
    return (k.to_kernel(curve.get("m1", 0)), curve.get("d", 0), k.to_kernel(curve["m2"]))


def engine_curve(kind: str, curve: KernelCurve) -> dict[str, int]:
    """A curve read from the kernel, in the engine's units (for the
    capabilities: ``m1`` and ``d`` only when there is a burst)."""
    k = CURVES[kind]
    m1, d, m2 = curve
    out = {"m2": k.from_kernel(m2)}
    if m1 or d:
        out.update(m1=k.from_kernel(m1), d=d)
    return out


@dataclass(frozen=True)
class DeviceQos:
    """The HFSC tree of one device: {class minor: {curve: KernelCurve}}
    and {VLAN tag: class minor} filters."""

    classes: Mapping[int, Mapping[str, KernelCurve]] = field(default_factory=dict)
    filters: Mapping[int, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "classes": {f"{m:x}": {k: list(c) for k, c in sorted(cs.items())}
                        for m, cs in sorted(self.classes.items())},
            "filters": {str(t): f"{m:x}" for t, m in sorted(self.filters.items())},
        }  # fmt: skip


def wanted_trees(networks: Mapping[str, Mapping]) -> dict[str, DeviceQos]:
    """{NIC or bond: its tree} for the legacy networks of a running
    configuration that ask for shaping (canonical attributes)."""
    per_device: dict[str, dict[int, dict[str, KernelCurve]]] = {}
    for attrs in networks.values():
        out = shaping(attrs)
        lower = attrs.get("nic") or attrs.get("bonding")
        if out is None or lower is None or attrs.get("switch", "legacy") != "legacy":
            continue
        curves = {kind: kernel_curve(kind, curve) for kind, curve in out.items()}
        per_device.setdefault(lower, {})[class_minor(attrs.get("vlan"))] = curves
    trees = {}
    for device, classes in per_device.items():
        if DEFAULT_MINOR not in classes:
            share = max(curves["ls"][2] for curves in classes.values())
            classes[DEFAULT_MINOR] = {"ls": (0, 0, share)}
        filters = {minor: minor for minor in classes if minor != DEFAULT_MINOR}
        trees[device] = DeviceQos(classes, filters)
    return trees


def devices_to_change(
    wanted: Mapping[str, DeviceQos], current: Mapping[str, DeviceQos | None]
) -> tuple[list[str], list[str]]:
    """(devices whose tree must be (re)built, devices whose tree of
    netreload's must go). ``current`` maps each device to the tree of
    netreload's it holds (None: no tree of netreload's), for the devices of
    ``wanted`` and every device holding one of netreload's trees."""
    build = sorted(d for d, tree in wanted.items() if current.get(d) != tree)
    drop = sorted(d for d, tree in current.items() if tree is not None and d not in wanted)
    return build, drop


def reported_host_qos(attrs: Mapping, tree: DeviceQos | None) -> dict | None:
    """A network's ``hostQos`` as the kernel holds it (the engine's units),
    for the capabilities: its class on its device's tree of netreload's;
    None when there is none. The default class of a device whose untagged
    network asks for no QoS is no network's."""
    if tree is None:
        return None
    vlan = attrs.get("vlan")
    if vlan is None and not shaping(attrs):
        return None
    curves = tree.classes.get(class_minor(vlan))
    if not curves:
        return None
    return {"out": {kind: engine_curve(kind, c) for kind, c in sorted(curves.items())}}
