"""What the live netinfo's functional tests (``test_live_netinfo``,
``test_monitor_batches``) share: a configuration for a monitor, ``ip
-force -batch`` into its namespace, a monitor watching a namespace from
this process, and one link's IPv6 autoconf as the monitor holds it. Their
namespace is conftest's ``host`` fixture."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute

from shared.config import Config, load_config
from superd.monitor import LiveNetinfo


def monitor_config(root: Path) -> Config:
    """An iproute2 configuration (veth_* as NICs) with its files under ``root``."""
    (root / "run").mkdir(exist_ok=True)
    (root / "lib").mkdir(exist_ok=True)
    (root / "resolv.conf").write_text("nameserver 192.0.2.53\n")
    text = (
        "[vars]\nnet_configurator = iproute2\nfake_nics = veth_*\n"
        f"[paths]\nrun_dir = {root / 'run'}\nlib_dir = {root / 'lib'}\n"
        f"resolv_conf = {root / 'resolv.conf'}\n"
    )
    (root / "netreload.conf").write_text(text)
    return load_config(root / "netreload.conf")


def force_batch(ns: str, commands: list[str]) -> None:
    """``ip -force -batch``: a command that fails (random ones do) is skipped."""
    subprocess.run(["ip", "-n", ns, "-force", "-batch", "-"], input="\n".join(commands) + "\n",
                   capture_output=True, text=True, timeout=120)  # fmt: skip


@contextlib.contextmanager
def watching(ns: str, config: Config, **kwargs: Any) -> Iterator[tuple[LiveNetinfo, Any]]:
    """A monitor watching ``ns`` from here, and a request socket there."""
    live = LiveNetinfo(config, netns=ns, **kwargs)
    live.start()
    try:
        with IPRoute(netns=ns, flags=0) as ipr:
            yield live, ipr
    finally:
        live.close()


def autoconf(live: LiveNetinfo, name: str) -> int | None:
    """Link ``name``'s ``net.ipv6.conf.*.autoconf`` in the monitor's state."""
    link = next(x for x in live.snapshot().links.values() if x["name"] == name)
    return (link.get("ipv6conf") or {}).get("autoconf")
