"""The configurators the behaviour tests run against, as one pytest fixture.

``agent`` (imported by a test module) is parametrized over ``iproute2`` and
``nm``: for ``nm`` a private NetworkManager is started in the test's
namespace (``nm_lab``) and the agent's configuration points ``[nm] bus`` at
it; the lab is stopped at the end, also on failure. A host without
NetworkManager or dbus-python skips the ``nm`` runs, saying why.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.functional.agent import Agent
from tests.functional.conftest import HostNs
from tests.functional.nm_lab import NmLab, why_no_nm

CONFIGURATORS = ("iproute2", "nm")


@pytest.fixture(params=CONFIGURATORS)
def agent(request: pytest.FixtureRequest, host_ns: HostNs, tmp_path: Path) -> Iterator[Agent]:
    if request.param == "iproute2":
        agent = Agent(host_ns, tmp_path)
        agent.write_config()
        yield agent
        return
    why = why_no_nm()
    if why is not None:
        pytest.skip(why)
    lab = NmLab(host_ns.name, tmp_path / "nm")
    lab.start()
    try:
        agent = Agent(host_ns, tmp_path, configurator="nm", nm_bus=lab.address)
        agent.nm = lab  # type: ignore[attr-defined]
        agent.write_config()
        yield agent
    finally:
        lab.stop()
