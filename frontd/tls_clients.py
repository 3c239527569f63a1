"""Which TLS clients may call: ``[frontd] tls_allowed_clients``.

Signed by ``tls_ca`` (and, with ``tls_crl``, not revoked) is what the TLS
handshake checks. The allow-list, when set, narrows that down to named
certificates, one entry per line of the value::

    tls_allowed_clients =
        sha256:3B:5E:…:9A
        subject:CN=engine.example.com,O=Example

* ``sha256:`` the SHA-256 fingerprint of the certificate (DER), hex, colons
  optional, any case — ``openssl x509 -noout -fingerprint -sha256``;
* ``subject:`` the certificate's whole subject as RFC 4514 writes it, most
  specific part first — ``openssl x509 -noout -subject -nameopt RFC2253``.
  Attribute names compare case-insensitively, values exactly; spaces around
  ``,`` ``+`` ``=`` do not matter; ``\\,``-style and ``\\2C``-style escapes
  are understood.

A client matching no entry is disconnected right after the handshake,
before it can send a frame. An empty list (the default) admits every
certificate the handshake accepted, as the production agent does.
"""

from __future__ import annotations

import hashlib
import ssl
from dataclasses import dataclass

from shared.errors import ErrorCode, NetError

# Python's names for a certificate's attribute types → RFC 4514's.
_SHORT_NAMES = {
    "commonname": "CN",
    "countryname": "C",
    "localityname": "L",
    "stateorprovincename": "ST",
    "organizationname": "O",
    "organizationalunitname": "OU",
    "streetaddress": "STREET",
    "domaincomponent": "DC",
    "userid": "UID",
}
_SPECIAL = ',+"\\<>;='

Rdn = frozenset[tuple[str, str]]
Subject = tuple[Rdn, ...]


def _bad(message: str) -> NetError:
    return NetError(ErrorCode.BAD_PARAMS, f"configuration: [frontd] tls_allowed_clients: {message}")


def _attribute_type(name: str) -> str:
    key = name.strip()
    return _SHORT_NAMES.get(key.lower(), key).upper()


def parse_subject(text: str) -> Subject:
    """An RFC 4514 string → its RDNs, most specific first."""
    rdns: list[Rdn] = []
    pairs: list[tuple[str, str]] = []
    key: str | None = None
    part, i = "", 0
    raw_end = 0  # where the unescaped trailing spaces of ``part`` start

    def finish_pair() -> None:
        nonlocal key, part, raw_end
        if key is None or not key.strip():
            raise _bad(f"subject {text!r}: expected TYPE=VALUE")
        value = part[:raw_end].lstrip(" ") if raw_end else part.strip(" ")
        pairs.append((_attribute_type(key), value))
        key, part, raw_end = None, "", 0

    while i < len(text):
        char = text[i]
        if char == "\\":
            nxt = text[i + 1 : i + 3]
            if len(nxt) == 2 and all(c in "0123456789abcdefABCDEF" for c in nxt):
                part += chr(int(nxt, 16))
                i += 3
            elif nxt[:1] and nxt[0] in _SPECIAL + " #":
                part += nxt[0]
                i += 2
            else:
                raise _bad(f"subject {text!r}: bad escape at {i}")
            raw_end = len(part)
            continue
        if char == "=" and key is None:
            key, part, raw_end = part, "", 0
        elif char in ",+":
            finish_pair()
            if char == ",":
                rdns.append(frozenset(pairs))
                pairs = []
        else:
            part += char
            if char != " ":
                raw_end = len(part)
        i += 1
    finish_pair()
    rdns.append(frozenset(pairs))
    return tuple(rdns)


def certificate_subject(peer: dict) -> Subject:
    """``SSLSocket.getpeercert()``'s subject, most specific RDN first."""
    return tuple(
        frozenset((_attribute_type(name), value) for name, value in rdn)
        for rdn in reversed(peer.get("subject", ()))
    )


@dataclass(frozen=True)
class AllowedClients:
    fingerprints: frozenset[str] = frozenset()
    subjects: frozenset[Subject] = frozenset()

    @classmethod
    def parse(cls, entries: tuple[str, ...]) -> AllowedClients:
        fingerprints: set[str] = set()
        subjects: set[Subject] = set()
        for entry in entries:
            kind, colon, value = entry.partition(":")
            kind = kind.strip().lower()
            if kind == "sha256" and colon:
                digest = value.strip().replace(":", "").lower()
                if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                    raise _bad(f"{entry!r} is not a SHA-256 fingerprint (64 hex digits)")
                fingerprints.add(digest)
            elif kind == "subject" and colon and value.strip():
                subjects.add(parse_subject(value))
            else:
                raise _bad(f"{entry!r}: expected sha256:HEX or subject:RFC4514-NAME")
        return cls(frozenset(fingerprints), frozenset(subjects))

    def __bool__(self) -> bool:
        return bool(self.fingerprints or self.subjects)

    def admits(self, tls: ssl.SSLObject | ssl.SSLSocket | None) -> bool:
        """The peer certificate of a finished handshake is on the list."""
        if tls is None:
            return False
        der = tls.getpeercert(binary_form=True)
        if not der:
            return False
        if hashlib.sha256(der).hexdigest() in self.fingerprints:
            return True
        return bool(self.subjects) and certificate_subject(tls.getpeercert()) in self.subjects


def describe(tls: ssl.SSLObject | ssl.SSLSocket | None) -> str:
    """The peer certificate's subject and fingerprint, for the log."""
    if tls is None or not (der := tls.getpeercert(binary_form=True)):
        return "no certificate"
    subject = ",".join(
        "+".join(f"{k}={v}" for k, v in sorted(rdn))
        for rdn in certificate_subject(tls.getpeercert())
    )
    return f"subject {subject!r}, sha256 {hashlib.sha256(der).hexdigest()}"
