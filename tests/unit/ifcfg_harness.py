"""Drives the ifcfg configurator without a kernel: ``[ifcfg] apply =
initscripts`` with ifup/ifdown recorded instead of run (Debian has no
network-scripts), files in a temporary folder."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from configurators.ifcfg import IfcfgConfigurator
from configurators.ifcfg_apply import InitscriptsApplier
from shared.config import Config
from shared.netmodel.bond import Bond
from shared.netmodel.canonical import canonicalize_bond, canonicalize_network
from shared.netmodel.device import DEFAULT_MTU
from shared.netmodel.network import Network, build_network


class Recorder:
    """ifup/ifdown as a list of command lines; ``fail`` makes one fail."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.fail: set[str] = set()

    def __call__(self, argv: Sequence[str], timeout: float) -> tuple[int, str]:
        line = " ".join(argv)
        self.commands.append(line)
        return (1, "injected failure") if line in self.fail else (0, "")


def configurator(
    tmp: Path, apply: str = "initscripts", persistence: str = "unified"
) -> tuple[IfcfgConfigurator, Recorder]:
    config = Config(
        net_configurator="ifcfg",
        net_persistence=persistence,
        lib_dir=tmp / "lib",
        run_dir=tmp / "run",
        ifcfg_dir=tmp / "network-scripts",
        ifcfg_apply=apply,
        ifcfg_ifup=Path("/sbin/ifup"),
        ifcfg_ifdown=Path("/sbin/ifdown"),
    )
    recorder = Recorder()
    applier = InitscriptsApplier("/sbin/ifup", "/sbin/ifdown", run=recorder)
    return IfcfgConfigurator(config, None, applier), recorder


def model(request: Mapping) -> tuple[dict[str, Bond], dict[str, Network]]:
    """Bonds and networks of a request ({"networks": …, "bonds": …}), with
    each NIC's or bond's MTU the largest of its networks' (as the plan does)."""
    nets = {n: canonicalize_network(n, a) for n, a in request.get("networks", {}).items()}
    bonds = {n: canonicalize_bond(n, a) for n, a in request.get("bonds", {}).items()}
    lower_mtu: dict[str, int] = {}
    for attrs in nets.values():
        lower = attrs.get("nic") or attrs.get("bonding")
        if lower:
            lower_mtu[lower] = max(lower_mtu.get(lower, 0), attrs.get("mtu", DEFAULT_MTU))
    bond_models = {
        n: Bond.from_attrs(n, a, lower_mtu.get(n, DEFAULT_MTU)) for n, a in bonds.items()
    }
    networks = {
        name: build_network(
            name,
            attrs,
            lower_mtu.get(attrs.get("nic") or attrs.get("bonding") or "", None),
            bonds.get(attrs.get("bonding", "")),
        )
        for name, attrs in nets.items()
    }
    return bond_models, networks


def apply(conf: IfcfgConfigurator, request: Mapping) -> None:
    """One transaction: bonds, then networks, as a plan orders them."""
    bonds, networks = model(request)
    conf.begin()
    for bond in bonds.values():
        conf.create_bond(bond)
    for network in networks.values():
        conf.add_network(network, network.top.mtu, False)
    conf.flush()
    conf.commit()


def remove(conf: IfcfgConfigurator, request: Mapping) -> None:
    """One transaction: the request's networks, then its bonds, removed."""
    bonds, networks = model(request)
    conf.begin()
    for network in networks.values():
        conf.remove_network(network)
    for bond in bonds.values():
        conf.delete_bond(bond)
    conf.flush()
    conf.commit()


def files(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.iterdir())} if folder.is_dir() else {}
