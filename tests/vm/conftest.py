"""Fixtures for the VM lane: tests that need kernel modules this host lacks.

The tests in this folder run inside a virtme-ng guest booted with Debian's
stock kernel (bonding, 8021q, dummy, ... as modules); start them with
``tests/vm/run_vm_lane.sh``.  Run anywhere else, every test here is skipped
at collection time with the reason below.

There is deliberately no ``__init__.py`` here (rootdir conftest style), and
``testpaths`` in pyproject.toml leaves this folder out, so ``pytest`` and
``pytest tests/unit`` on the host never collect it.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent

#: Modules the lane needs, with parameters that keep them from creating
#: stray bond0 / dummy0 devices in the guest's root namespace.
VM_MODULES: dict[str, list[str]] = {
    "bonding": ["max_bonds=0"],
    "8021q": [],
    "dummy": ["numdummies=0"],
    # host QoS: HFSC, its leaf qdisc, the VLAN filters
    "sch_hfsc": [],
    "sch_fq_codel": [],
    "cls_basic": [],
    "em_meta": [],
    # bonding_driver = team (teamd loads a runner's mode module on demand;
    # loaded here so that a missing one fails the lane loudly)
    "team": [],
    "team_mode_roundrobin": [],
    "team_mode_activebackup": [],
    "team_mode_loadbalance": [],
    "team_mode_broadcast": [],
}

DEFAULT_DUMMY_NICS = 2
NETNS_PREFIX = "nrvm-"


# --------------------------------------------------------------------------
# Are we inside the virtme-ng guest?
# --------------------------------------------------------------------------


def _kernel_cmdline() -> list[str]:
    try:
        return Path("/proc/cmdline").read_text().split()
    except OSError:
        return []


def vm_lane_skip_reason() -> str | None:
    """Return why the VM lane cannot run here, or None inside the guest.

    virtme-ng passes its settings on the kernel command line
    (``virtme_hostname=``, ``virtme.exec=``, ``virtme_root_mods=`` ...), so the
    guest is recognised by those tokens.  run_vm_lane.sh also exports the
    host's kernel release as NETRELOAD_HOST_KERNEL; when set, the running
    kernel must differ from it (a second guard against being on the host).
    """
    if not any(
        tok.startswith(("virtme_", "virtme.")) for tok in _kernel_cmdline()
    ):
        return (
            "VM lane: not inside a virtme-ng guest (no virtme_* on "
            "/proc/cmdline); run tests/vm/run_vm_lane.sh instead"
        )
    host_kernel = os.environ.get("NETRELOAD_HOST_KERNEL")
    if host_kernel and host_kernel == platform.release():
        return (
            f"VM lane: running kernel {platform.release()} is the host's "
            "kernel; run tests/vm/run_vm_lane.sh instead"
        )
    if os.geteuid() != 0:
        return "VM lane: needs root inside the guest (vng --user root)"
    return None


def _in_this_folder(item: pytest.Item) -> bool:
    path = Path(str(item.path)).resolve()
    return path == HERE or HERE in path.parents


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "vm_dummy_nics(n): number of dummy_<i> NICs the vm_netns fixture "
        f"creates (default {DEFAULT_DUMMY_NICS})",
    )


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    # Hooks of a non-root conftest see every collected item: only touch ours.
    reason = vm_lane_skip_reason()
    if reason is None:
        return
    marker = pytest.mark.skip(reason=reason)
    for item in items:
        if _in_this_folder(item):
            item.add_marker(marker)


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd)!r} failed with status {proc.returncode}: "
            f"{proc.stderr.strip()}"
        )
    return proc


def ns_sysfs_read(netns: str, ifname: str, attr: str) -> str:
    """Read /sys/class/net/<ifname>/<attr> as seen from inside *netns*.

    The guest's /sys shows the devices of the namespace that mounted it (the
    root one), so reading it from here would not find the namespace's
    devices.  ``ip netns exec`` enters a private mount namespace and remounts
    /sys for the target namespace, so ``cat`` there reads the right device.
    """
    path = f"/sys/class/net/{ifname}/{attr}"
    return _run(["ip", "netns", "exec", netns, "cat", path]).stdout.strip()


def ns_ip_json(netns: str, *args: str) -> Any:
    """Run ``ip -n <netns> -j -d <args>`` and return the decoded JSON."""
    out = _run(["ip", "-n", netns, "-j", "-d", *args]).stdout
    return json.loads(out) if out.strip() else []


@contextlib.contextmanager
def vm_namespace(dummy_nics: int = DEFAULT_DUMMY_NICS) -> Iterator[str]:
    """Create a uniquely named netns holding dummy_0 .. dummy_<n-1>.

    Loopback is brought up; the dummy NICs are left down.  The namespace
    (and with it every device created inside) is deleted on exit, also when
    setting it up or the body fails.
    """
    name = f"{NETNS_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    _run(["ip", "netns", "add", name])
    try:
        batch = ["link set lo up"]
        batch += [f"link add dummy_{i} type dummy" for i in range(dummy_nics)]
        _run(["ip", "-n", name, "-batch", "-"], input="\n".join(batch) + "\n")
        yield name
    finally:
        _run(["ip", "netns", "del", name])


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def vm_kernel_modules() -> list[str]:
    """Load the modules the lane needs (once per boot); fail loudly if not."""
    for module, params in VM_MODULES.items():
        try:
            _run(["modprobe", module, *params])
        except RuntimeError as exc:
            pytest.fail(
                f"VM lane: cannot load kernel module {module!r} in the guest "
                f"(kernel {platform.release()}; is /lib/modules/"
                f"{platform.release()} installed on the host?): {exc}",
                pytrace=False,
            )
    return list(VM_MODULES)


@pytest.fixture
def vm_netns(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh network namespace with dummy NICs ``dummy_0`` .. ``dummy_<n-1>``.

    Yields the namespace name (use ``IPRoute(netns=name, flags=0)`` or
    ``ip -n name``).  n is 2 unless given by ``@pytest.mark.vm_dummy_nics(n)``
    or by indirect parametrization (``indirect=["vm_netns"]``).
    """
    count = getattr(request, "param", None)
    if count is None:
        marker = request.node.get_closest_marker("vm_dummy_nics")
        count = marker.args[0] if marker else DEFAULT_DUMMY_NICS
    with vm_namespace(int(count)) as name:
        yield name


@pytest.fixture
def ns_sysfs() -> Callable[[str, str, str], str]:
    """``ns_sysfs(netns, ifname, attr)`` -> stripped sysfs value."""
    return ns_sysfs_read


@pytest.fixture
def ns_ip() -> Callable[..., Any]:
    """``ns_ip(netns, "link", "show", "dev", "x")`` -> parsed ``ip -j -d``."""
    return ns_ip_json
