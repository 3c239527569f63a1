"""frontd's planner view of superd's netinfo answer (``NetinfoSnapshot``),
made once per answer; an answer patched from one whose view was made checks
only the entries the delta set, never walks the host's report again."""

from __future__ import annotations

import pytest

from frontd.api import _Netinfo, _patched, _snapshot
from shared import netinfo_delta as delta
from shared.errors import ErrorCode, NetError
from shared.netmodel.snapshot import NetinfoSnapshot


class NotWalked(dict):
    """A report section that may be looked up by name but not walked."""

    def values(self):  # type: ignore[override]
        raise AssertionError("walked every entry")

    def items(self):  # type: ignore[override]
        raise AssertionError("walked every entry")

    def __iter__(self):  # type: ignore[override]
        raise AssertionError("walked every entry")


def caps(n: int, *extra: str, nameservers: tuple[str, ...] = ("192.0.2.53",)) -> dict:
    names = [f"bn{i}" for i in range(n)] + list(extra)
    return {
        "bridges": {x: {"ports": [], "stp": "off", "mtu": "1500"} for x in names},
        "networks": {x: {"iface": x, "bridged": True} for x in names},
        "nics": {"eth0": {"mtu": "1500"}},
        "vlans": {},
        "bondings": {},
        "nameservers": list(nameservers),
    }


def answer_from(held: _Netinfo, new_caps: dict, owned: frozenset[str]) -> _Netinfo:
    change = {"caps": delta.diff(held.caps, new_caps), "running": {}, "owned":
              delta.diff_names(held.owned, owned)}  # fmt: skip
    fresh = _patched(held, {"token": f"{held.token}+", "base": held.token, "delta": change})
    assert fresh is not None
    return fresh


@pytest.mark.parametrize(
    "after",
    [
        caps(50, "bnX"),  # a network added
        caps(49),  # one removed
        caps(50, nameservers=("192.0.2.1",)),  # a whole key set
        {k: v for k, v in caps(50).items() if k != "vlans"},  # a section gone
        {**caps(50), "nics": []},  # a section that is not one any more
    ],
    ids=["added", "removed", "nameservers", "section-gone", "section-replaced"],
)
def test_a_patched_answers_view_is_the_view_of_its_report(after: dict) -> None:
    held = _Netinfo("t1", caps(50), {}, frozenset({"bn1"}))
    _snapshot(held)
    fresh = answer_from(held, after, frozenset({"bn1", "bnX"}))
    try:
        expected = NetinfoSnapshot.from_caps(after, fresh.owned)
    except NetError as error:
        with pytest.raises(NetError) as raised:
            _snapshot(fresh)
        assert raised.value.code == error.code and str(raised.value) == str(error)
        return
    assert _snapshot(fresh) == expected
    assert fresh.base is None  # the view before let go


def test_a_patched_answers_view_checks_only_the_entries_the_delta_set() -> None:
    held = _Netinfo("t1", caps(2000), {}, frozenset())
    _snapshot(held)
    fresh = answer_from(held, caps(2000, "bnX"), frozenset({"bnX"}))
    fresh.caps = {key: NotWalked(value) if isinstance(value, dict) else value
                  for key, value in fresh.caps.items()}  # fmt: skip
    view = _snapshot(fresh)
    assert "bnX" in view.bridges and "bnX" in view.networks and view.owned == {"bnX"}


def test_a_bad_entry_in_a_delta_is_refused() -> None:
    held = _Netinfo("t1", caps(5), {}, frozenset())
    _snapshot(held)
    bad = caps(5)
    bad["bridges"]["bnX"] = "not an object"  # type: ignore[assignment]
    fresh = answer_from(held, bad, frozenset())
    with pytest.raises(NetError) as raised:
        _snapshot(fresh)
    assert raised.value.code == ErrorCode.BAD_PARAMS
    assert "bridges must map names to objects" in str(raised.value)
