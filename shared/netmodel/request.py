"""The engine's ``setupNetworks(networks, bondings, options)`` in canonical form."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

from shared.errors import ErrorCode, NetError
from shared.netmodel.canonical import (
    canonicalize_bond,
    canonicalize_network,
    canonicalize_options,
    free_form_bytes,
)
from shared.netmodel.names import (
    validate_bond_name,
    validate_bridge_name,
    validate_network_name,
)
from shared.netmodel.values import to_dict

# Far above any real host; bounds the work a single request can cause.
MAX_NETWORKS = 5000
MAX_BONDS = 1000
# All the free-form attributes (custom, hostQos) of one request, as JSON: each
# is at most MAX_FREE_FORM_BYTES, but 5000 of them would still fill a frame.
MAX_FREE_FORM_PER_REQUEST = 1024 * 1024


@dataclass(frozen=True)
class Request:
    """Canonical request: attrs per name, ``None`` meaning removal.

    Never changed once made (a new Request replaces it), so the views below
    are computed once: validation reads ``added_networks`` eight times, a
    dict of 1,000 entries each time in a big request. Read-only by contract.
    """

    networks: Mapping[str, dict | None]
    bonds: Mapping[str, dict | None]
    options: Mapping[str, object]

    @cached_property
    def added_networks(self) -> dict[str, dict]:
        return {n: a for n, a in self.networks.items() if a is not None}

    @cached_property
    def removed_networks(self) -> list[str]:
        return sorted(n for n, a in self.networks.items() if a is None)

    @cached_property
    def added_bonds(self) -> dict[str, dict]:
        return {n: a for n, a in self.bonds.items() if a is not None}

    @cached_property
    def removed_bonds(self) -> list[str]:
        return sorted(n for n, a in self.bonds.items() if a is None)


def _check_size(items: Mapping, limit: int, what: str) -> None:
    if len(items) > limit:
        raise NetError(
            ErrorCode.BAD_PARAMS,
            f"too many {what} in one request: {len(items)} > {limit}",
        )


def canonicalize_request(
    networks: object,
    bondings: object,
    options: object,
    host_nameservers: Sequence[str] = (),
) -> Request:
    networks = to_dict(networks if networks is not None else {}, "networks")
    bondings = to_dict(bondings if bondings is not None else {}, "bondings")
    _check_size(networks, MAX_NETWORKS, "networks")
    _check_size(bondings, MAX_BONDS, "bondings")
    canonical_nets: dict[str, dict | None] = {}
    for name, attrs in networks.items():
        attrs = to_dict(attrs, f"network {str(name)[:40]!r}")
        removing = attrs.get("remove") in (True, "true", "True")
        if not removing and attrs.get("bridged", True) not in (False, "false", "False"):
            validate_bridge_name(name)
        validate_network_name(name)
        canonical_nets[name] = canonicalize_network(name, attrs, host_nameservers)
    canonical_bonds: dict[str, dict | None] = {}
    for name, attrs in bondings.items():
        validate_bond_name(name)
        canonical_bonds[name] = canonicalize_bond(name, attrs)
    _check_free_form_total(canonical_nets)
    return Request(canonical_nets, canonical_bonds, canonicalize_options(options))


def _check_free_form_total(networks: Mapping[str, dict | None]) -> None:
    total = free_form_bytes(networks.values())
    if total > MAX_FREE_FORM_PER_REQUEST:
        raise NetError(
            ErrorCode.BAD_PARAMS,
            f"custom and hostQos of this request: {total} bytes of JSON,"
            f" at most {MAX_FREE_FORM_PER_REQUEST}",
        )
