"""DHCP clients for the networks whose IP configuration is ``dhcp``/``dhcpv6``.

One ISC ``dhclient`` process per (device, family), started in the caller's
network namespace and driven through its own files under
``<run dir>/dhcp/``:

* ``dhclient4.conf`` / ``dhclient6.conf`` — our client configuration (never
  ``/etc/dhcp/dhclient.conf``);
* ``dhclient_hook.sh`` — our ``-sf`` script, copied from the package with
  mode 0700.  Debian's ``/sbin/dhclient-script`` is never used: it rewrites
  the real ``/etc/resolv.conf``, runs the system's hook folders and knows
  nothing about which network holds the default route;
* ``<device>.v<family>.{pid,leases,log}`` — dhclient's pid file, lease
  database and stderr;
* ``<device>.v<family>.defroute`` — present when the network holds the
  default route; the hook reads it at every lease event;
* ``<device>.v<family>.{state,bound,dns,lock}`` — written by the hook: what
  it applied, "a lease is applied", the nameservers it contributes to
  ``config.resolv_conf``, and its per-client lock (``resolv.lock`` guards
  the shared resolv.conf).

The device name is validated (:func:`validate_nic_name`) before it becomes a
file name or a dhclient argument: it can never be a path, an option or
empty.

The hook applies a lease with ``ip``: the address with the lease's lifetimes
(so the kernel never marks it ``IFA_F_PERMANENT``; netinfo reports it as
dynamic, and the kernel itself drops it if nobody renews), a DHCPv6 address
as a /128, the DHCPv4 router as the main default route (``proto dhcp``)
when the ``defroute`` flag exists and as the network's source routing
(:mod:`shared.source_routing`) when it does not, and the nameservers into
``config.resolv_conf`` only for the default-route network.  Without the
flag, a lease whose prefix is shorter than :data:`MIN_LEASE_PREFIX` or whose
subnet overlaps the default-route network's is refused.  EXPIRE/FAIL/RELEASE/STOP remove all of
it.  DHCPv6 carries no router: an IPv6 default route comes from router
advertisements (the kernel's ``accept_ra``/``accept_ra_defrtr``), not from
here.

A running client is found through its pid file, or, before it daemonizes
(``dhclient -6`` runs its PREINIT6 hook, which waits for a usable link-local
address, in the foreground), by its command line naming our pid file; so a
restarted superd re-adopts running clients and ``start`` stays idempotent.
Only a process root runs from the client binary (``/proc/PID/exe``) counts:
another user's process named ``dhclient`` naming our pid file is ignored
(a real client is started) and never signalled; a client is signalled only
while its pid still has the start time it had when found.
``stop`` kills the client (and waits for a hook it is running), then sends
the Release with ``dhclient -r`` and removes what the hook recorded.

Why dhclient rather than pyroute2's DHCP client:

* the client must outlive superd: superd can be restarted at any time, and a
  lease must keep being renewed meanwhile.  pyroute2's client is an asyncio
  task inside the calling process, so we would have to write, supervise and
  re-adopt a daemon around it anyway; dhclient already is that daemon;
* pyroute2 (0.9.x) only speaks DHCPv4 and its client API is still moving
  between minor releases; dhclient speaks DHCPv4 and DHCPv6 (IA_NA, DUID
  kept in the lease file) with one code path here;
* dhclient's lease database lets a restarted client ask for the address it
  had (INIT-REBOOT), so a restart does not renumber the host.

Known costs: ISC ended dhclient's maintenance (it is still packaged by
Debian 12/13 and RHEL 9); on hosts where AppArmor enforces Debian's/Ubuntu's
``/etc/apparmor.d/sbin.dhclient`` profile, the run dir and the hook must be
allowed in ``/etc/apparmor.d/local/sbin.dhclient``::

    /run/netreload/dhcp/ r,
    /run/netreload/dhcp/** rw,
    /run/netreload/dhcp/dhclient_hook.sh Uxr,
"""

from __future__ import annotations

import importlib.resources
import logging
import os
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path

from configurators.dhcp_files import (
    CLIENT_CONF,
    ClientFiles,
    check_family,
    check_timeout,
)
from configurators.dhcp_processes import (
    Proc,
    children,
    find_dhclients,
    identify,
    is_our_dhclient,
    read_pid,
    send_signal,
    still_ours,
    tail,
    wait_or_kill,
)
from shared.config import Config
from shared.errors import ErrorCode, NetError
from shared.netmodel.names import validate_nic_name
from shared.source_routing import RULE_PRIORITY, source_table

