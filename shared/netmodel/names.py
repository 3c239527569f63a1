"""Device and network name rules.

Names arrive from the engine and later become netlink names and file names,
so every check here runs before any I/O touches them.
"""

from __future__ import annotations

import re

from shared.errors import ErrorCode, NetError

IFNAMSIZ_MAX = 15
LOOPBACK = "lo"  # the kernel's limit, without the trailing NUL
_FORBIDDEN_IN_BRIDGE = frozenset(":. \t")
_BOND_NAME = re.compile(r"bond\w+", re.ASCII)
# A network name is also a file name in persistence and (when bridged) a
# device name: only plain printable characters, no path separators.
_NETWORK_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]{0,14}")
_DEVICE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-.:]{0,14}")


def validate_bridge_name(name: object) -> str:
    """The production agent's bridge-name rule (error 27)."""
    if (
        not isinstance(name, str)
        or not 1 <= len(name) <= IFNAMSIZ_MAX
        or _FORBIDDEN_IN_BRIDGE & set(name)
        or name.startswith("-")
        or not name.isprintable()
        or "/" in name
    ):
        raise NetError(ErrorCode.BAD_BRIDGE, f"Bridge name is not valid: {name!r}")
    return name


def validate_network_name(name: object) -> str:
    """A network name: usable as a bridge name and as a file name (error 21)."""
    if not isinstance(name, str) or not _NETWORK_NAME.fullmatch(name):
        raise NetError(
            ErrorCode.BAD_PARAMS,
            f"Network name is not valid: {name!r} (1-15 characters of "
            "letters, digits, '_' and '-', not starting with '-')",
        )
    return name


def validate_bond_name(name: object) -> str:
    """``bond`` followed by word characters, at most 15 characters (error 25)."""
    if (
        not isinstance(name, str)
        or len(name) > IFNAMSIZ_MAX
        or not _BOND_NAME.fullmatch(name)
    ):
        raise NetError(
            ErrorCode.BAD_BONDING,
            f"Bond name is not valid: {name!r} (must be 'bond' followed by "
            "word characters, at most 15 characters)",
        )
    return name


def validate_nic_name(name: object) -> str:
    """A NIC name as the kernel would accept it and a path would not misuse.

    Never the loopback device: every namespace has one, so no netinfo check
    is needed to know it is not a NIC, and a plan naming it once set its
    MTU to 1500 with no rollback restoring it.
    """
    if not isinstance(name, str) or not _DEVICE_NAME.fullmatch(name) or name == LOOPBACK:
        raise NetError(ErrorCode.BAD_NIC, f"NIC name is not valid: {name!r}")
    return name


def is_device_conf_name(name: object) -> bool:
    """True when ``name`` may be a device's directory under
    ``/proc/sys/net/ipv[46]/conf``: a device name, and not one of the two
    that are not devices (``all`` writes to every device)."""
    return (
        isinstance(name, str)
        and bool(_DEVICE_NAME.fullmatch(name))
        and name not in ("all", "default")
    )


def is_safe_file_name(name: object) -> bool:
    """True when ``name`` may become a single path component."""
    return isinstance(name, str) and bool(_NETWORK_NAME.fullmatch(name))


def vlan_device_name(base: str, tag: int) -> str:
    """The production agent's VLAN naming: ``<base>.<tag>``."""
    return f"{base}.{tag}"
