"""frontd's STOMP 1.2 / mutual TLS transport, driven by stomp.py (a client
library nobody on this project wrote) playing the engine.

frontd's STOMP server runs in-process on 127.0.0.1 with a free port, in
front of the real dispatcher and verbs, which talk to a fake superd on a
UNIX socket in a temporary folder. Certificates come from the ``openssl``
CLI into a temporary folder. Nothing here touches the host's networking.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import stomp
from stomp.exception import ConnectFailedException

from demo.engine import Collector
from demo.engine import connect_engine as engine
from demo.engine import send_request as request
from demo.pki import KEY_IDS, make_ca, make_leaf, make_pki
from frontd.api import NET_CHANGED_EVENT, HostApi
from frontd.jsonrpc import JsonRpcDispatcher
from frontd.stomp import StompServer, server_tls_context
from frontd.stomp_connection import DEFAULT_REPLY_TO, EVENTS
from frontd.stomp_limits import HELD_EVENTS
from frontd.superd_client import SuperdClient
from tests.unit.fake_superd import FakeSuperd, sample_caps

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
HOST = "127.0.0.1"
WAIT = 10.0


# -- certificates -------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = make_pki(tmp_path_factory.mktemp("pki"), host_ips=(HOST,), host_names=("localhost",))
    make_ca(folder, "rogue-ca")
    make_leaf(folder, "intruder", "rogue-ca", KEY_IDS + "extendedKeyUsage=clientAuth\n")
    return folder


# -- frontd in a thread ---------------------------------------------------------


class Frontd:
    def __init__(self, pki: Path, superd: FakeSuperd) -> None:
        self.client = SuperdClient(superd.path, timeout=WAIT)
        self.api = HostApi(self.client)
        self.rpc = JsonRpcDispatcher(self.api.table())
        tls = server_tls_context(pki / "host.crt", pki / "host.key", pki / "ca.crt")
        self.server = StompServer(self.rpc, tls)
        self.api.set_notify(self.server.publish_event)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()
        self._run(self.server.start(HOST, 0))
        self.port = self.server.port

    def _run(self, coroutine) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(WAIT)

    def stop(self) -> None:
        self._run(self.server.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)
        self.loop.close()
        self.rpc.shutdown(wait=True)
        self.client.close()


@pytest.fixture
def superd() -> Iterator[FakeSuperd]:
    with tempfile.TemporaryDirectory(prefix="nr-") as folder:
        with FakeSuperd(Path(folder) / "superd.sock") as fake:
            yield fake


@pytest.fixture
def frontd(pki: Path, superd: FakeSuperd) -> Iterator[Frontd]:
    server = Frontd(pki, superd)
    server.start()
    yield server
    server.stop()


# -- the engine, played by stomp.py: demo.lab's client ------------


def test_engine_requests_are_answered_on_the_reply_destination(
    frontd: Frontd, pki: Path, superd: FakeSuperd
) -> None:
    conn, got = engine(frontd.port, pki)
    try:
        conn.subscribe(DEFAULT_REPLY_TO, id="responses")
        ping = request(conn, "Host.ping2")
        caps = request(conn, "Host.getNetworkCapabilities")
        bad = request(
            conn,
            "Host.setupNetworks",
            {
                "networks": {"x": {"nic": "ens1f1", "vlan": 5000}},
                "bondings": {},
                "options": {"connectivityCheck": False},
            },
        )
        answer, frame = got.answer(ping)
        assert answer == {"jsonrpc": "2.0", "id": ping, "result": True}
        assert frame.headers["subscription"] == "responses"
        assert frame.headers["destination"] == DEFAULT_REPLY_TO
        assert frame.headers["content-type"] == "application/json"
        assert int(frame.headers["content-length"]) == len(frame.body.encode())
        assert frame.headers["message-id"]
        assert got.answer(caps)[0]["result"] == {**sample_caps(), "netConfigDirty": "False"}
        error = got.answer(bad)[0]["error"]
        assert error["code"] == 26 and "vlan" in error["message"]
        assert "apply_plan" not in superd.verbs()
    finally:
        conn.disconnect()


def test_setup_networks_succeeds_when_the_engine_pings_during_the_wait(
    frontd: Frontd, pki: Path, superd: FakeSuperd
) -> None:
    conn, got = engine(frontd.port, pki)
    watcher, events = engine(frontd.port, pki)
    try:
        conn.subscribe(DEFAULT_REPLY_TO, id="responses")
        watcher.subscribe(EVENTS, id="events", receipt="subscribed")
        events.wait_for(lambda: "subscribed" in events.receipts)
        setup = request(
            conn,
            "Host.setupNetworks",
            {
                "networks": {"vmnet": {"nic": "ens1f1", "vlan": 20, "bridged": True}},
                "bondings": {},
                "options": {"connectivityCheck": True, "connectivityTimeout": 5},
            },
        )
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:  # as the engine does while it waits
            ping = request(conn, "Host.ping2")
            got.answer(ping)
            if any(json.loads(f.body).get("id") == setup for f in got.messages):
                break
            time.sleep(0.2)
        assert got.answer(setup)[0]["result"] == {"code": 0, "message": "Done"}
        assert len(superd.plans()) == 1
        events.wait_for(lambda: len(events.messages) == 1)
        event = json.loads(events.messages[0].body)
        assert event["method"] == NET_CHANGED_EVENT and "id" not in event
        assert events.messages[0].headers["destination"] == EVENTS
    finally:
        conn.disconnect()
        watcher.disconnect()


def test_answer_goes_to_the_requested_reply_to(frontd: Frontd, pki: Path) -> None:
    conn, got = engine(frontd.port, pki)
    try:
        conn.subscribe("jms.topic.odd:name\\here", id="odd", receipt="r-sub")
        got.wait_for(lambda: "r-sub" in got.receipts)
        ping = request(conn, "Host.ping2", **{"reply-to": "jms.topic.odd:name\\here"})
        answer, frame = got.answer(ping)
        assert frame.headers["destination"] == "jms.topic.odd:name\\here"
        assert frame.headers["subscription"] == "odd"
    finally:
        conn.disconnect()


def test_receipts_are_answered(frontd: Frontd, pki: Path) -> None:
    conn, got = engine(frontd.port, pki)
    try:
        conn.subscribe(DEFAULT_REPLY_TO, id="s", receipt="r-1")
        request(conn, "Host.ping2", receipt="r-2")
        conn.unsubscribe(id="s", receipt="r-3")
        got.wait_for(lambda: {"r-1", "r-2", "r-3"} <= set(got.receipts))
    finally:
        conn.disconnect()


def test_events_reach_every_events_subscriber(frontd: Frontd, pki: Path) -> None:
    first, got_first = engine(frontd.port, pki)
    second, got_second = engine(frontd.port, pki)
    try:
        for conn, got in ((first, got_first), (second, got_second)):
            conn.subscribe(EVENTS, id="ev", receipt="ready")
            got.wait_for(lambda got=got: "ready" in got.receipts)
        frontd.server.publish_event("|net|host_conn|no_id", {"notify_time": 1})
        for got in (got_first, got_second):
            got.wait_for(lambda got=got: len(got.messages) == 1)
            assert json.loads(got.messages[0].body) == {
                "jsonrpc": "2.0",
                "method": "|net|host_conn|no_id",
                "params": {"notify_time": 1},
            }
    finally:
        first.disconnect()
        second.disconnect()


def test_events_published_while_no_one_listens_go_to_the_first_subscriber_only(
    frontd: Frontd, pki: Path
) -> None:
    for stamp in (1, 2):
        frontd.server.publish_event("|net|host_conn|no_id", {"notify_time": stamp})
    first, got_first = engine(frontd.port, pki)
    second, got_second = engine(frontd.port, pki)
    try:
        first.subscribe(EVENTS, id="ev", receipt="ready")
        got_first.wait_for(lambda: len(got_first.messages) == 2)
        assert got_first.receipts == ["ready"]
        stamps = [json.loads(m.body)["params"]["notify_time"] for m in got_first.messages]
        assert stamps == [1, 2]
        second.subscribe(EVENTS, id="ev", receipt="ready")
        got_second.wait_for(lambda: "ready" in got_second.receipts)
        frontd.server.publish_event("|net|host_conn|no_id", {"notify_time": 3})
        got_second.wait_for(lambda: len(got_second.messages) == 1)
        assert json.loads(got_second.messages[0].body)["params"]["notify_time"] == 3
    finally:
        first.disconnect()
        second.disconnect()


def test_a_late_subscriber_gets_only_the_newest_held_events(frontd: Frontd, pki: Path) -> None:
    for stamp in range(HELD_EVENTS + 5):
        frontd.server.publish_event("|net|host_conn|no_id", {"notify_time": stamp})
    conn, got = engine(frontd.port, pki)
    try:
        conn.subscribe(EVENTS, id="ev", receipt="ready")
        got.wait_for(lambda: len(got.messages) == HELD_EVENTS)
        stamps = [json.loads(m.body)["params"]["notify_time"] for m in got.messages]
        assert stamps == list(range(5, HELD_EVENTS + 5))
    finally:
        conn.disconnect()


@pytest.mark.parametrize("cert", [None, "intruder"])
def test_client_without_a_certificate_of_the_ca_is_refused(
    frontd: Frontd, pki: Path, superd: FakeSuperd, cert: str | None
) -> None:
    conn = stomp.Connection12([(HOST, frontd.port)], reconnect_attempts_max=1, timeout=WAIT)
    conn.set_ssl(
        for_hosts=[(HOST, frontd.port)],
        key_file=str(pki / f"{cert}.key") if cert else None,
        cert_file=str(pki / f"{cert}.crt") if cert else None,
        ca_certs=str(pki / "ca.crt"),
    )
    collector = Collector()
    conn.set_listener("collector", collector)
    try:
        # With TLS 1.3 the client finishes its side of the handshake before
        # the server checks its certificate, and stomp.py does not notice a
        # server closing before CONNECTED: never wait(=True) here.
        conn.connect(wait=False)
    except (ConnectFailedException, OSError):
        pass
    try:
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            assert not conn.is_connected()
            time.sleep(0.1)
    finally:
        conn.transport.disconnect_socket()
    assert not frontd.server.connections
    assert superd.verbs() == []


@pytest.mark.parametrize("cert", [None, "intruder"])
def test_server_aborts_tls_for_a_client_outside_the_ca(
    frontd: Frontd, pki: Path, cert: str | None
) -> None:
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    if cert:
        context.load_cert_chain(str(pki / f"{cert}.crt"), str(pki / f"{cert}.key"))
    sock = socket.create_connection((HOST, frontd.port), timeout=WAIT)
    try:
        with context.wrap_socket(sock, server_hostname=HOST) as tls:
            tls.sendall(CONNECT)
            answer = tls.recv(1024)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        answer = b""  # the TLS alert, or the reset behind it
    assert answer == b"", "no STOMP frame for a client the CA did not sign"


# -- raw TLS, for what a well-behaved client library never sends ----------------


def raw_client(frontd: Frontd, pki: Path) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "engine.crt"), str(pki / "engine.key"))
    sock = socket.create_connection((HOST, frontd.port), timeout=WAIT)
    return context.wrap_socket(sock, server_hostname=HOST)


def read_until_closed(sock: ssl.SSLSocket, timeout: float = WAIT) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ssl.SSLError, ConnectionResetError):
            return data
        if not chunk:
            return data
        data += chunk


def read_frame(sock: ssl.SSLSocket) -> bytes:
    data = b""
    while b"\0" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        data += chunk
    return data


CONNECT = b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\0"


@pytest.mark.parametrize(
    "garbage",
    [
        b"SEND\ndestination:jms.topic.vdsm_requests\nbad:escape\\x\n\n{}\0",
        b"FROB\n\n\0",
        b"SEND\nno colon here\n\n\0",
        b"SEND\ndestination:jms.topic.vdsm_requests\ncontent-length:2\n\n{}}\0",
        b"SEND\ndestination:jms.topic.vdsm_requests\ncontent-length:99999999\n\n",
        b"SEND\ndestination:jms.topic.elsewhere\n\n{}\0",
        b"BEGIN\ntransaction:t\n\n\0",
    ],
)
def test_malformed_frame_gets_error_and_close_while_others_are_served(
    frontd: Frontd, pki: Path, garbage: bytes
) -> None:
    conn, got = engine(frontd.port, pki)
    try:
        conn.subscribe(DEFAULT_REPLY_TO, id="responses")
        with raw_client(frontd, pki) as raw:
            raw.sendall(CONNECT)
            assert read_frame(raw).startswith(b"CONNECTED\n")
            raw.sendall(garbage)
            rest = read_until_closed(raw)
        assert rest.startswith(b"ERROR\n") and rest.endswith(b"\0")
        assert b"\nmessage:" in rest
        assert got.answer(request(conn, "Host.ping2"))[0]["result"] is True
    finally:
        conn.disconnect()


def test_frame_before_connect_is_an_error(frontd: Frontd, pki: Path) -> None:
    with raw_client(frontd, pki) as raw:
        raw.sendall(b"SUBSCRIBE\nid:1\ndestination:x\nreceipt:r9\n\n\0")
        reply = read_until_closed(raw)
    assert reply.startswith(b"ERROR\n") and b"\nreceipt-id:r9\n" in reply


def test_unsupported_version_is_refused(frontd: Frontd, pki: Path) -> None:
    with raw_client(frontd, pki) as raw:
        raw.sendall(b"CONNECT\naccept-version:1.0,1.1\n\n\0")
        reply = read_until_closed(raw)
    assert reply.startswith(b"ERROR\n") and b"\nversion:1.2\n" in reply


def test_heart_beats_are_negotiated_and_sent(frontd: Frontd, pki: Path) -> None:
    with raw_client(frontd, pki) as raw:
        raw.sendall(b"CONNECT\naccept-version:1.2\nheart-beat:0,1500\n\n\0")
        connected = read_frame(raw)
        assert b"\nheart-beat:1500,0\n" in connected
        raw.settimeout(WAIT)
        started = time.monotonic()
        assert raw.recv(16) == b"\n"
        assert 1.0 < time.monotonic() - started < 4.0


def test_silent_client_is_dropped_after_missed_heart_beats(frontd: Frontd, pki: Path) -> None:
    with raw_client(frontd, pki) as raw:
        raw.sendall(b"CONNECT\naccept-version:1.2\nheart-beat:1000,0\n\n\0")
        assert b"\nheart-beat:0,1000\n" in read_frame(raw)
        started = time.monotonic()
        read_until_closed(raw)
        assert 1.5 < time.monotonic() - started < 6.0


def test_client_heart_beats_keep_the_connection(frontd: Frontd, pki: Path) -> None:
    with raw_client(frontd, pki) as raw:
        raw.sendall(b"CONNECT\naccept-version:1.2\nheart-beat:1000,0\n\n\0")
        read_frame(raw)
        for _ in range(6):
            time.sleep(0.5)
            raw.sendall(b"\r\n")
        raw.sendall(b"DISCONNECT\nreceipt:bye\n\n\0")
        assert b"RECEIPT\nreceipt-id:bye\n" in read_until_closed(raw)


def test_content_length_body_and_escaped_headers(frontd: Frontd, pki: Path) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": "cl", "method": "Host.ping2"}).encode()
    with raw_client(frontd, pki) as raw:
        raw.sendall(CONNECT)
        read_frame(raw)
        raw.sendall(b"SUBSCRIBE\nid:a\\cb\ndestination:q\\\\x\\ny\n\n\0")
        raw.sendall(
            b"SEND\ndestination:jms.topic.vdsm_requests\nreply-to:q\\\\x\\ny\n"
            b"content-length:%d\n\n%s\0" % (len(body), body)
        )
        message = read_frame(raw)
    head, _, rest = message.partition(b"\n\n")
    assert head.startswith(b"MESSAGE\n")
    assert b"\nsubscription:a\\cb" in head and b"\ndestination:q\\\\x\\ny" in head
    assert json.loads(rest.rstrip(b"\0")) == {"jsonrpc": "2.0", "id": "cl", "result": True}


# -- the daemon itself ------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _proc_ids(pid: int) -> dict[str, str]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {
        k: v.split()
        for k, v in (line.split(":", 1) for line in status)
        if k in ("Uid", "Gid", "Groups")
    }


def test_daemon_drops_privileges_serves_both_transports_and_stops_on_sigterm(
    pki: Path,
) -> None:
    nobody = pwd.getpwnam("nobody")
    with tempfile.TemporaryDirectory(prefix="nr-") as name:
        folder = Path(name)
        folder.chmod(0o755)  # the unprivileged daemon reaches superd's socket
        port = _free_port()
        config = folder / "netreload.conf"
        config.write_text(
            f"[superd]\nsocket = {folder}/superd.sock\n"
            f"[frontd]\nuser = nobody\nunix_socket = {folder}/frontd.sock\n"
            f"stomp_listen = {HOST}:{port}\n"
            f"tls_cert = {pki}/host.crt\ntls_key = {pki}/host.key\ntls_ca = {pki}/ca.crt\n"
        )
        with FakeSuperd(folder / "superd.sock") as superd:
            (folder / "superd.sock").chmod(0o777)
            daemon = subprocess.Popen(
                [sys.executable, "-m", "frontd.main", "--config", str(config)],
                cwd=Path(__file__).resolve().parents[2],
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                deadline = time.monotonic() + WAIT
                while not (folder / "frontd.sock").exists() or not _accepts(port):
                    assert daemon.poll() is None, daemon.stderr.read()  # type: ignore[union-attr]
                    assert time.monotonic() < deadline, "frontd did not start"
                    time.sleep(0.1)
                if os.geteuid() == 0:
                    ids = _proc_ids(daemon.pid)
                    assert ids["Uid"] == [str(nobody.pw_uid)] * 4
                    assert ids["Gid"] == [str(nobody.pw_gid)] * 4
                    assert ids["Groups"] == []
                with socket.socket(socket.AF_UNIX) as local:
                    local.settimeout(WAIT)
                    local.connect(str(folder / "frontd.sock"))
                    local.sendall(b'{"jsonrpc":"2.0","id":"l1","method":"Host.ping2"}\n')
                    assert json.loads(local.makefile().readline())["result"] is True
                conn, got = engine(port, pki)
                try:
                    conn.subscribe(DEFAULT_REPLY_TO, id="r")
                    assert got.answer(request(conn, "Host.ping2"))[0]["result"] is True
                finally:
                    conn.disconnect()
                # (frontd's event relay long-polls "events" on its own)
                verbs = [verb for verb in superd.verbs() if verb != "events"]
                assert verbs == ["confirm_connectivity", "confirm_connectivity"]
            finally:
                daemon.send_signal(signal.SIGTERM)
                try:
                    code = daemon.wait(WAIT)
                except subprocess.TimeoutExpired:
                    daemon.kill()
                    daemon.wait()
                    raise
                log = daemon.stderr.read()  # type: ignore[union-attr]
                daemon.stderr.close()  # type: ignore[union-attr]
            assert code == 0, log
            assert "shutting down" in log


def _accepts(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=1).close()
    except OSError:
        return False
    return True
