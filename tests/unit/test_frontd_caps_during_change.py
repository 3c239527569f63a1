"""frontd's capabilities while a network change is at superd: the report the
change was planned against, never superd's view of the change half done
(``tests/functional/test_load.py`` shows the half views a real superd gives
meanwhile). A fake superd on a UNIX socket holds back its apply_plan answer.
"""

from __future__ import annotations

import copy
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from frontd.api import HostApi
from frontd.superd_client import SuperdClient
from tests.unit.fake_superd import FakeSuperd

NETWORK = {"vmnet": {"nic": "ens1f1", "vlan": 20, "ipaddr": "203.0.113.5", "prefix": 24}}
APPLY_SECONDS = 0.5


@pytest.fixture
def superd() -> Iterator[FakeSuperd]:
    with tempfile.TemporaryDirectory(prefix="nr-") as folder:
        with FakeSuperd(Path(folder) / "superd.sock") as fake:
            fake.delay["apply_plan"] = APPLY_SECONDS
            yield fake


@pytest.fixture
def api(superd: FakeSuperd) -> Iterator[HostApi]:
    client = SuperdClient(superd.path, timeout=10)
    yield HostApi(client)
    client.close()


def start_setup(api: HostApi, superd: FakeSuperd) -> threading.Thread:
    """setupNetworks in a thread; returns once superd has the plan, with
    superd's report already changed (as superd's is, midway)."""
    options = {"connectivityCheck": False}
    thread = threading.Thread(target=api.setup_networks, args=(NETWORK, {}, options))
    thread.start()
    deadline = time.monotonic() + 5
    while "apply_plan" not in superd.verbs():
        assert time.monotonic() < deadline, "the plan never reached superd"
        time.sleep(0.01)
    changed = copy.deepcopy(superd.caps)
    changed["networks"]["vmnet"] = {"iface": "vmnet", "missing": True}
    superd.caps = changed
    return thread


def test_caps_read_during_a_change_are_the_report_it_was_planned_against(
    api: HostApi, superd: FakeSuperd
) -> None:
    before = copy.deepcopy(superd.caps["networks"])
    thread = start_setup(api, superd)
    try:
        asked = superd.verbs().count("netinfo")
        during = api.get_capabilities()["networks"]
        assert thread.is_alive(), "the change ended before the read: make APPLY_SECONDS longer"
        assert during == before
        assert superd.verbs().count("netinfo") == asked  # not read from superd meanwhile
    finally:
        thread.join(10)


def test_caps_read_after_a_change_are_superds_new_report(api: HostApi, superd: FakeSuperd) -> None:
    thread = start_setup(api, superd)
    thread.join(10)
    assert api.get_capabilities()["networks"]["vmnet"] == {"iface": "vmnet", "missing": True}
