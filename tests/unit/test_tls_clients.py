"""``[frontd] tls_allowed_clients``: its syntax and how subjects compare."""

from __future__ import annotations

from pathlib import Path

import pytest

from frontd.tls_clients import AllowedClients, certificate_subject, parse_subject
from shared.config import load_config
from shared.errors import ErrorCode, NetError

# getpeercert()'s subject: least specific RDN first, Python's attribute names.
PEER = {
    "subject": (
        (("countryName", "FR"),),
        (("organizationName", "Example, Inc."),),
        (("commonName", "engine.example.com"),),
    )
}


def test_a_subject_matches_however_it_is_spaced_and_cased() -> None:
    expected = certificate_subject(PEER)
    for text in (
        "CN=engine.example.com,O=Example\\, Inc.,C=FR",
        " cn = engine.example.com , o = Example\\2C Inc. , c = FR ",
    ):
        assert parse_subject(text) == expected


def test_order_and_values_matter() -> None:
    expected = certificate_subject(PEER)
    assert parse_subject("C=FR,O=Example\\, Inc.,CN=engine.example.com") != expected
    assert parse_subject("CN=ENGINE.example.com,O=Example\\, Inc.,C=FR") != expected
    assert parse_subject("CN=engine.example.com") != expected


def test_fingerprints_take_colons_and_any_case() -> None:
    digest = "AB:" * 31 + "AB"
    allowed = AllowedClients.parse((f"sha256:{digest}", f"SHA256:{'cd' * 32}"))
    assert allowed.fingerprints == {"ab" * 32, "cd" * 32}


@pytest.mark.parametrize(
    "entry",
    ["sha256:abc", "sha256:" + "g" * 64, "md5:" + "a" * 32, "CN=engine", "subject:", "subject:CN"],
)
def test_malformed_entries_are_configuration_errors(entry: str) -> None:
    with pytest.raises(NetError) as info:
        AllowedClients.parse((entry,))
    assert info.value.code == ErrorCode.BAD_PARAMS


def test_no_entries_admit_every_client_the_handshake_accepted() -> None:
    assert not AllowedClients.parse(())


def test_the_list_takes_one_entry_per_line(tmp_path: Path) -> None:
    conf = tmp_path / "n.conf"
    conf.write_text(
        "[frontd]\ntls_crl = /etc/pki/crl.pem\ntls_allowed_clients =\n"
        f"    sha256:{'ab' * 32}\n    subject:CN=engine,O=Example\n"
    )
    config = load_config(conf)
    assert config.tls_crl == Path("/etc/pki/crl.pem")
    assert config.tls_allowed_clients == (f"sha256:{'ab' * 32}", "subject:CN=engine,O=Example")


def test_by_default_no_crl_and_no_list(tmp_path: Path) -> None:
    conf = tmp_path / "n.conf"
    conf.write_text("[frontd]\n")
    config = load_config(conf)
    assert config.tls_crl is None and config.tls_allowed_clients == ()
