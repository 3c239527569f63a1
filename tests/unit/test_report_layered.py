"""The report's sections a one-network change writes are layered over the
last report's (``shared.layered``): the change's entries copied, not the
host's; encoded, the report is the one a full build gives."""

from __future__ import annotations

from shared.layered import Layered
from shared.netinfo_incremental import IncrementalBuilder
from shared.netinfo_report import ReportBuilder
from shared.wire import to_json
from superd.monitor_report import plain_report
from tests.unit.test_netinfo_incremental import Host


def _add_and_remove(host: Host, builder: IncrementalBuilder) -> tuple[dict, dict]:
    host.apply(("add_bridge", "new0", ""))
    host.apply(("addr", "new0", "10.99.0.1"))
    host.apply(("network", "new0", "veth9"))
    host.next_version()
    added = host.build(builder)
    host.apply(("del", "new0", ""))
    host.apply(("unnetwork", "new0", ""))
    host.next_version()
    return added, host.build(builder)


def test_a_one_network_change_layers_the_sections_it_writes_over_the_last_reports() -> None:
    host = Host().with_networks(500, addressed=True)
    builder = IncrementalBuilder()
    first = host.build(builder)
    added, removed = _add_and_remove(host, builder)
    assert builder.full_builds == 1
    for section in ("bridges", "networks"):
        assert isinstance(added[section], Layered) and isinstance(removed[section], Layered)
        assert added[section].shares_base(removed[section])
        assert "new0" in added[section] and "new0" not in removed[section]
        assert "new0" not in first[section]  # the first report's, unchanged
    assert added["nics"] is first["nics"]


def test_a_small_hosts_sections_stay_dicts() -> None:
    host = Host().with_networks(10, addressed=True)
    builder = IncrementalBuilder()
    host.build(builder)
    added, removed = _add_and_remove(host, builder)
    assert type(added["bridges"]) is dict and type(removed["networks"]) is dict


def test_a_layered_report_encodes_as_a_full_build_does() -> None:
    host = Host().with_networks(80, addressed=True)  # above LAYERED_ABOVE
    builder = IncrementalBuilder()
    host.build(builder)
    for _ in range(3):
        host.apply(("add_bridge", "new0", ""))
        host.apply(("network", "new0", "veth9"))
        host.next_version()
        added = host.build(builder)
        assert to_json(plain_report(added)) == to_json(host.build(ReportBuilder(), False))
        host.apply(("del", "new0", ""))
        host.apply(("unnetwork", "new0", ""))
        host.next_version()
        removed = host.build(builder)
        assert to_json(plain_report(removed)) == to_json(host.build(ReportBuilder(), False))
    assert isinstance(added["bridges"], Layered) and isinstance(removed["networks"], Layered)
