"""A private NetworkManager for one test: its own dbus-daemon and its own
NetworkManager, inside the test's network namespace.

The recipe is the one verified in KERNEL_LANES ("NetworkManager in a
namespace on a private D-Bus"):

* a ``dbus-daemon`` of type ``system`` listening on a socket in the test's
  temporary folder (D-Bus policies of ``/usr/share/dbus-1/system.d``, plus
  one that lets root do anything: the lab runs as root only);
* NetworkManager under ``ip netns exec NS`` in a mount namespace of its own
  (``unshare --mount``), where ``/run`` and ``/var/lib/NetworkManager`` are
  private tmpfs (nothing of the host's NetworkManager is read or written),
  ``/sys`` is read-only (so it runs without udev and manages the
  namespace's veth devices), and any ``binds`` (a folder of the test bound
  over a path NetworkManager reads, e.g. the ifcfg-rh plugin's folder);
* its configuration in the temporary folder: the ``plugins`` asked for
  (keyfile with its path in the temporary folder by default),
  ``no-auto-default=*``, ``dns=none``, ``auth-polkit=false``, no other
  configuration directory, ``--no-daemon``.

:meth:`NmLab.stop` (also called when :meth:`NmLab.start` fails) stops
NetworkManager and the bus by their process ids, and the mount namespace
goes with NetworkManager. Read-backs go through ``nmcli`` on the private
bus, never through netreload's own client.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

SYSTEM_POLICIES = Path("/usr/share/dbus-1/system.d")
NM_BINARY = "/usr/sbin/NetworkManager"

#: ``[nm] timeout`` (seconds) of a configuration pointing at the lab, and
#: the lab's own D-Bus reply timeout for a read-back. While the kernel
#: dismantles a namespace it holds RTNL: ~16 s for 1,000 up bridges, ~33 s
#: for 2,000 here (an ``ip link add`` elsewhere timed across ``ip netns
#: del``), and NetworkManager, one thread, waits in its netlink call
#: meanwhile: no D-Bus answer (code 33 past timeout + 5 s), no activation
#: (code 29 past timeout). Benchmarks and other runs on a shared machine do
#: that; 45 s covers 2,000 bridges and keeps superd's answer within the
#: test client's 60 s. The product's default (30 s) is for a host where
#: nothing of the kind runs.
TIMEOUT = 45

_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <includedir>{policies}</includedir>
  <policy user="root">
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <allow send_type="method_call"/>
  </policy>
</busconfig>
"""

#: the shell run by ``unshare --mount`` inside the namespace; "$@" is
#: NetworkManager's command line, BINDS a newline-separated list of
#: "source target" pairs (paths checked by the lab: no spaces).
_NM_WRAPPER = r"""set -e
mount --make-rprivate /
mount -t tmpfs -o mode=0755 nm-lab-run /run
mkdir -p /var/lib/NetworkManager
mount -t tmpfs -o mode=0755 nm-lab-state /var/lib/NetworkManager
mount --bind /sys /sys
mount -o remount,bind,ro /sys
printf '%s\n' "$BINDS" | while read -r source target; do
  [ -n "$source" ] || continue
  mkdir -p "$target"
  mount --bind "$source" "$target"
done
exec "$@"
"""


def why_no_nm(binary: str = NM_BINARY) -> str | None:
    """Why the lab cannot run here (None: it can)."""
    for tool in (binary, "dbus-daemon", "nmcli", "unshare", "ip"):
        if shutil.which(tool) is None:
            return f"NetworkManager lab: {tool} is not installed"
    try:
        import dbus  # noqa: F401
    except ImportError:
        return "NetworkManager lab: dbus-python is not installed (pip install '.[nm]')"
    return None


