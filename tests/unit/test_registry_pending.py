"""Configurators.confirm / undo_pending: after a connectivity check, every
configurator is told, even when one of them fails (the first error is raised)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from configurators.registry import Configurators, Entry, registered
from shared.config import Config
from shared.errors import ErrorCode, NetError
from tests.unit.test_applier import OvsRecorder, Recorder


class FailingOvs(OvsRecorder):
    def confirm(self) -> None:
        self.calls.append(("ovs", "confirm", ""))
        raise NetError(ErrorCode.NM_CONNECTION, "checkpoint destroy: no answer")

    def undo_pending(self) -> None:
        self.calls.append(("ovs", "undo_pending", ""))
        raise NetError(ErrorCode.NM_CONNECTION, "checkpoint rollback: no answer")


class Default(Recorder):
    def confirm(self) -> None:
        self.calls.append(("legacy", "confirm", ""))

    def undo_pending(self) -> None:
        self.calls.append(("legacy", "undo_pending", ""))


@pytest.fixture
def calls() -> Iterator[list]:
    seen: list = []
    with registered(Entry("ovs", lambda config, made: FailingOvs(seen), switch="ovs")):
        yield seen


def _both(calls: list) -> Configurators:
    configurators = Configurators(Config(), {"iproute2": Default(calls)})
    configurators.for_switch("ovs")  # made, as a change with OVS networks makes it
    return configurators


@pytest.mark.parametrize("step", ["confirm", "undo_pending"])
def test_a_failing_configurator_does_not_keep_the_default_from_being_told(
    calls: list, step: str
) -> None:
    configurators = _both(calls)
    with pytest.raises(NetError, match="no answer"):
        if step == "confirm":
            configurators.confirm()
        else:
            configurators.undo_pending()
    assert calls == [("ovs", step, ""), ("legacy", step, "")]
