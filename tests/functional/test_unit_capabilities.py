"""superd does its whole job with only the capabilities its unit grants.

No systemd runs here, so the unit's ``CapabilityBoundingSet=`` and
``NoNewPrivileges=`` are applied with ``setpriv`` to the real superd of a
Lab; its dhclient inherits them, as under systemd. A bridged network with a
static address and the default route, then a DHCP network against a real
dnsmasq, then their removal all succeed, and superd's bounding set is the
unit's.
"""

from __future__ import annotations

import configparser
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.lab import MGMT_NET, MGMT_NET_ATTRS, Lab
from tests.functional.dnsmasq import dnsmasq_path, serving_the_peer

pytestmark = [
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl"),
    pytest.mark.skipif(dnsmasq_path() is None, reason="dnsmasq is not installed"),
    pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)"),
]
UNIT = Path(__file__).resolve().parents[2] / "init" / "systemd" / "netreload-superd.service"
# linux/capability.h
CAP_BITS = {"CAP_CHOWN": 0, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7,
            "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11, "CAP_NET_ADMIN": 12,
            "CAP_NET_RAW": 13, "CAP_DAC_OVERRIDE": 1, "CAP_SYS_ADMIN": 21}  # fmt: skip
NO_CHECK = {"connectivityCheck": False}


def unit_capabilities() -> list[str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return parser["Service"]["CapabilityBoundingSet"].split()


def as_the_unit_runs_it() -> tuple[str, ...]:
    caps = ",".join(f"+{cap.removeprefix('CAP_').lower()}" for cap in unit_capabilities())
    return ("setpriv", f"--bounding-set=-all,{caps}", "--inh-caps=-all", "--no-new-privs")


@pytest.fixture
def lab() -> Iterator[Lab]:
    with Lab(prefix="nru-") as the_lab:
        the_lab.start_superd(prefix=as_the_unit_runs_it())
        the_lab.start_frontd()
        yield the_lab


def bounding_set(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return int(line.split()[1], 16)
    raise AssertionError("no CapBnd")


def dynamic_ipv4(lab: Lab, device: str) -> list[str]:
    entries = lab.ip_json("-4", "addr", "show", "dev", device)
    return [a["local"] for e in entries for a in e.get("addr_info", []) if a.get("dynamic")]


def test_superd_configures_static_and_dhcp_networks_with_its_units_capabilities(
    lab: Lab, tmp_path: Path
) -> None:
    assert lab.superd is not None
    expected = sum(1 << CAP_BITS[cap] for cap in unit_capabilities())
    assert bounding_set(lab.superd.pid) == expected
    engine = lab.engine()

    def setup(networks: dict) -> int:
        request = {"networks": networks, "bondings": {}, "options": NO_CHECK}
        return engine.result("Host.setupNetworks", request)["code"]

    assert setup({MGMT_NET: MGMT_NET_ATTRS}) == 0
    (route,) = lab.ip_json("-4", "route", "show", "default")
    assert route["dev"] == MGMT_NET and route["gateway"] == MGMT_NET_ATTRS["gateway"]
    assert setup({MGMT_NET: {"remove": True}}) == 0
    with serving_the_peer(lab.engine_ns, tmp_path / "dnsmasq", "10.68.0"):
        dhcp = {"nic": "veth_0", "bootproto": "dhcp", "blockingdhcp": True}
        assert setup({"dyn": dhcp}) == 0
        assert dynamic_ipv4(lab, "dyn")[0].startswith("10.68.0.")
        assert setup({"dyn": {"remove": True}}) == 0
    assert "dyn" not in {link["ifname"] for link in lab.ip_json("link", "show")}
