"""IPv4/IPv6 address rules (error 22 for every address problem)."""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from shared.caches import forget_me
from shared.errors import ErrorCode, NetError

# Addresses are parsed once: a request of a thousand networks had its
# addresses parsed several times each (canonical form, model, validation,
# in frontd and again in superd), most of its planning time. The parsed
# objects are immutable; a text that does not parse raises each time.
PARSED = 8192
_NETMASKS = tuple(str(ipaddress.IPv4Network(f"0.0.0.0/{p}").netmask) for p in range(33))


@lru_cache(maxsize=PARSED)
def ipv4(text: str) -> ipaddress.IPv4Address:
    """``ipaddress.IPv4Address(text)``, remembered (ValueError as it raises)."""
    return ipaddress.IPv4Address(text)


@lru_cache(maxsize=PARSED)
def ip_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """``ipaddress.ip_address(text)``, remembered."""
    return ipaddress.ip_address(text)


forget_me(ipv4.cache_clear)
forget_me(ip_address.cache_clear)


def _bad(message: str) -> NetError:
    return NetError(ErrorCode.BAD_ADDR, message)


def prefix_to_netmask(prefix: object, owner: str) -> str:
    try:
        value = int(prefix)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(float("inf"))
        raise _bad(f"{owner}: prefix {prefix!r} is not a number") from None
    if isinstance(prefix, bool) or not 0 <= value <= 32:
        raise _bad(f"{owner}: prefix {prefix!r} is out of range 0..32")
    return _NETMASKS[value]


@lru_cache(maxsize=256)
def netmask_to_prefix(netmask: str) -> int:
    return ipaddress.IPv4Network(f"0.0.0.0/{netmask}").prefixlen


def validate_ipv4_address(value: object, owner: str, what: str) -> str:
    if not isinstance(value, str):
        raise _bad(f"{owner}: {what} {value!r} is not an IPv4 address")
    try:
        ipv4(value)
    except ValueError:
        raise _bad(f"{owner}: {what} {value!r} is not an IPv4 address") from None
    return value


def validate_netmask(value: object, owner: str) -> str:
    """A dotted netmask whose one bits are contiguous."""
    validate_ipv4_address(value, owner, "netmask")
    bits = int(ipv4(value))  # type: ignore[arg-type]
    inverted = ~bits & 0xFFFFFFFF
    if inverted & (inverted + 1):
        raise _bad(f"{owner}: netmask {value!r} is not contiguous")
    return value  # type: ignore[return-value]


def validate_ipv6_address(value: object, owner: str, what: str) -> str:
    if not isinstance(value, str):
        raise _bad(f"{owner}: {what} {value!r} is not an IPv6 address")
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        raise _bad(f"{owner}: {what} {value!r} is not an IPv6 address") from None
    return value


def compressed_ipv6(value: str) -> str:
    """An IPv6 address in its canonical text (RFC 5952: ``2001:db8::1``, as
    the kernel reports it); anything else unchanged, for validation to judge."""
    try:
        return str(ipaddress.IPv6Address(value))
    except ValueError:
        return value


def validate_ipv6_cidr(value: object, owner: str) -> str:
    """``addr/prefixlen`` with prefixlen 0..128 (a bare address means /128),
    the address in canonical text: ``2001:0db8:0000::0001/64`` and
    ``2001:db8::1/64`` are the same request."""
    if not isinstance(value, str):
        raise _bad(f"{owner}: ipv6addr {value!r} is not a string")
    address, slash, prefix = value.partition("/")
    validate_ipv6_address(address, owner, "ipv6addr")
    address = compressed_ipv6(address)
    if not slash:
        return f"{address}/128"
    if not prefix.isdecimal() or not 0 <= int(prefix) <= 128:  # "²".isdigit() but not int
        raise _bad(f"{owner}: ipv6addr prefix {prefix!r} is out of range 0..128")
    return f"{address}/{int(prefix)}"


# A scope identifier (RFC 4007) names the interface: the kernel's device name
# characters (no '/', ':' or white space), at most 15 of them. It is written
# into resolv.conf as it is, so nothing else may pass.
_SCOPE_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,14}", re.ASCII)


def validate_nameserver(value: object, owner: str) -> str:
    """An IPv4 or IPv6 address, the latter with an optional ``%interface``
    scope on a link-local address (``fe80::1%eth0``) — nothing more: each
    becomes a ``nameserver`` line of resolv.conf."""
    if not isinstance(value, str) or not value.isascii():
        raise _bad(f"{owner}: nameserver {value!r} is not an address")
    address, percent, scope = value.partition("%")
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        raise _bad(f"{owner}: nameserver {value!r} is not an address") from None
    if percent:
        if not (parsed.version == 6 and parsed.is_link_local):
            raise _bad(f"{owner}: nameserver {value!r}: only link-local IPv6 has a scope")
        if not _SCOPE_ID.fullmatch(scope) or scope in (".", ".."):
            raise _bad(f"{owner}: nameserver {value!r}: scope {scope!r} is not an interface name")
    return value


_LIMITED_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


def require_unicast(value: str, owner: str, what: str) -> None:
    """A host's own address or its gateway (``value`` already validated, an
    optional ``/prefix`` allowed): not unspecified, multicast or the limited
    broadcast, which the kernel refuses or superd's verification misses."""
    address = ip_address(value.partition("/")[0])
    if address.is_unspecified or address.is_multicast or address == _LIMITED_BROADCAST:
        raise _bad(f"{owner}: {what} {value} is not a unicast address")


def validate_gateway_reachable(
    ipaddr: str, netmask: str, gateway: str, owner: str
) -> None:
    """The gateway is not the network's own address (the kernel rejects it)."""
    if gateway == ipaddr:
        raise _bad(f"{owner}: gateway {gateway} is the network's own address")
    del netmask  # off-subnet gateways are legal (onlink), as in the agent
