"""A private Open vSwitch for one test: ovsdb-server + ovs-vswitchd in userspace.

Every runtime path (OVS_RUNDIR, OVS_DBDIR, OVS_LOGDIR, OVS_SYSCONFDIR) is
under the test's temporary folder, and ovs-vswitchd runs inside the test's
namespace, so the tap devices of its ``netdev`` datapath stay there (they
outlive the daemon; deleting the namespace removes them). Both daemons are
stopped by their pid files at the end, also on failure.

Read-backs go through ``ovs-vsctl`` / ``ovs-appctl`` — the tools an
operator would use — never through netreload's own code.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")


def why_no_ovs() -> str | None:
    for tool in ("ovsdb-server", "ovs-vswitchd", "ovsdb-tool", "ovs-vsctl", "ovs-appctl"):
        if shutil.which(tool) is None:
            return f"Open vSwitch is not installed ({tool} missing)"
    if not SCHEMA.exists():
        return f"Open vSwitch schema {SCHEMA} missing"
    return None


class OvsLab:
    def __init__(self, netns: str, root: Path) -> None:
        self.netns, self.root = netns, root
        self.dirs = {k: root / k for k in ("run", "db", "log", "etc")}
        self.env = {
            **os.environ,
            "OVS_RUNDIR": str(self.dirs["run"]),
            "OVS_DBDIR": str(self.dirs["db"]),
            "OVS_LOGDIR": str(self.dirs["log"]),
            "OVS_SYSCONFDIR": str(self.dirs["etc"]),
        }
        self.socket = self.dirs["run"] / "db.sock"

    @property
    def remote(self) -> str:
        return f"unix:{self.socket}"

    def _run(self, *argv: str, check: bool = True, timeout: float = 60) -> str:
        proc = subprocess.run(argv, env=self.env, capture_output=True, text=True,
                              timeout=timeout)  # fmt: skip
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip()}")
        return proc.stdout

    def start(self) -> None:
        for folder in self.dirs.values():
            folder.mkdir(parents=True, exist_ok=True)
        db = self.dirs["db"] / "conf.db"
        try:
            self._run("ovsdb-tool", "create", str(db), str(SCHEMA))
            self._run("ovsdb-server", str(db), f"--remote=punix:{self.socket}",
                      "--pidfile", "--detach", "--log-file")  # fmt: skip
            self.vsctl("--no-wait", "init")
            self.start_vswitchd()
        except BaseException:
            self.stop()
            raise

    def start_vswitchd(self) -> None:
        self._run("ip", "netns", "exec", self.netns, "ovs-vswitchd", self.remote,
                  "--pidfile", "--detach", "--log-file")  # fmt: skip

    def stop_vswitchd(self) -> None:
        self._kill("ovs-vswitchd")

    def stop(self) -> None:
        self._kill("ovs-vswitchd")
        self._kill("ovsdb-server")

    def __enter__(self) -> OvsLab:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _kill(self, daemon: str) -> None:
        pidfile = self.dirs["run"] / f"{daemon}.pid"
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)

    # -- read-backs --------------------------------------------------------
    def vsctl(self, *args: str) -> str:
        return self._run("ovs-vsctl", f"--db={self.remote}", "--timeout=20", *args)

    def appctl(self, *args: str) -> str:
        target = str(self.dirs["run"] / "ovs-vswitchd.ctl")
        pidfile = self.dirs["run"] / "ovs-vswitchd.pid"
        if pidfile.exists():
            target = str(self.dirs["run"] / f"ovs-vswitchd.{pidfile.read_text().strip()}.ctl")
        return self._run("ovs-appctl", "-t", target, *args)

    def table(self, table: str, columns: str) -> list[dict[str, Any]]:
        """``ovs-vsctl list TABLE`` of ``columns`` as dicts (JSON format)."""
        out = self.vsctl("--format=json", f"--columns={columns}", "list", table)
        data = json.loads(out)
        return [dict(zip(data["headings"], row, strict=True)) for row in data["data"]]

    def config_snapshot(self) -> dict:
        """What netreload writes, with row identities: for exact comparisons."""
        return {
            "show": self.vsctl("show").split("\n", 1)[1],  # minus the db's uuid
            "Bridge": sorted(json.dumps(r, sort_keys=True) for r in self.table(
                "Bridge", "_uuid,name,ports,datapath_type,stp_enable,external_ids")),
            "Port": sorted(json.dumps(r, sort_keys=True) for r in self.table(
                "Port", "_uuid,name,interfaces,tag,bond_mode,lacp,external_ids")),
            "Interface": sorted(json.dumps(r, sort_keys=True) for r in self.table(
                "Interface", "_uuid,name,type,mtu_request,external_ids")),
        }  # fmt: skip

    def transactions(self, comment: str) -> int:
        """How many transactions in the database log carry ``comment``."""
        log = self._run("ovsdb-tool", "show-log", str(self.dirs["db"] / "conf.db"))
        return log.count(comment)

    def ports(self, bridge: str) -> set[str]:
        return set(self.vsctl("list-ports", bridge).split())

    def bridges(self) -> set[str]:
        return set(self.vsctl("list-br").split())
