"""superd's composition root: what is made from the configuration, and how
the pieces are wired. Every other module takes its collaborators as
constructor arguments.

* :func:`build_setup` — one core (``NetworkSetup``): the persistence, the
  configurators of the registry (:class:`configurators.registry.Configurators`;
  ``net_configurator`` the default, the others on first use), and a netinfo
  reader with its own netlink socket (netinfo never borrows a
  configurator's).
* :func:`build_daemon` — the daemon's verbs and event hub around a live
  netinfo (``superd.main``); :func:`build_verbs` — verbs without events
  (tests, benchmarks).
"""

from __future__ import annotations

from typing import Any

from configurators.registry import Configurators
from persistence.unified import UnifiedPersistence
from shared.config import Config
from superd.event_hub import EventHub
from superd.monitor import LiveNetinfo
from superd.setup_networks import NetworkSetup
from superd.verbs import Verbs


def build_setup(config: Config) -> NetworkSetup:
    """One core, in the calling thread (pyroute2 sockets are per thread)."""
    from pyroute2 import IPRoute

    from superd.netinfo import read_capabilities

    configurators = Configurators(config)
    try:
        ipr: Any = IPRoute()  # the netinfo reader's own socket
    except BaseException:
        configurators.close()
        raise
    return NetworkSetup(
        make_persistence(config),
        configurators,
        lambda running: read_capabilities(ipr, running, config),
        close_caps=ipr.close,
    )


def make_persistence(config: Config) -> UnifiedPersistence:
    """``net_persistence``: unified, or ifcfg (the ifcfg files and their
    safe backups; the JSON running configuration kept all the same)."""
    if config.net_persistence == "ifcfg":
        from persistence.ifcfg import IfcfgPersistence

        return IfcfgPersistence(config)
    return UnifiedPersistence(config)


def build_verbs(config: Config, live: LiveNetinfo | None = None) -> Verbs:
    """The verbs without an event hub (``events`` is refused)."""
    return Verbs(config, build_setup, live)


def build_daemon(config: Config, live: LiveNetinfo) -> tuple[Verbs, EventHub]:
    """The daemon's verbs and their event hub: events name networks from the
    verbs' running configuration and start their repair (no event reaches
    the hub before ``superd.main`` starts watching, after this returns)."""
    verbs: Verbs | None = None

    def running() -> Any:
        return verbs.running_networks() if verbs is not None else {}

    def restore(targets: set[str]) -> None:
        if verbs is not None:
            verbs.repair_networks(targets)

    hub = EventHub(config, live, running, restore)
    verbs = Verbs(config, build_setup, live, hub)
    return verbs, hub
