"""``make demo``: netreload's main job, end to end, in throw-away namespaces.

A host namespace with two veth NICs and an engine namespace with their
peers; a test CA and certificates; superd (root) and frontd (dropped to
``nobody``) in the host namespace; stomp.py in the engine namespace driving
them with JSON-RPC over STOMP 1.2 / mutual TLS, as the management engine
does. It sets up a bridged network with a static address and the default
route, shows the capabilities, shows a change that loses connectivity being
rolled back, persists, simulates a reboot and restores. Everything is
removed at the end, also on failure or Ctrl-C. Needs root.
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from demo.engine import Engine
from demo.lab import (
    ENGINE_CONTROL_IP,
    HOST_CONTROL_IP,
    SOURCE_ROOT,
    STOMP_PORT,
    Lab,
    netreload_command,
)
from demo.lab import MGMT_NET as NET
from demo.lab import MGMT_NET_ATTRS as NET_ATTRS
from frontd.render import render_caps

SCRATCH_ATTRS = {"bridged": True, "ipaddr": "203.0.113.5", "prefix": 24}
PING = 0.2

_step = 0


def heading(title: str) -> None:
    global _step
    _step += 1
    print(f"\n==> {_step}. {title}", flush=True)


def say(text: str = "") -> None:
    print(text, flush=True)


def indent(text: str, prefix: str = "    ") -> str:
    return "\n".join(prefix + line if line else line for line in text.rstrip().splitlines())


def request(networks: dict, timeout: int = 5) -> dict:
    return {
        "networks": networks,
        "bondings": {},
        "options": {"connectivityCheck": True, "connectivityTimeout": timeout},
    }


def show_kernel(lab: Lab) -> None:
    say(f"  $ ip -n {lab.host_ns} -br addr   (link-local addresses left out)")
    for line in lab.ip("-br", "-4", "addr").splitlines():
        say("    " + line.rstrip())
    say(f"  $ ip -n {lab.host_ns} route")
    say(indent(lab.ip("route") or "(no routes)"))


def show_answer(answer: dict) -> None:
    shown = {k: v for k, v in answer.items() if k in ("result", "error")}
    extra = f" after {answer['seconds']} s"
    if answer.get("pings"):
        extra += f", {answer['pings']} Host.ping2 sent meanwhile"
    say(f"  answer: {json.dumps(shown)}{extra}")


def setup_networks(engine: Engine, networks: dict, ping: bool, timeout: int = 5) -> dict:
    params = request(networks, timeout)
    say(f"  engine → Host.setupNetworks {json.dumps(params)}")
    answer = engine.call("Host.setupNetworks", params, ping=PING if ping else 0.0)
    show_answer(answer)
    return answer


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise RuntimeError(f"unexpected: {what}")


def show_proc(lab: Lab, name: str, proc: subprocess.Popen | None) -> None:
    assert proc is not None
    lines = Path(f"/proc/{proc.pid}/status").read_text().splitlines()
    status = dict(line.split(":", 1) for line in lines)
    uid = int(status["Uid"].split()[0])
    say(
        f"  {name}: pid {proc.pid}, user {pwd.getpwuid(uid).pw_name}, "
        f"effective capabilities {status['CapEff'].strip()}"
    )


def run_demo(lab: Lab) -> None:
    heading("Build the lab: a host and an engine network namespace, a test CA")
    lab.setup()
    say(f"  host namespace {lab.host_ns}: NICs {', '.join(lab.nics)}")
    say(f"  engine namespace {lab.engine_ns}: their peers p_0, p_1")
    say(
        f"  control path (set out of band, as an installer would): "
        f"veth_1 {HOST_CONTROL_IP}/24 ↔ p_1 {ENGINE_CONTROL_IP}/24"
    )
    say(f"  CA, host and engine certificates: {lab.pki}")
    show_kernel(lab)

    heading("Start superd (root) and frontd (drops to nobody) in the host namespace")
    lab.start()
    show_proc(lab, "superd", lab.superd)
    show_proc(lab, "frontd", lab.frontd)

    heading(f"The engine (stomp.py) connects to {HOST_CONTROL_IP}:{STOMP_PORT}: STOMP 1.2 over TLS")
    engine = lab.engine()
    answer = engine.call("Host.ping2")
    say("  engine → Host.ping2")
    show_answer(answer)

    heading(f"Set up {NET}: bridged on veth_0, static 198.51.100.10/24, default route")
    say("  the engine keeps pinging during the connectivity check, which proves it still")
    say("  reaches the host")
    answer = setup_networks(engine, {NET: NET_ATTRS}, ping=True)
    expect(answer.get("result", {}).get("code") == 0, f"setupNetworks failed: {answer}")
    show_kernel(lab)
    events = [event["method"] for event in engine.events()]
    say(f"  events the engine got on jms.queue.events: {events}")

    heading("Host.getNetworkCapabilities, as the engine sees them")
    say(indent(render_caps(engine.result("Host.getNetworkCapabilities"))))

    heading(f"A change that loses connectivity: {NET} to 198.51.100.20, the engine stays silent")
    before = lab.ip("-br", "-4", "addr") + lab.ip("route")
    answer = setup_networks(engine, {NET: {**NET_ATTRS, "ipaddr": "198.51.100.20"}}, ping=False,
                            timeout=2)  # fmt: skip
    expect(answer.get("error", {}).get("code") == 10, f"expected code 10: {answer}")
    say("  code 10 (lost connection): superd rolled back to the previous configuration")
    deadline = time.monotonic() + 5
    while lab.ip("-br", "-4", "addr") + lab.ip("route") != before:
        expect(time.monotonic() < deadline, "the kernel did not come back to the old state")
        time.sleep(0.1)
    show_kernel(lab)

    heading("Host.setSafeNetworkConfig: persist the running configuration")
    expect(engine.result("Host.setSafeNetworkConfig") is True, "setSafeNetworkConfig")
    persistent = lab.persistent_config()
    folder = lab.lib_dir / "persistence" / "netconf" / "nets"
    say(f"  {folder}: {', '.join(sorted(persistent['nets']))}")
    say(indent(json.dumps(persistent["nets"][NET], sort_keys=True), "    " + NET + ": "))

    heading("A change that is not persisted: nic-less bridged network scratch, 203.0.113.5/24")
    answer = setup_networks(engine, {"scratch": SCRATCH_ATTRS}, ping=True)
    expect(answer.get("result", {}).get("code") == 0, f"setupNetworks failed: {answer}")
    show_kernel(lab)
    engine.close()

    heading("Simulated reboot: daemons stopped, host namespace rebuilt, run dir wiped")
    lab.reboot_host()
    show_kernel(lab)

    heading("Boot: superd starts, then `netreload restore-nets --direct` (as root)")
    lab.start_superd()
    say(f"  $ ip netns exec {lab.host_ns} netreload --config C restore-nets --direct")
    restored = lab.cli("restore-nets", "--direct")
    say(indent(restored.stdout + restored.stderr))
    expect(restored.returncode == 0, "restore-nets failed")
    show_kernel(lab)

    heading("frontd starts; the engine reconnects and reads the capabilities")
    lab.start_frontd()
    caps = lab.engine().result("Host.getNetworkCapabilities")
    say(indent(render_caps(caps)))
    expect(set(caps["networks"]) == {NET}, f"after restore: {sorted(caps['networks'])}")
    say(f"  {NET} (persisted) is back; scratch (never persisted) is gone")

    heading("Offline planning against the sample host report (no kernel involved)")
    example = SOURCE_ROOT / "shared" / "data" / "examples" / "add-vm-network.json"
    say(f"  $ netreload plan --netinfo sample {example.relative_to(SOURCE_ROOT)}")
    plan = subprocess.run(
        [*netreload_command(), "plan", "--netinfo", "sample", str(example)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    say(indent(plan.stdout + plan.stderr))


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main() -> int:
    if os.geteuid() != 0:
        print("the demo needs root (it creates network namespaces): sudo make demo",
              file=sys.stderr)  # fmt: skip
        return 1
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _terminate)
    started = time.monotonic()
    lab = Lab(prefix="nre-")
    status = 0
    try:
        run_demo(lab)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        status = 130
    except Exception as error:
        print(f"\ndemo failed: {error}", file=sys.stderr)
        for name in ("superd", "frontd"):
            text = lab.log(name)
            if text:
                print(f"----- {name} log (last lines) -----\n{text[-3000:]}", file=sys.stderr)
        status = 1
    finally:
        # Cleaning up must not be cut short by a second Ctrl-C.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        heading("Clean up: daemons and engine stopped, namespaces and files removed")
        lab.close()
        say(f"  done in {time.monotonic() - started:.1f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
