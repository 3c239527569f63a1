"""Drive netreload's setupNetworks core inside a test namespace.

Every call runs ``python -m superd.oneshot`` under ``ip netns exec`` with a
configuration whose paths all live in the test's temporary folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.functional.conftest import HostNs, ip_json
from tests.functional.nm_lab import TIMEOUT as NM_TIMEOUT


@dataclass
class Agent:
    host: HostNs
    root: Path
    #: ``[vars] net_configurator``; for ``nm``, ``nm_bus`` is the private bus
    #: of the test's NetworkManager (``tests.functional.nm_lab``)
    configurator: str = "iproute2"
    nm_bus: str = ""

    @property
    def config_path(self) -> Path:
        return self.root / "netreload.conf"

    def write_config(self) -> None:
        (self.root / "run").mkdir(parents=True, exist_ok=True)
        (self.root / "lib").mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            f"[vars]\nnet_configurator = {self.configurator}\nnet_persistence = unified\n"
            "fake_nics = veth_*,dummy_*\n"
            f"[paths]\nrun_dir = {self.root / 'run'}\nlib_dir = {self.root / 'lib'}\n"
            f"resolv_conf = {self.root / 'resolv.conf'}\n"
            + (f"[nm]\nbus = {self.nm_bus}\ntimeout = {NM_TIMEOUT}\n" if self.nm_bus else "")
        )

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Any:
        proc = subprocess.run(
            ["ip", "netns", "exec", self.host.name, sys.executable, "-m", "superd.oneshot",
             "--config", str(self.config_path), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            cwd=Path(__file__).resolve().parents[2],
        )  # fmt: skip
        if not proc.stdout.strip():
            raise AssertionError(f"oneshot printed nothing; stderr:\n{proc.stderr}")
        return json.loads(proc.stdout)

    def setup(
        self,
        networks: dict,
        bondings: dict | None = None,
        options: dict | None = None,
        env: dict[str, str] | None = None,
    ) -> dict:
        request = {"networks": networks, "bondings": bondings or {}, "options": options or {}}
        path = self.root / "request.json"
        path.write_text(json.dumps(request))
        return self.run("setup", str(path), env=env)

    def caps(self) -> dict:
        return self.run("caps")

    def running(self) -> dict:
        tree = self.root / "run" / "netconf"
        return {
            kind: {p.name: json.loads(p.read_text()) for p in sorted((tree / kind).glob("*"))}
            for kind in ("nets", "bonds")
        }

    def kernel_state(self) -> dict:
        """Links, addresses and routes, normalized for before/after comparison."""
        links = {
            link["ifname"]: (link.get("mtu"), link.get("master"), "UP" in link.get("flags", []))
            for link in ip_json(self.host.name, "link", "show")
        }
        addrs = sorted(
            (a["ifname"], i["local"], i["prefixlen"])
            for a in ip_json(self.host.name, "addr", "show")
            for i in a.get("addr_info", [])
            if not i["local"].startswith("fe80")
        )
        routes = sorted(
            json.dumps(r, sort_keys=True)
            for family in ("-4", "-6")
            for r in ip_json(self.host.name, family, "route", "show", "table", "all")
            if not r.get("dst", "").startswith("fe80") and r.get("type") != "multicast"
        )
        return {"links": links, "addrs": addrs, "routes": routes}
