"""Benchmark 7 times its pairs after an untimed warm-up pair, the same for
every N and for the kernel-alone reference: the lab's first, cold pair
(round 11's empty host: 12.6 ms beside 5.7–7.4 ms) is no sample."""

from __future__ import annotations

import pytest

from benchmarks import scale

COLD, WARM = 9.0, 1.0


class _Engine:
    def __init__(self) -> None:
        self.calls = 0

    def command(self, command: dict) -> dict:
        self.calls += 1
        return {"seconds": COLD if self.calls <= 2 else WARM}


class _Lab:
    def cpu_split(self) -> dict[str, tuple[float, float]]:
        return {"superd": (0.0, 0.0), "frontd": (0.0, 0.0)}


def test_one_network_pairs_leave_the_cold_first_pair_out(monkeypatch: pytest.MonkeyPatch) -> None:
    cli = iter([COLD, COLD] + [WARM] * 20)
    monkeypatch.setattr(scale, "_cli", lambda lab, request: next(cli))
    samples, _ = scale.add_remove_one(_Lab(), _Engine(), 10, runs=3)  # type: ignore[arg-type]
    assert samples == {what: [WARM] * 3 for what in
                       ("add STOMP", "remove STOMP", "add CLI", "remove CLI")}  # fmt: skip


def test_the_kernel_alone_leaves_its_cold_first_pair_out(monkeypatch: pytest.MonkeyPatch) -> None:
    seconds = iter([COLD, COLD] + [WARM] * 20)
    monkeypatch.setattr(scale, "_ip_seconds", lambda *args, **kwargs: next(seconds))
    monkeypatch.setattr(scale, "bridges_without_ipv6", lambda ns: _Nothing())
    assert scale.kernel_one("ns", 10, runs=3) == {"add kernel": [WARM] * 3,
                                                   "remove kernel": [WARM] * 3}  # fmt: skip


class _Nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None
