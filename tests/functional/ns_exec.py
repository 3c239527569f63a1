"""Call the iproute2 configurator inside a namespace, from JSON.

    ip netns exec NS <venv python> -m tests.functional.ns_exec \\
        [--resolv-conf PATH] '<json list of calls>'

run from the repository root. Each call is ``{"call": METHOD, ...}`` with
the method's arguments as keys:

* ``setup_nic``, ``release_nic``, ``create_bond``, ``delete_bond``,
  ``create_vlan``, ``delete_vlan``, ``create_bridge``, ``delete_bridge``:
  ``"device"``;
* ``modify_bond``: ``"device"`` and ``"old"`` (a device or null);
* ``set_mtu``: ``"device"`` (a name) and ``"mtu"``;
* ``set_ip``: ``"device"`` (a name), ``"ip"`` and optionally ``"previous"``;
  ``clear_ip``: ``"device"`` and ``"ip"``;
* ``read_device``: ``"device"`` (a name).

A device is ``{"kind": "nic"|"bond"|"vlan"|"bridge", "name": ..., "mtu":
...}`` plus ``slaves``/``options``/``hwaddr`` (bond), ``tag``/``lower``
(VLAN; ``lower`` is a device), ``port``/``stp``/``forward_delay`` (bridge,
``port`` a device or null) and ``ip``. An IP configuration is given in the
network attributes of the API (``ipaddr``, ``netmask``, ``gateway``,
``defaultRoute``, ``ipv6addr``, ``ipv6gateway``, ``ipv6autoconf``,
``dhcpv6``, ``bootproto``, ``nameservers``).

Prints ``{"results": [...]}`` (one entry per call; ``read_device``'s dict,
null for the others) and exits 0, or ``{"code", "message", "call"}`` (the
index of the failed call) and exits 1.

Tests that need a few lines of Python run in a namespace (a netlink socket
of the namespace's own, say) call :func:`run_json` instead.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from configurators.iproute2 import Iproute2Configurator
from shared.config import Config
from shared.errors import NetError
from shared.netmodel.bond import Bond
from shared.netmodel.bridge import Bridge
from shared.netmodel.device import NetDevice
from shared.netmodel.ipconfig import IpConfig
from shared.netmodel.nic import Nic
from shared.netmodel.vlan import Vlan

REPO = Path(__file__).resolve().parents[2]


def run_json(ns: str, script: str, *args: str, timeout: float = 60) -> Any:
    """Runs ``script`` (Python source, given ``args`` as ``sys.argv[1:]``) in
    namespace ``ns`` from the repository root, and returns the JSON it
    printed. A script that fails fails the test with its stderr."""
    proc = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", script, *args],
        capture_output=True, text=True, timeout=timeout, cwd=REPO,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def ip_config(attrs: dict | None) -> IpConfig | None:
    return None if attrs is None else IpConfig.from_attrs(attrs)


def device(spec: dict | None) -> NetDevice | None:
    if spec is None:
        return None
    common = {
        "name": spec["name"],
        "mtu": spec.get("mtu", 1500),
        "ip": ip_config(spec.get("ip")),
    }
    kind = spec["kind"]
    if kind == "nic":
        return Nic(**common)
    if kind == "bond":
        return Bond(
            slaves=tuple(spec.get("slaves", ())),
            options=spec.get("options", ""),
            hwaddr=spec.get("hwaddr"),
            **common,
        )
    if kind == "vlan":
        return Vlan(tag=spec["tag"], device=device(spec["lower"]), **common)
    if kind == "bridge":
        return Bridge(
            port=device(spec.get("port")),
            stp=spec.get("stp", False),
            forward_delay=spec.get("forward_delay", 0),
            **common,
        )
    raise ValueError(f"unknown device kind {kind!r}")


def call(configurator: Iproute2Configurator, spec: dict) -> Any:
    method = spec["call"]
    if method == "set_mtu":
        return configurator.set_mtu(spec["device"], spec["mtu"])
    if method == "set_ip":
        return configurator.set_ip(
            spec["device"], ip_config(spec["ip"]), ip_config(spec.get("previous"))
        )
    if method == "clear_ip":
        return configurator.clear_ip(spec["device"], ip_config(spec["ip"]))
    if method == "read_device":
        return configurator.read_device(spec["device"])
    if method == "modify_bond":
        return configurator.modify_bond(device(spec["device"]), device(spec.get("old")))
    if method in {
        "setup_nic",
        "release_nic",
        "create_bond",
        "delete_bond",
        "create_vlan",
        "delete_vlan",
        "create_bridge",
        "delete_bridge",
    }:
        return getattr(configurator, method)(device(spec["device"]))
    raise ValueError(f"unknown call {method!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.functional.ns_exec")
    parser.add_argument("--resolv-conf", default="/nonexistent/resolv.conf")
    parser.add_argument("calls", help="JSON list of calls")
    args = parser.parse_args(argv)
    config = Config(resolv_conf=Path(args.resolv_conf), fake_nics=("dummy_*", "veth_*"))
    configurator = Iproute2Configurator(config)
    results = []
    try:
        for index, spec in enumerate(json.loads(args.calls)):
            try:
                results.append(call(configurator, spec))
            except NetError as error:
                print(json.dumps({**error.to_dict(), "call": index}))
                return 1
    finally:
        configurator.close()
    print(json.dumps({"results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
