"""The iproute2 configurator's first look for netreload's hostQos trees:
taken when its first transaction begins (before the change's devices
exist), then trusted by the sync at the transaction's end. The kernel's
root qdiscs are given (the decision is pure); the real dump is
``tests/functional/test_qos_first_look.py``'s."""

from __future__ import annotations

from typing import Any

import pytest

from configurators import iproute2
from configurators.iproute2 import Iproute2Configurator
from configurators.tc_hfsc import ROOT_HANDLE
from shared.errors import ErrorCode, NetError


class _Kernel:
    raw = None

    def cache_addresses(self, on: bool) -> None:
        pass


def configurator(monkeypatch: pytest.MonkeyPatch, roots: Any) -> tuple[Iproute2Configurator, list]:
    """A configurator whose look reads ``roots`` (an exception: raised), and
    the HFSC syncs it started."""
    looks: list = []

    def root_qdiscs(ipr: Any, raw: Any = None) -> dict:
        looks.append(1)
        if isinstance(roots, Exception):
            raise roots
        return roots

    synced: list = []

    class Hfsc:
        def __init__(self, *args: Any) -> None:
            pass

        def sync(self, networks: Any, links: Any) -> list[str]:
            synced.append(dict(networks))
            return []

    monkeypatch.setattr(iproute2, "root_qdiscs", root_qdiscs)
    monkeypatch.setattr(iproute2, "HfscApplier", Hfsc)
    made = Iproute2Configurator.__new__(Iproute2Configurator)  # no kernel needed
    made.ipr, made.kernel, made._shaped = None, _Kernel(), None
    made.kernel.link_indexes = dict  # type: ignore[attr-defined]
    return made, synced


UNSHAPED = {"n1": {"bridged": True}}


def test_no_tree_found_when_begun_means_no_sync_at_the_end(monkeypatch) -> None:
    made, synced = configurator(monkeypatch, {3: {"kind": "noqueue", "handle": 0}})
    made.begin()
    assert made.sync_host_qos(UNSHAPED) == []
    assert synced == []


def test_a_tree_of_ours_found_when_begun_is_synced_at_the_end(monkeypatch) -> None:
    made, synced = configurator(monkeypatch, {3: {"kind": "hfsc", "handle": ROOT_HANDLE}})
    made.begin()
    made.sync_host_qos(UNSHAPED)
    assert synced == [UNSHAPED]  # its tree is not asked for any more: the sync drops it


def test_another_agents_hfsc_is_not_a_tree_of_ours(monkeypatch) -> None:
    made, synced = configurator(monkeypatch, {3: {"kind": "hfsc", "handle": 1 << 16}})
    made.begin()
    made.sync_host_qos(UNSHAPED)
    assert synced == []


def test_a_failed_look_leaves_the_sync_looking(monkeypatch) -> None:
    made, synced = configurator(monkeypatch, NetError(ErrorCode.FAILED_IFUP, "dump"))
    made.begin()  # the change goes on
    made.sync_host_qos(UNSHAPED)
    assert synced == [UNSHAPED]


def test_a_sync_without_a_transaction_still_looks(monkeypatch) -> None:
    made, synced = configurator(monkeypatch, {})
    made.sync_host_qos(UNSHAPED)  # restore-nets' sync of the host's trees
    assert synced == [UNSHAPED]


def test_the_look_is_taken_once_per_process(monkeypatch) -> None:
    made, _ = configurator(monkeypatch, {})
    made.begin()
    made.begin()
    assert made._shaped is False