class NmLab:
    """NetworkManager on a private bus in network namespace ``netns``.

    ``binary``: the NetworkManager to run; ``plugins``: its settings
    plugins (``keyfile``: profiles in ``root/keyfiles``); ``binds``:
    {folder of the test: path NetworkManager reads} bind-mounted in its own
    mount namespace; ``env``: extra environment of NetworkManager (e.g.
    ``LD_LIBRARY_PATH`` of a NetworkManager built elsewhere);
    ``nmcli``: the nmcli to read back with."""

    def __init__(
        self,
        netns: str,
        root: Path,
        binary: str = NM_BINARY,
        plugins: Sequence[str] = ("keyfile",),
        binds: Mapping[Path | str, Path | str] | None = None,
        env: Mapping[str, str] | None = None,
        nmcli: str = "nmcli",
        extra_config: str = "",
    ) -> None:
        self.netns, self.root = netns, Path(root)
        self.binary, self.plugins = binary, tuple(plugins)
        self.binds = {Path(s): Path(t) for s, t in (binds or {}).items()}
        for path in (self.root, *self.binds, *self.binds.values()):
            if any(c.isspace() for c in str(path)) or not path.is_absolute():
                raise ValueError(f"NetworkManager lab: unusable path {str(path)!r}")
        self.extra_env = dict(env or {})
        self.nmcli_binary = nmcli
        self.extra_config = extra_config
        self.socket = self.root / "bus.sock"
        self.keyfiles = self.root / "keyfiles"
        self.log_path = self.root / "NetworkManager.log"
        self._bus: subprocess.Popen | None = None
        self._nm: subprocess.Popen | None = None
        self._nm_log = None

    @property
    def address(self) -> str:
        """The private bus' D-Bus address (DBUS_SYSTEM_BUS_ADDRESS, ``[nm] bus``)."""
        return f"unix:path={self.socket}"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DBUS_SYSTEM_BUS_ADDRESS": self.address}

    # -- life cycle ----------------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            self.keyfiles.mkdir(exist_ok=True)
            self._start_bus()
            self.start_nm(timeout)
        except BaseException:
            self.stop()
            raise

    def _start_bus(self) -> None:
        config = self.root / "bus.conf"
        config.write_text(_BUS_CONFIG.format(socket=self.socket, policies=SYSTEM_POLICIES))
        self._bus = subprocess.Popen(
            ["dbus-daemon", f"--config-file={config}", "--nofork", "--nopidfile"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            if self._bus.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("NetworkManager lab: dbus-daemon did not start")
            time.sleep(0.02)

    def _write_nm_config(self) -> Path:
        config = self.root / "NetworkManager.conf"
        config.write_text(
            "[main]\n"
            f"plugins={','.join(self.plugins)}\n"
            "no-auto-default=*\n"
            "dns=none\n"
            "rc-manager=unmanaged\n"
            "auth-polkit=false\n"
            "[keyfile]\n"
            f"path={self.keyfiles}\n"
            "[logging]\n"
            "level=INFO\n"
            f"{self.extra_config}"
        )
        (self.root / "conf.d").mkdir(exist_ok=True)
        return config

    def start_nm(self, timeout: float = 60.0) -> None:
        """Start NetworkManager (again: a simulated reboot keeps the bus
        and loses every in-memory profile) and wait until it has started."""
        config = self._write_nm_config()
        empty = self.root / "conf.d"
        binds = "\n".join(f"{s} {t}" for s, t in self.binds.items())
        argv = [
            "ip",
            "netns",
            "exec",
            self.netns,
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            _NM_WRAPPER,
            "nm-lab",
            self.binary,
            "--no-daemon",
            "--debug",
            f"--config={config}",
            f"--config-dir={empty}",
            f"--system-config-dir={empty}",
            f"--state-file={self.root / 'NetworkManager.state'}",
            f"--intern-config={self.root / 'NetworkManager-intern.conf'}",
        ]
        self._nm_log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop_nm
        self._nm = subprocess.Popen(
            argv,
            env={**self.env, **self.extra_env, "BINDS": binds},
            stdin=subprocess.DEVNULL,
            stdout=self._nm_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_started(timeout)

    def _wait_started(self, timeout: float) -> None:
        """Until NetworkManager owns its bus name and says its start-up is
        over (its ``Startup`` property false), asked with ``dbus-send``."""
        deadline = time.monotonic() + timeout
        while True:
            if self._nm is not None and self._nm.poll() is not None:
                raise RuntimeError(f"NetworkManager lab: NetworkManager exited:\n{self.log()}")
            try:
                startup = self._dbus_get("org.freedesktop.NetworkManager", "Startup")
            except (subprocess.SubprocessError, OSError):
                startup = None
            if startup is not None and "boolean false" in startup:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"NetworkManager lab: not started in {timeout} s:\n{self.log()}")
            time.sleep(0.05)

    def _dbus_get(self, interface: str, prop: str, reply_timeout: float = 2) -> str | None:
        """A property of NetworkManager's root object as dbus-send prints
        it; None while NetworkManager is not on the bus or has not answered
        within ``reply_timeout`` seconds."""
        proc = subprocess.run(
            [
                "dbus-send",
                f"--bus={self.address}",
                "--print-reply",
                f"--reply-timeout={int(reply_timeout * 1000)}",
                "--dest=org.freedesktop.NetworkManager",
                "/org/freedesktop/NetworkManager",
                "org.freedesktop.DBus.Properties.Get",
                f"string:{interface}",
                f"string:{prop}",
            ],
            capture_output=True,
            text=True,
            timeout=reply_timeout + 10,
        )
        return proc.stdout if proc.returncode == 0 else None

    def stop_nm(self) -> None:
        """Stop NetworkManager (SIGTERM, SIGKILL after 10 s); its mount
        namespace, its /run and its in-memory profiles go with it."""
        proc, self._nm = self._nm, None
        if proc is not None:
            _terminate(proc)
        if self._nm_log is not None:
            self._nm_log.close()
            self._nm_log = None

    def kill_nm(self) -> None:
        """SIGKILL NetworkManager (a crash: it cleans nothing up)."""
        if self._nm is not None:
            os.killpg(self._nm.pid, signal.SIGKILL)
            self._nm.wait(10)
        self.stop_nm()

    @contextlib.contextmanager
    def frozen_nm(self) -> Iterator[None]:
        """NetworkManager stopped in its tracks (SIGSTOP) meanwhile: there,
        on the bus, not answering, as when it waits for the kernel."""
        assert self._nm is not None
        os.killpg(self._nm.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.killpg(self._nm.pid, signal.SIGCONT)

    def stop(self) -> None:
        self.stop_nm()
        proc, self._bus = self._bus, None
        if proc is not None:
            _terminate(proc)

    def __enter__(self) -> NmLab:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- read-backs ------------------------------------------------------------
    def log(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def audits(self) -> list[str]:
        """NetworkManager's audit lines: one per change asked of it over
        D-Bus (profile added, updated, deleted, activated, checkpoint …)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        return [line for line in text.splitlines() if "audit:" in line]

    def nmcli(self, *args: str, check: bool = True) -> str:
        proc = subprocess.run(
            [self.nmcli_binary, *args],
            env={**self.env, **self.extra_env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"nmcli {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def connections(self) -> dict[str, dict[str, str]]:
        """Every profile NetworkManager holds: {id: {uuid, type, device, filename}}."""
        out = self.nmcli("-t", "-e", "no", "-f", "NAME,UUID,TYPE,DEVICE", "connection", "show")
        profiles = {}
        for line in out.splitlines():
            name, uuid, kind, device = line.rsplit(":", 3)
            profiles[name] = {"uuid": uuid, "type": kind, "device": device}
        return profiles

    def connection(self, name: str, fields: str = "all") -> dict[str, str]:
        """``nmcli connection show ID``'s settings, {field: value}."""
        out = self.nmcli("-t", "-e", "no", "-f", fields, "connection", "show", "id", name)
        return dict(line.split(":", 1) for line in out.splitlines() if ":" in line)

    def device_states(self) -> dict[str, str]:
        """{device: state} as ``nmcli device`` reports it."""
        out = self.nmcli("-t", "-e", "no", "-f", "DEVICE,STATE", "device", "status")
        return dict(line.rsplit(":", 1) for line in out.splitlines())

    def checkpoints(self) -> list[str]:
        """The checkpoints NetworkManager holds (their D-Bus paths)."""
        # one question, not a poll: NetworkManager's answer may wait for RTNL
        out = self._dbus_get("org.freedesktop.NetworkManager", "Checkpoints", TIMEOUT)
        if out is None:
            raise RuntimeError("NetworkManager lab: NetworkManager is not on the bus")
        return [line.split('"')[1] for line in out.splitlines() if "object path" in line]


def _terminate(proc: subprocess.Popen) -> None:
    """SIGTERM (to its process group when it has one), SIGKILL after 10 s."""
    if proc.poll() is not None:
        return
    group = _own_group(proc)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig) if group else proc.send_signal(sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(10)
            return
        except subprocess.TimeoutExpired:
            continue
    try:  # SIGKILLed: only a process stuck in the kernel is still there
        proc.wait(120)
    except subprocess.TimeoutExpired:
        pass  # it goes when the kernel is done; its namespace is deleted anyway


def _own_group(proc: subprocess.Popen) -> bool:
    try:
        return os.getpgid(proc.pid) == proc.pid
    except ProcessLookupError:
        return False
