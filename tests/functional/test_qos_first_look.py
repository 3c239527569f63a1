"""The iproute2 configurator's first look for netreload's hostQos trees
(``Iproute2Configurator.begin``): a fresh process looks once, before its
first change, while the host has its devices of before; a change that asks
for no shaping then dumps no qdisc after it (a big request's thousand new
bridges would be a thousand noqueue qdiscs to read). Real kernel, in a
namespace (a tree left by a previous process needs sch_hfsc: the unit
tests in ``tests/unit/test_qos_look_when_begun.py``, the VM lane's
``test_host_qos_kernel.py``)."""

from __future__ import annotations

from tests.functional.conftest import HostNs
from tests.functional.ns_exec import run_json

# The configurator in the namespace; every root-qdisc dump it makes is
# recorded (how many roots it read), the bridges added between its
# transaction's begin and its end, as a change's would be.
SCRIPT = """
import json, subprocess
from configurators import iproute2, tc_hfsc
from shared.config import Config
dumps = []
def counted(original):
    def dump(*args, **kwargs):
        roots = original(*args, **kwargs)
        dumps.append(len(roots))
        return roots
    return dump
if hasattr(iproute2, "root_qdiscs"):  # the configurator's own look
    iproute2.root_qdiscs = counted(iproute2.root_qdiscs)
tc_hfsc.root_qdiscs = counted(tc_hfsc.root_qdiscs)
configurator = iproute2.Iproute2Configurator(Config(fake_nics=("dummy_*", "veth_*")))
configurator.begin()
begun = list(dumps)
for i in range(BRIDGES):
    subprocess.run(["ip", "link", "add", f"bfl{i}", "up", "type", "bridge"], check=True)
changed = configurator.sync_host_qos({f"n{i}": {"bridged": True} for i in range(BRIDGES)})
configurator.commit()
configurator.close()
print(json.dumps({"begun": begun, "all": dumps, "changed": changed}))
"""


def first_transaction(host_ns: HostNs, bridges: int) -> dict:
    return run_json(host_ns.name, SCRIPT.replace("BRIDGES", str(bridges)))


def test_a_host_without_trees_is_looked_at_before_the_change_only(host_ns: HostNs) -> None:
    seen = first_transaction(host_ns, bridges=20)
    assert len(seen["begun"]) == 1  # the look, before the bridges came
    assert seen["all"] == seen["begun"]  # none after them
    assert seen["changed"] == []

