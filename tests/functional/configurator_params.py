"""The configurators the behaviour tests run against.

``agent`` (assigned in a test module: ``agent = configurator_params.agent``)
is parametrized over ``iproute2``, ``nm`` and ``ifcfg``: for ``nm`` a private
NetworkManager is started in the test's namespace (``nm_lab``) and the
agent's configuration points ``[nm] bus`` at it; the lab is stopped at the
end, also on failure. For ``ifcfg``, the ifcfg configurator with a private
NetworkManager built with the ifcfg-rh plugin reading its files
(``ifcfg_lab``). A host without NetworkManager (or that build) or
dbus-python skips those runs, saying why. :func:`configured_agent` is the same for a
module whose fixture does more (a DHCP module removes its networks first).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.agent import Agent
from tests.functional.conftest import HostNs
from tests.functional.ifcfg_lab import running_ifcfg_agent
from tests.functional.nm_lab import NmLab, why_no_nm

CONFIGURATORS = ("iproute2", "nm", "ifcfg")


@contextlib.contextmanager
def configured_agent(configurator: str, host: HostNs, root: Path) -> Iterator[Agent]:
    """An agent whose ``[vars] net_configurator`` is ``configurator``."""
    if configurator == "iproute2":
        agent = Agent(host, root)
        agent.write_config()
        yield agent
        return
    if configurator == "ifcfg":
        with running_ifcfg_agent(host, root) as agent:
            yield agent
        return
    why = why_no_nm()
    if why is not None:
        pytest.skip(why)
    lab = NmLab(host.name, root / "nm")
    lab.start()
    try:
        agent = Agent(host, root, configurator="nm", nm_bus=lab.address)
        agent.nm = lab  # type: ignore[attr-defined]
        agent.write_config()
        yield agent
    finally:
        lab.stop()


@pytest.fixture(params=CONFIGURATORS)
def agent(request: pytest.FixtureRequest, host_ns: HostNs, tmp_path: Path) -> Iterator[Agent]:
    with configured_agent(request.param, host_ns, tmp_path) as agent:
        yield agent
