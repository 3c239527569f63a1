"""The live netinfo's states share their host-sized maps (``shared.layered``):
a one-device change copies what it changed, not the host, and the state it
replaces holds no copy of its own to free."""

from __future__ import annotations

from pathlib import Path

from superd.monitor import LAYERED
from tests.functional.conftest import HostNs
from tests.functional.monitor_lab import force_batch, monitor_config, watching


def _shared(old: object, new: object) -> list[str]:
    """The maps of ``LAYERED`` layered over the same base in both states (a
    read-only proxy's ``copy()`` is its mapping's: a Layered's shares it)."""
    return [name for name in LAYERED
            if getattr(getattr(old, name).copy(), "shares_base", lambda _: False)(
                getattr(new, name).copy())]  # fmt: skip


def test_a_one_device_change_shares_the_host_sized_maps_with_the_state_before(
    host: HostNs, tmp_path: Path
) -> None:
    config = monitor_config(tmp_path)  # more devices than BIG_MAP: layered maps
    force_batch(host.name, [cmd for i in range(80) for cmd in (
        f"link add nrlbr{i} type bridge", f"addr add 10.9.{i}.1/24 dev nrlbr{i}",
        f"link set nrlbr{i} up")])  # fmt: skip
    with watching(host.name, config) as (live, _ipr):
        before = live.resync()  # a fresh base: the overlay is empty
        with live.held():
            force_batch(host.name, ["link add nrlnew type bridge", "link set nrlnew up",
                                    "addr add 10.8.0.1/24 dev nrlnew"])  # fmt: skip
            added = live.refresh({"nrlnew"})
        (index,) = [i for i, x in added.links.items() if x["name"] == "nrlnew"]
        assert [a["address"] for a in added.addresses[index] if a["family"] == 4] == ["10.8.0.1"]
        assert added.by_src.get("10.8.0.1")  # its subnet route, indexed by source
        assert _shared(before, added) == list(LAYERED)
        with live.held():
            force_batch(host.name, ["link del nrlnew"])
            removed = live.refresh(set())
        assert index not in removed.links and index not in removed.addresses
        assert not removed.by_src.get("10.8.0.1") and index not in removed.by_oif
        assert _shared(before, removed) == list(LAYERED)