log = logging.getLogger(__name__)

HOOK_NAME = "dhclient_hook.sh"
# The shortest IPv4 prefix a lease may have on a network that does not hold
# the default route: a wider "link" is never one, and would take over part
# of the default route's traffic (the hook refuses such a lease).
MIN_LEASE_PREFIX = 8
_SBIN_PATH = "/usr/sbin:/sbin:/usr/bin:/bin"
# How long the pieces of start/stop may take, independently of the caller's
# lease timeout.  A non-blocking start waits this long for dhclient to either daemonize or
# fail; a DHCPv6 client still waiting for a usable link-local address (no
# carrier yet, DAD running) is left doing so in the background.
_START_CHECK = 0.5
_RELEASE_TIMEOUT = 5.0  # dhclient -r (a DHCPv6 Release waits for a Reply)
_HOOK_TIMEOUT = 30.0
_HOOK_GRACE = 5.0  # a killed client's hook finishing what it was doing
_KILL_GRACE = 3.0
_POLL = 0.1


def _popen_dhclient(argv: list[str], log_path: Path, mode: str) -> subprocess.Popen:
    """dhclient in its own session, output to ``log_path`` (a file, not a pipe
    the daemon would keep open), with a fixed PATH and locale."""
    with open(log_path, mode) as err:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            env={"PATH": _SBIN_PATH, "LC_ALL": "C"},
            start_new_session=True,
        )


