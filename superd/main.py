"""``netreload-superd [--config C]``: the privileged daemon, in the foreground.

read the configuration (once) → resolve who may connect (root and
``[frontd] user``) → start the netlink monitor (live netinfo: one dump, then
events) → build the cores (no kernel writes: a restart never touches the
network) → feed the event hub from the monitor and the uevent (hotplug)
watcher → if a transaction journal was left behind (superd died inside a
change), restore the running configuration from before that change, and
report it (log and event) → listen → tell systemd READY=1 → serve until SIGTERM or SIGINT →
stop accepting and remove the socket → let a running change finish (a
connectivity wait is cut short and rolls back) → close the connections →
stop the watchers → exit 0.

Logs go to stderr (the journal, under systemd). ``NETRELOAD_TRACEMALLOC=FILE``
(debug only) dumps what superd allocated since a baseline on each ``SIGUSR2``
(``shared.memory``).
"""

from __future__ import annotations

import argparse
import logging
import os
import pwd
import signal
import sys
from types import FrameType

from shared.config import Config, load_config
from shared.errors import NetError
from shared.memory import install_debug_snapshots, use_one_malloc_arena
from shared.sd_notify import sd_notify
from superd import hotplug
from superd.compose import build_daemon
from superd.event_hub import EventHub
from superd.monitor import LiveNetinfo
from superd.server import UnixServer
from superd.verbs import Verbs

log = logging.getLogger("netreload.superd")


def access_policy(config: Config) -> tuple[frozenset[int], int | None]:
    """(uids admitted, group owning the socket) for ``config.frontd_user``.

    Without that user only root (and superd's own uid) may connect and the
    socket is 0600.
    """
    uids = {0, os.geteuid()}
    try:
        entry = pwd.getpwnam(config.frontd_user)
    except KeyError:
        log.warning("frontd user %r does not exist: only root may connect", config.frontd_user)
        return frozenset(uids), None
    uids.add(entry.pw_uid)
    return frozenset(uids), entry.pw_gid


def start_watching(hub: EventHub, live: LiveNetinfo) -> hotplug.HotplugWatcher | None:
    """Feed the event hub: the monitor's states, and uevents if pyudev is
    there (else NIC presence comes from netlink). The watcher, if any.
    Under ``net_configurator = nm`` the monitor's states also feed the
    source-routing rules of DHCP leases (``configurators.nm_lease_rules``)."""
    live.listeners.append(hub.on_state)
    if live.config.net_configurator == "nm":  # a later lease's source-routing rules
        from configurators.nm_lease_rules import LeaseRulesListener

        live.listeners.append(LeaseRulesListener().on_state)
    if not hotplug.available():
        log.warning("pyudev missing: NIC hotplug read from netlink only")
        return None
    watcher = hotplug.HotplugWatcher(hub.on_uevent)
    watcher.start()
    hub.holds.append(watcher.held)
    hub.nic_presence_from_netlink = False
    return watcher


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netreload-superd")
    parser.add_argument("--config", help="configuration file (default: %(default)s)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    use_one_malloc_arena()  # before any thread starts (shared.memory says why)
    install_debug_snapshots()  # NETRELOAD_TRACEMALLOC only; before any thread starts
    live: LiveNetinfo | None = None
    verbs: Verbs | None = None
    watcher = None
    try:
        config = load_config(args.config)
        uids, group = access_policy(config)
        live = LiveNetinfo(config)
        live.start()
        verbs, hub = build_daemon(config, live)
        watcher = start_watching(hub, live)
        verbs.recover()  # an interrupted transaction is undone before anything is served
    except (NetError, OSError) as error:
        log.error("cannot start: %s", error)
        if verbs is not None:
            verbs.close()
        if live is not None:
            live.close()
        return 1
    verbs.defer_release = True  # the server calls after_answer
    server = UnixServer(
        config.superd_socket, verbs.dispatch, uids, group, after_answer=verbs.after_answer
    )

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("%s: shutting down", signal.Signals(signum).name)
        server.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.wake_on_signals()
    try:
        try:
            server.start()
        except (NetError, OSError) as error:
            log.error("cannot listen on %s: %s", config.superd_socket, error)
            return 1
        sd_notify("READY=1")
        log.info("superd ready (admitted uids: %s)", ", ".join(map(str, sorted(uids))))
        server.serve_forever()
        sd_notify("STOPPING=1")
    finally:
        server.close_listener()
        verbs.close()
        server.close_connections()
        if watcher is not None:
            watcher.close()
        live.close()
    log.info("superd stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
