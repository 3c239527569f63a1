"""Who may call frontd over STOMP/TLS beyond "signed by tls_ca": a CRL
(``[frontd] tls_crl``) and an allow-list (``[frontd] tls_allowed_clients``),
on the real daemons (a Lab). Certificates and the CRL come from the
``openssl`` CLI (``openssl ca -revoke``, ``-gencrl``) in the lab's PKI
folder; clients connect from the engine namespace with Python's ssl.

The lab's frontd allows ``engine`` by fingerprint, and ``second`` and
``revoked`` by subject; ``revoked`` is also in the CRL; ``outsider`` is
signed by the same CA and on no list.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from demo.lab import HOST_CONTROL_IP, STOMP_PORT, Lab
from demo.pki import KEY_IDS, make_leaf, openssl
from tests.functional.wire_clients import CONNECT, enter_netns, send_frame

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
REPLY_TO = "jms.topic.vdsm_responses"
SUBSCRIBE = f"SUBSCRIBE\nid:r\ndestination:{REPLY_TO}\n\n\0".encode()
CLIENT = KEY_IDS + "extendedKeyUsage=clientAuth\n"
CA_CONFIG = """\
[ca]
default_ca = test
[test]
database = index.txt
crlnumber = crlnumber
default_md = sha256
default_crl_days = 2
"""


def fingerprint(cert: Path) -> str:
    out = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-fingerprint", "-sha256"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return out.strip().partition("=")[2]  # "AB:CD:…"


def revoke(pki: Path, name: str) -> Path:
    """A CRL of the lab's CA revoking ``name``.crt."""
    (pki / "ca.cnf").write_text(CA_CONFIG)
    (pki / "index.txt").write_text("")
    (pki / "crlnumber").write_text("01\n")
    ca = ("-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.crt")
    openssl("ca", *ca, "-revoke", f"{name}.crt", cwd=pki)
    openssl("ca", *ca, "-gencrl", "-out", "crl.pem", cwd=pki)
    return pki / "crl.pem"


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    with Lab(prefix="nrc-") as the_lab:
        pki = the_lab.pki
        for name in ("second", "revoked", "outsider"):
            make_leaf(pki, name, "ca", CLIENT)
        crl = revoke(pki, "revoked")
        ca_line = f"tls_ca = {pki / 'ca.crt'}\n"
        config = the_lab.config_path.read_text()
        assert ca_line in config
        the_lab.config_path.write_text(config.replace(ca_line, ca_line + (
            f"tls_crl = {crl}\n"
            "tls_allowed_clients =\n"
            f"    sha256:{fingerprint(pki / 'engine.crt')}\n"
            "    subject: CN = second\n"
            "    subject:CN=revoked\n"
        )))  # fmt: skip
        the_lab.start()
        yield the_lab


@pytest.fixture(scope="module")
def engine_side(lab: Lab) -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2, initializer=enter_netns, initargs=(lab.engine_ns,)) as pool:
        yield pool


def _session(pki: Path, cert: str) -> bytes:
    """CONNECT then Host.ping2 with ``cert``; what frontd sent back (b"" or
    a TLS error's name when it refused the client)."""
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / f"{cert}.crt"), str(pki / f"{cert}.key"))
    received = b""
    try:
        with socket.create_connection((HOST_CONTROL_IP, STOMP_PORT), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname=HOST_CONTROL_IP) as tls:
                body = json.dumps({"jsonrpc": "2.0", "id": "p", "method": "Host.ping2"})
                tls.sendall(CONNECT + SUBSCRIBE + send_frame(body.encode(), REPLY_TO))
                while received.count(b"\0") < 2:  # CONNECTED, MESSAGE
                    chunk = tls.recv(65536)
                    if not chunk:
                        break
                    received += chunk
    except ssl.SSLError as error:
        return received + f"<{error.reason}>".encode()
    except OSError as error:  # reset, broken pipe, timeout
        return received + f"<{type(error).__name__}>".encode()
    return received


def session(lab: Lab, pool: ThreadPoolExecutor, cert: str) -> bytes:
    return pool.submit(_session, lab.pki, cert).result(30)


def answered(data: bytes) -> bool:
    return data.startswith(b"CONNECTED\n") and b'"result":true' in data


def test_client_allowed_by_fingerprint_is_served(lab: Lab, engine_side) -> None:
    assert answered(session(lab, engine_side, "engine"))


def test_client_allowed_by_subject_is_served(lab: Lab, engine_side) -> None:
    assert answered(session(lab, engine_side, "second"))


def test_revoked_client_is_refused_in_the_handshake(lab: Lab, engine_side) -> None:
    data = session(lab, engine_side, "revoked")
    assert b"CONNECTED" not in data, data
    # It is on the allow-list: only the CRL can have refused it.
    assert "CN=revoked" not in lab.log("frontd")


def test_client_on_no_list_is_refused(lab: Lab, engine_side) -> None:
    data = session(lab, engine_side, "outsider")
    assert b"CONNECTED" not in data, data
    assert "client certificate not allowed" in lab.log("frontd")
    assert "CN=outsider" in lab.log("frontd")
