"""What an authenticated engine connection still may not do, on the real
daemons over STOMP/TLS (a Lab: superd as root, frontd dropped to
``nobody``, clients in the engine namespace).

* Answers go to response destinations only: a ``reply-to`` naming the events
  queue (or the requests topic) is refused with a STOMP ERROR frame and the
  request is not run, so an answer can never be held and handed out as a
  notification.
* A nameserver is an address and nothing more: ``fe80::1%x options ndots:15``
  is refused (code 22) and resolv.conf is left as it was.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from demo.engine import EngineError
from demo.lab import MGMT_NET, MGMT_NET_ATTRS, Lab, run_ip
from frontd.stomp_connection import EVENTS, REQUESTS
from tests.functional.wire_clients import (
    HOSTILE_IP,
    Site,
    is_error_frame,
    read_until_closed,
    send_frame,
    stomp_py,
)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with Lab(prefix="nrb-") as lab:
        run_ip("-n", lab.engine_ns, "addr", "add", f"{HOSTILE_IP}/24", "dev", "p_1")
        lab.start()
        the_site = Site(lab, [])
        try:
            yield the_site
        finally:
            the_site.close()


def ping(request_id: str) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "Host.ping2"}).encode()


def events_waiting(site: Site) -> list[dict[str, Any]]:
    """What a new subscriber of the events queue is handed (what was held)."""

    def subscribe() -> list[dict[str, Any]]:
        conn, got = stomp_py(site.lab.pki)
        try:
            conn.subscribe(EVENTS, id="events", receipt="events")
            got.wait_for(lambda: "events" in got.receipts)
            time.sleep(0.5)  # held messages follow the receipt at once
            return got.events()
        finally:
            conn.disconnect()

    return site.run(subscribe)


@pytest.mark.parametrize("reply_to", [EVENTS, f"{EVENTS}.x", REQUESTS])
def test_reply_to_a_reserved_destination_is_refused_and_not_run(
    site: Site, reply_to: str
) -> None:
    request_id = str(uuid.uuid4())
    raw = site.stomp()
    try:
        raw.sendall(send_frame(ping(request_id), reply_to))
        data, closed = read_until_closed(raw)
    finally:
        raw.close()
    assert is_error_frame(data) and b"not a response destination" in data, data
    assert closed
    assert all(event.get("id") != request_id for event in events_waiting(site))


def test_a_nameserver_with_resolver_options_is_refused(site: Site) -> None:
    resolv = site.lab.root / "resolv.conf"
    before = resolv.read_text()
    engine = site.lab.engine()
    attrs = {**MGMT_NET_ATTRS, "nameservers": ["fe80::1%x options ndots:15"]}
    with pytest.raises(EngineError) as error:
        engine.result(
            "Host.setupNetworks",
            {"networks": {MGMT_NET: attrs}, "bondings": {},
             "options": {"connectivityCheck": False}},
        )  # fmt: skip
    assert error.value.code == 22 and "nameserver" in error.value.message
    assert resolv.read_text() == before
    assert MGMT_NET not in site.lab.running_config()["nets"]
