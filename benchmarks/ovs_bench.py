"""Benchmark 6: N OVS VLAN networks, end to end, against the same OVSDB work.

Workload: N bridged networks ``ov0 … ov{N-1}`` with ``switch: ovs`` on one
veth NIC, network ``i`` tagged ``i + 1`` with the static address of the
reference workload (``10.(i//256).(i%256).1/24``), connectivityCheck off.

netreload: superd started in the namespace (live netinfo), then, timed,
what frontd does for a setupNetworks — superd's ``netinfo``, the plan — and
superd's ``apply_plan`` over its socket: one OVSDB transaction, the wait for
ovs-vswitchd (``cur_cfg``), addresses and ports up over netlink,
verification (kernel dump + OVSDB read), the running configuration written,
the answer back.

Reference, in the same run, on a fresh namespace and OVSDB each time: one
``ovs-vsctl`` transaction creating the same bridge and ports (ovs-vsctl
waits for ovs-vswitchd as well), then one ``ip -batch`` adding the same
addresses and setting the same ports up. Open vSwitch runs in userspace
(``datapath_type=netdev``, ``tests.functional.ovs_lab``), ovs-vswitchd in the
namespace; everything is removed afterwards.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import paired, workload
from benchmarks.lab import delete_namespace, make_namespace, run_ip, uninterrupted
from benchmarks.paired import check_addresses, paired_row
from benchmarks.report import Row
from demo.lab import SOURCE_ROOT
from shared.netmodel.plan import plan_setup_networks
from shared.netmodel.snapshot import NetinfoSnapshot, RunningConfig
from shared.wire import encode_frame, recv_frame
from tests.functional.ovs_lab import OvsLab, why_no_ovs

NIC = "veth0"
MAX_N = 4094  # one VLAN tag per network


def net_name(i: int) -> str:
    return f"ov{i}"


def request(n: int) -> dict:
    networks = {
        net_name(i): {"nic": NIC, "vlan": i + 1, "switch": "ovs",
                      "ipaddr": workload.net_address(i), "prefix": workload.PREFIX_LEN}
        for i in range(n)
    }  # fmt: skip
    return {"networks": networks, "bondings": {}, "options": {"connectivityCheck": False}}


class OvsHost:
    """A namespace with one veth NIC (peer in a second one) and its own OVS."""

    def __init__(self) -> None:
        self.ns = make_namespace("ovs")
        self.peer: str | None = None
        self.root: Path | None = None
        self.lab: OvsLab | None = None
        try:
            self.peer = make_namespace("ovsp")
            self.root = Path(tempfile.mkdtemp(prefix="nrb-ovs-"))
            self.lab = OvsLab(self.ns, self.root / "ovs")
            run_ip("-n", self.ns, "link", "add", NIC, "type", "veth", "peer", "name", "p0",
                   "netns", self.peer)  # fmt: skip
            run_ip("-n", self.ns, "link", "set", NIC, "up")
            self.lab.start()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Whatever of the host exists, also when interrupted meanwhile."""
        with uninterrupted():
            try:
                if self.lab is not None:
                    self.lab.stop()
            finally:
                for name in (self.ns, self.peer):
                    if name is not None:
                        delete_namespace(name)
                if self.root is not None:
                    subprocess.run(["rm", "-rf", str(self.root)], check=False)

    def __enter__(self) -> OvsHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SuperdClient:
    """superd's socket, ``shared.wire`` frames."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(600)
        self.sock.connect(str(path))
        self.next_id = 0

    def call(self, verb: str, **args: object) -> object:
        self.next_id += 1
        self.sock.sendall(encode_frame({"id": self.next_id, "verb": verb, "args": args}))
        answer = recv_frame(self.sock)
        if not answer or not answer.get("ok"):
            raise RuntimeError(f"superd {verb}: {answer}")
        return answer["result"]

    def close(self) -> None:
        self.sock.close()


def start_superd(host: OvsHost) -> tuple[subprocess.Popen, SuperdClient]:
    for folder in ("run", "lib"):
        (host.root / folder).mkdir()
    config, sock = host.root / "netreload.conf", host.root / "run" / "superd.sock"
    config.write_text(
        "[vars]\nnet_configurator = iproute2\nfake_nics = veth*\n"
        f"[paths]\nrun_dir = {host.root / 'run'}\nlib_dir = {host.root / 'lib'}\n"
        f"resolv_conf = {host.root / 'resolv.conf'}\n"
        f"[superd]\nsocket = {sock}\n[frontd]\nuser = root\n"
        f"[ovs]\ndb = {host.lab.remote}\ndatapath = netdev\ntimeout = 120\n"
    )
    log = (host.root / "superd.log").open("w")
    proc = subprocess.Popen(
        ["ip", "netns", "exec", host.ns, sys.executable, "-m", "superd.main",
         "--config", str(config)], cwd=SOURCE_ROOT, stdout=log, stderr=log,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"superd exited: {(host.root / 'superd.log').read_text()[-500:]}")
        try:
            client = SuperdClient(sock)
            client.call("ping")
            return proc, client
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("superd did not start")


def netreload_setup(n: int) -> float:
    with OvsHost() as host:
        proc, client = start_superd(host)
        try:
            work = request(n)
            started = time.perf_counter()
            info = client.call("netinfo")
            plan = plan_setup_networks(
                work["networks"], work["bondings"], work["options"],
                NetinfoSnapshot.from_caps(info["caps"]), RunningConfig.from_dict(info["running"]),
            )  # fmt: skip
            client.call("apply_plan", plan=plan.to_dict())
            seconds = time.perf_counter() - started
            _check(host, n)
        finally:
            client.close()
            proc.terminate()
            proc.wait(60)
        return seconds


def reference_setup(n: int) -> float:
    with OvsHost() as host:
        bridge = "refbr"
        vsctl = ["ovs-vsctl", f"--db={host.lab.remote}", "--timeout=600",
                 "add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev",
                 "--", "add-port", bridge, NIC]  # fmt: skip
        for i in range(n):
            name = net_name(i)
            vsctl += ["--", "add-port", bridge, name, f"tag={i + 1}", "--", "set", "interface",
                      name, "type=internal", "mtu_request=1500"]  # fmt: skip
        script = "".join(
            f"addr add {workload.net_address(i)}/{workload.PREFIX_LEN} dev {net_name(i)}\n"
            f"link set {net_name(i)} up\n"
            for i in range(n)
        )
        started = time.perf_counter()
        proc = subprocess.run(vsctl, env=host.lab.env, capture_output=True, text=True,
                              timeout=600)  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"ovs-vsctl: {proc.stderr.strip()[:500]}")
        run_ip("-n", host.ns, "-batch", "-", input_text=script)
        seconds = time.perf_counter() - started
        _check(host, n)
        return seconds


def _check(host: OvsHost, n: int) -> None:
    check_addresses(host.ns, [net_name(i) for i in range(n)])


def measure(n: int, runs: int = 1) -> tuple[list[Row], dict]:
    """One row: netreload's median against the reference's median."""
    if not 1 <= n <= MAX_N:
        raise ValueError(f"N = {n}: one VLAN tag per network, 1 … {MAX_N}")
    refs = [reference_setup(n) for _ in range(runs)]
    ours = [netreload_setup(n) for _ in range(runs)]
    what = "OVS VLAN networks (plan + superd apply_plan)"
    row = paired_row("ovs", what, n, ours, refs, "ovs-vsctl + ip -batch")
    return [row], {"netreload": ours, "reference": refs}


def available() -> str | None:
    return why_no_ovs()


def main(argv: list[str] | None = None) -> int:
    return paired.main("ovs_bench", available, measure, argv)


if __name__ == "__main__":
    sys.exit(main())