class DhcpClients:
    """Start, stop and look at dhclient processes, one per (device, family)."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._dir = Path(config.run_dir) / "dhcp"
        self._lock = threading.Lock()
        self._prepared = False

    # -- public API ------------------------------------------------------
    def start(
        self,
        device: str,
        family: int,
        blocking: bool,
        default_route: bool,
        timeout: float = 30.0,
    ) -> None:
        """Run a DHCP client for ``device`` in the current network namespace.

        ``blocking``: return once a lease is applied, or stop the client and
        raise ``NetError(FAILED_IFUP)`` after ``timeout`` seconds.  Otherwise
        return as soon as the client runs; it keeps trying in the background.
        A client already running for ``device``/``family`` is kept (only its
        default-route flag is updated, and applied to its current lease).
        """
        files = self._files(device, family)
        timeout = check_timeout(timeout)
        with self._lock:
            self._prepare()
            flag_changed = self._set_default_route_flag(files, default_route)
            if self._pids(files):
                if flag_changed:
                    self._run_hook(files, "NR_REAPPLY")
            else:
                self._spawn(files)
        if blocking:
            self._wait_bound(files, timeout)

    def stop(self, device: str, family: int) -> None:
        """Stop the client, release its lease and remove what it configured.

        Also cleans up after a client that already died: whatever the hook
        recorded as applied is removed.
        """
        files = self._files(device, family)
        with self._lock:
            self._prepare()
            self._stop(files)

    def running(self, device: str, family: int) -> bool:
        return bool(self._pids(self._files(device, family)))

    def bound(self, device: str, family: int) -> bool:
        """A client runs for ``device``/``family`` and has applied a lease."""
        files = self._files(device, family)
        return bool(self._pids(files)) and files.bound.exists()

    # -- files -----------------------------------------------------------
    def _files(self, device: str, family: int) -> ClientFiles:
        device = validate_nic_name(device)
        family = check_family(family)
        return ClientFiles(device, family, self._dir / f"{device}.v{family}")

    @property
    def _hook(self) -> Path:
        return self._dir / HOOK_NAME

    def _conf(self, family: int) -> Path:
        return self._dir / f"dhclient{family}.conf"

    def _prepare(self) -> None:
        """Create the state folder (0700) and install the hook and configs."""
        if self._prepared and self._hook.exists():
            return
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(self._dir)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            # The hook we install there runs as root: nobody else may own it.
            raise NetError(ErrorCode.INTERNAL, f"{self._dir} is not a folder of ours")
        os.chmod(self._dir, 0o700)
        hook = importlib.resources.files("configurators").joinpath(HOOK_NAME).read_bytes()
        self._install(self._hook, hook, 0o700)
        for family, text in CLIENT_CONF.items():
            self._install(self._conf(family), text.encode(), 0o600)
        self._prepared = True

    @staticmethod
    def _install(path: Path, data: bytes, mode: int) -> None:
        try:
            if path.read_bytes() == data and (path.stat().st_mode & 0o777) == mode:
                return
        except OSError:
            pass
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    @staticmethod
    def _set_default_route_flag(files: ClientFiles, default_route: bool) -> bool:
        """Create or remove the flag file; True when it changed."""
        if default_route:
            if files.defroute.exists():
                return False
            files.defroute.touch(mode=0o600)
            return True
        if not files.defroute.exists():
            return False
        files.defroute.unlink(missing_ok=True)
        return True

    # -- processes -------------------------------------------------------
    @staticmethod
    def _installed() -> str | None:
        """The client binary superd runs, as ``/proc/PID/exe`` shows it."""
        path = shutil.which("dhclient", path=_SBIN_PATH)
        return os.path.realpath(path) if path is not None else None

    def _dhclient(self) -> str:
        path = self._installed()
        if path is None:
            raise NetError(
                ErrorCode.FAILED_IFUP, "dhclient is not installed (package isc-dhcp-client)"
            )
        return path

    def _pids(self, files: ClientFiles) -> list[Proc]:
        """The clients of ours for ``files``: root's, running the client
        binary, naming our pid file (see configurators.dhcp_processes)."""
        binary = self._installed()
        if binary is None:
            return []
        pid = read_pid(files.pid)
        if pid is not None and (daemon := is_our_dhclient(pid, files.pid, binary)):
            return [daemon]  # the daemon, as recorded: no need to look further
        return find_dhclients(files.pid, binary)

    def _hook_env(self, files: ClientFiles) -> dict[str, str]:
        """What the hook is told besides dhclient's own variables."""
        return {
            "NETRELOAD_DHCP_DIR": str(self._dir),
            "NETRELOAD_RESOLV_CONF": str(self._config.resolv_conf),
            "NETRELOAD_FAMILY": str(files.family),
            "NETRELOAD_TABLE": str(source_table(files.device)),
            "NETRELOAD_RULE_PRIORITY": str(RULE_PRIORITY),
            "NETRELOAD_MIN_PREFIX": str(MIN_LEASE_PREFIX),
        }

    def _hook_env_args(self, files: ClientFiles) -> list[str]:
        return [arg for key, value in self._hook_env(files).items()
                for arg in ("-e", f"{key}={value}")]  # fmt: skip

    def _dhclient_args(self, files: ClientFiles, *mode: str) -> list[str]:
        return [
            self._dhclient(),
            f"-{files.family}",
            *mode,
            "-cf",
            str(self._conf(files.family)),
            "-pf",
            str(files.pid),
            "-lf",
            str(files.leases),
            "-sf",
            str(self._hook),
            *self._hook_env_args(files),
            # validate_nic_name guarantees it cannot start with '-'; "--" is
            # not understood by dhclient.
            files.device,
        ]

    def _spawn(self, files: ClientFiles) -> None:
        try:
            socket.if_nametoindex(files.device)
        except OSError as exc:
            raise NetError(
                ErrorCode.FAILED_IFUP,
                f"DHCPv{files.family} on {files.device}: no such device",
            ) from exc
        # Leftovers of a client that died: the hook of the new client replaces
        # the address it recorded; "bound" must only mean "bound by this one".
        files.bound.unlink(missing_ok=True)
        files.pid.unlink(missing_ok=True)
        argv = self._dhclient_args(files, "-nw")
        log.info("starting DHCPv%d client on %s", files.family, files.device)
        # Not waited for: dhclient -6 runs the PREINIT6 hook (which waits for
        # a usable link-local address, possibly until the carrier comes)
        # before it daemonizes.  stdout/stderr go to a file, not a pipe, that
        # the daemon would keep open.
        try:
            proc = _popen_dhclient(argv, files.log, "wb")
        except OSError as exc:
            raise NetError(
                ErrorCode.FAILED_IFUP,
                f"DHCPv{files.family} on {files.device}: cannot run dhclient: {exc}",
            ) from exc
        # Reap the launcher when it exits (once it daemonized), so that no
        # zombie is left in a long-running superd.
        threading.Thread(target=proc.wait, name=f"dhclient-{proc.pid}", daemon=True).start()
        deadline = time.monotonic() + _START_CHECK
        while time.monotonic() < deadline:
            code = proc.poll()
            if code is not None and code != 0:
                raise NetError(
                    ErrorCode.FAILED_IFUP,
                    f"DHCPv{files.family} on {files.device}: dhclient failed "
                    f"({code}): {tail(files.log)}",
                )
            daemon = read_pid(files.pid)
            if daemon is not None and is_our_dhclient(daemon, files.pid, argv[0]):
                return
            time.sleep(0.01)

    def _wait_bound(self, files: ClientFiles, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if files.bound.exists():
                return
            if not self._pids(files):
                reason = f"dhclient exited: {tail(files.log)}"
                break
            if time.monotonic() >= deadline:
                reason = f"no lease within {timeout:g} s"
                break
            time.sleep(_POLL)
        with self._lock:
            self._stop(files)
        raise NetError(ErrorCode.FAILED_IFUP, f"DHCPv{files.family} on {files.device}: {reason}")

    def _stop(self, files: ClientFiles) -> None:
        pids = self._pids(files)
        if pids:
            log.info("stopping DHCPv%d client on %s", files.family, files.device)
            # The client first, then its hook if one is running (it could
            # otherwise apply a lease after the cleanup below).  The hook
            # notices its dhclient is gone and returns within a second.
            hooks = children(pids)
            binary = self._dhclient()
            for proc in pids:
                self._kill(proc, files.pid, binary)
            wait_or_kill(hooks, _HOOK_GRACE)
        if files.state.exists():
            # A lease was (being) applied: give it back to the server.
            self._release(files)
        # Whatever is still recorded as applied (release not answered, client
        # that died earlier, hook killed half-way) is removed here.
        self._run_hook(files, "NR_CLEANUP")
        for path in (files.pid, files.defroute, files.bound):
            path.unlink(missing_ok=True)

    def _release(self, files: ClientFiles) -> None:
        """``dhclient -r`` once the daemon is gone: send a Release for the
        lease in the lease file and run the hook with RELEASE.  Bounded: a
        DHCPv6 Release waits for a Reply."""
        argv = self._dhclient_args(files, "-r")
        try:
            proc = _popen_dhclient(argv, files.log, "ab")
        except OSError as exc:
            log.warning("DHCPv%d release on %s: %s", files.family, files.device, exc)
            return
        try:
            proc.wait(timeout=_RELEASE_TIMEOUT)
        except subprocess.TimeoutExpired:
            log.warning(
                "DHCPv%d release on %s not answered in %g s",
                files.family,
                files.device,
                _RELEASE_TIMEOUT,
            )
            launcher = identify(proc.pid)  # our child, not reaped yet: its pid holds
            hooks = children([launcher]) if launcher is not None else []
            proc.kill()
            proc.wait()
            # Its hook, if one runs, sees it gone and ends; or is killed.
            wait_or_kill(hooks, _HOOK_GRACE)

    @staticmethod
    def _kill(proc: Proc, pid_file: Path, binary: str) -> None:
        """SIGTERM, then SIGKILL: each only while ``proc`` is still that
        client of ours (same pid, same start time, root, the binary)."""

        def ours(p: Proc) -> bool:
            return still_ours(p, pid_file, binary)

        for sig, grace in ((signal.SIGTERM, _KILL_GRACE), (signal.SIGKILL, _KILL_GRACE)):
            if not send_signal(proc, sig, ours):
                return
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                if not ours(proc):
                    return
                time.sleep(0.02)
        log.error("dhclient %d did not die", proc.pid)

    def _run_hook(self, files: ClientFiles, reason: str) -> None:
        env = {
            "PATH": _SBIN_PATH,
            "LC_ALL": "C",
            "reason": reason,
            "interface": files.device,
            **self._hook_env(files),
        }
        try:
            proc = subprocess.run(
                [str(self._hook)],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=_HOOK_TIMEOUT,
                check=False,
                env=env,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NetError(
                ErrorCode.FAILED_IFUP, f"DHCP hook {reason} on {files.device}: {exc}"
            ) from exc
        if proc.returncode != 0:
            raise NetError(
                ErrorCode.FAILED_IFUP,
                f"DHCP hook {reason} on {files.device} failed: {proc.stderr.strip()}",
            )
