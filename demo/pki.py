"""The lab's PKI: a test CA, a host (server) and an engine (client)
certificate, from the ``openssl`` CLI."""

from __future__ import annotations

import subprocess
from pathlib import Path

KEY_IDS = "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


_EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def make_ca(folder: Path, name: str, days: int = 2) -> None:
    """``name.crt``/``name.key``: a self-signed CA in ``folder``."""
    openssl(
        "req", "-x509", *_EC_KEY, "-keyout", f"{name}.key", "-out", f"{name}.crt",
        "-days", str(days), "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip


def make_leaf(folder: Path, name: str, ca: str, extensions: str, days: int = 2) -> None:
    """``name.crt``/``name.key`` signed by the CA ``ca`` with ``extensions``."""
    (folder / f"{name}.ext").write_text(extensions)
    openssl(
        "req", "-new", *_EC_KEY, "-keyout", f"{name}.key", "-out", f"{name}.csr",
        "-subj", f"/CN={name}",
        cwd=folder,
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-out", f"{name}.crt", "-days", str(days),
        "-extfile", f"{name}.ext",
        cwd=folder,
    )  # fmt: skip


def make_pki(
    folder: Path, host_ips: tuple[str, ...] = ("127.0.0.1",), host_names: tuple[str, ...] = ()
) -> Path:
    """``ca``, ``host`` (serverAuth, SAN ``host_ips``/``host_names``) and
    ``engine`` (clientAuth) in ``folder``; returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    make_ca(folder, "ca")
    san = ",".join([f"IP:{ip}" for ip in host_ips] + [f"DNS:{name}" for name in host_names])
    server = f"subjectAltName={san}\nextendedKeyUsage=serverAuth\n"
    make_leaf(folder, "host", "ca", KEY_IDS + server)
    make_leaf(folder, "engine", "ca", KEY_IDS + "extendedKeyUsage=clientAuth\n")
    return folder


