"""The systemd units, tmpfiles.d/sysusers.d snippets and sample
configuration under init/: what they enforce, and that systemd accepts them.

``systemd-analyze verify`` needs every ExecStart binary to exist: it runs
on copies whose ``/usr/bin/netreload*`` are this tree's installed console
scripts (the same entry points, the same arguments). Any message from it —
an unknown key, a bad value, a missing dependency — fails the test.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shared.config import load_config

INIT = Path(__file__).resolve().parents[2] / "init"
UNITS = sorted((INIT / "systemd").glob("*.service"))
SCRIPTS = Path(sys.executable).parent


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(INIT / "systemd" / name)
    return parser


def service(name: str) -> dict[str, str]:
    return dict(unit(name)["Service"])


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_accepts_every_unit(tmp_path: Path) -> None:
    for path in UNITS:
        text = path.read_text()
        for script in ("netreload-superd", "netreload-frontd", "netreload"):
            text = text.replace(f"/usr/bin/{script} ", f"{SCRIPTS / script} ")
        assert "/usr/bin/netreload" not in text, path.name
        (tmp_path / path.name).write_text(text)
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *(str(tmp_path / p.name) for p in UNITS)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0 and not (proc.stdout + proc.stderr).strip(), proc.stderr


def test_daemons_are_type_notify() -> None:
    for name in ("netreload-superd.service", "netreload-frontd.service"):
        assert service(name)["Type"] == "notify", name


def test_superd_keeps_only_the_capabilities_it_uses() -> None:
    caps = set(service("netreload-superd.service")["CapabilityBoundingSet"].split())
    assert caps == {"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE", "CAP_CHOWN"}


def test_frontd_runs_as_its_user_without_capabilities() -> None:
    frontd = service("netreload-frontd.service")
    assert frontd["User"] == load_config(INIT / "netreload.conf").frontd_user
    assert frontd["CapabilityBoundingSet"] == "" and frontd["AmbientCapabilities"] == ""


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_every_unit_is_sandboxed(path: Path) -> None:
    settings = service(path.name)
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "RestrictNamespaces": "yes",
        "SystemCallFilter": "@system-service",
    }.items():
        assert settings.get(key) == value, (path.name, key)
    assert "RestrictAddressFamilies" in settings and "CapabilityBoundingSet" in settings


def test_frontd_user_home_is_not_superds_lib_dir() -> None:
    lib_dir = str(load_config(INIT / "netreload.conf").lib_dir)
    (line,) = [
        line for line in (INIT / "sysusers.d-netreload.conf").read_text().splitlines()
        if line.startswith("u ")
    ]  # fmt: skip
    assert lib_dir not in line


def test_state_folders_are_not_world_readable() -> None:
    modes = {}
    for line in (INIT / "tmpfiles.d-netreload.conf").read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == "d":
            modes[fields[1]] = int(fields[2], 8)
    assert modes["/run/netreload/netconf"] & 0o007 == 0
    assert modes["/var/lib/netreload"] & 0o007 == 0
    assert modes["/run/netreload"] & 0o004 == 0


def test_sample_configuration_counts_no_virtual_device_as_a_nic() -> None:
    assert load_config(INIT / "netreload.conf").fake_nics == ()


def test_the_upgrade_runs_once_after_the_network_and_before_restore_nets() -> None:
    upgrade = unit("netreload-upgrade.service")
    after = upgrade["Unit"]["After"].split()
    before = upgrade["Unit"]["Before"].split()
    assert {"network.target", "network.service", "NetworkManager-wait-online.service"} <= set(after)
    assert {"netreload-superd.service", "netreload-restore-nets.service"} <= set(before)
    marker = upgrade["Unit"]["ConditionPathExists"]
    defaults = load_config(INIT / "netreload.conf")
    assert marker == "!" + str(defaults.lib_dir / "upgrade" / "unified-persistence")
    assert service("netreload-upgrade.service")["ExecStart"].endswith(
        " upgrade-unified-persistence"
    )
    # no cycle: restore-nets is before network-online.target, which the
    # upgrade must not wait for
    assert "network-online.target" not in after
