"""A host configured by the ifcfg configurator with ``[ifcfg] apply = nm``,
for real: NetworkManager 1.42 built with the ifcfg-rh plugin
(``tests/tools/build_nm_ifcfg.sh``) on a private bus in the test's
namespace (``nm_lab``), reading the test's ifcfg folder, which is
bind-mounted over the plugin's own folder in NetworkManager's mount
namespace (``[ifcfg] nm_dir`` tells netreload that path).

netreload runs as ``superd.oneshot`` under ``ip netns exec`` (the core
superd serves: plan, apply, verify, roll back), with a configuration whose
paths all live in the test's temporary folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.functional.agent import Agent
from tests.functional.conftest import HostNs
from tests.functional.nm_lab import TIMEOUT, NmLab, why_no_nm

PREFIX = Path(os.environ.get("NETRELOAD_NM_IFCFG_PREFIX", "/var/cache/netreload/nm-ifcfg-rh-1.42"))
NM_BINARY = PREFIX / "sbin" / "NetworkManager"
NMCLI = PREFIX / "bin" / "nmcli"
LIBDIR = PREFIX / "lib" / "x86_64-linux-gnu"
PLUGIN_DIR = PREFIX / "etc" / "sysconfig" / "network-scripts"


def why_no_ifcfg_nm() -> str | None:
    """Why these tests cannot run here (None: they can)."""
    if not (PREFIX / ".built").exists():
        return f"no ifcfg-rh NetworkManager in {PREFIX} (make nm-ifcfg builds it)"
    return why_no_nm(str(NM_BINARY))


def ifcfg_nm_lab(host: HostNs, root: Path, scripts: Path) -> NmLab:
    scripts.mkdir(parents=True, exist_ok=True)
    return NmLab(
        host.name,
        root,
        binary=str(NM_BINARY),
        plugins=("ifcfg-rh",),
        binds={scripts: PLUGIN_DIR},
        env={"LD_LIBRARY_PATH": str(LIBDIR)},
        nmcli=str(NMCLI),
    )


@dataclass
class IfcfgAgent(Agent):
    """netreload with ``net_configurator = ifcfg`` on the lab's bus."""

    bus: str = ""
    configurator: str = "ifcfg"
    persistence: str = "unified"

    @property
    def scripts(self) -> Path:
        return self.root / "network-scripts"

    def write_config(self) -> None:
        (self.root / "run").mkdir(parents=True, exist_ok=True)
        (self.root / "lib").mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            f"[vars]\nnet_configurator = {self.configurator}\n"
            f"net_persistence = {self.persistence}\n"
            "fake_nics = veth_*,dummy_*\n"
            f"[paths]\nrun_dir = {self.root / 'run'}\nlib_dir = {self.root / 'lib'}\n"
            f"resolv_conf = {self.root / 'resolv.conf'}\n"
            f"[ifcfg]\ndir = {self.scripts}\nnm_dir = {PLUGIN_DIR}\napply = nm\n"
            f"[nm]\nbus = {self.bus}\ntimeout = {TIMEOUT}\n"
        )

    def files(self) -> dict[str, str]:
        if not self.scripts.is_dir():
            return {}
        return {p.name: p.read_text() for p in sorted(self.scripts.iterdir())}


@contextmanager
def serving(host: HostNs, root: Path, agent: IfcfgAgent) -> Iterator[NmLab]:
    """The ifcfg-rh NetworkManager running for ``agent``, whose configuration
    is written with the lab's bus; stopped afterwards."""
    lab = ifcfg_nm_lab(host, root, agent.scripts)
    lab.start()
    try:
        agent.bus = lab.address
        agent.write_config()
        yield lab
    finally:
        lab.stop()


@contextmanager
def running_ifcfg_agent(host: HostNs, root: Path) -> Iterator[IfcfgAgent]:
    """An IfcfgAgent with its NetworkManager running (the test is skipped
    where the ifcfg-rh build is missing)."""
    if why_no_ifcfg_nm() is not None:
        pytest.skip(str(why_no_ifcfg_nm()))
    agent = IfcfgAgent(host, root / "agent")
    with serving(host, root / "nm", agent) as lab:
        agent.nm = lab  # type: ignore[attr-defined]
        yield agent
