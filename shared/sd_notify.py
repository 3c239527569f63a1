"""systemd's readiness protocol (sd_notify(3)), without libsystemd.

A service of ``Type=notify`` tells systemd it is ready by sending the
datagram ``READY=1`` to the AF_UNIX socket named in ``$NOTIFY_SOCKET``: a
path, or ``@name`` for an abstract socket. ``STOPPING=1`` says it is
shutting down. Without ``$NOTIFY_SOCKET`` (not started by systemd) nothing
is sent.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def notify_address(value: str | None) -> str | None:
    """The AF_UNIX address ``$NOTIFY_SOCKET`` names, or None when unusable."""
    if not value:
        return None
    if value.startswith("@"):
        return "\0" + value[1:]  # the abstract namespace
    if value.startswith("/"):
        return value
    return None  # vsock:… and friends are not for us


def sd_notify(state: str) -> bool:
    """Send ``state`` (e.g. ``READY=1``) to systemd; False when not sent."""
    raw = os.environ.get("NOTIFY_SOCKET")
    address = notify_address(raw)
    if address is None:
        if raw:
            log.warning("NOTIFY_SOCKET %r is not supported", raw)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
    except OSError as error:
        log.warning("sd_notify(%s) failed: %s", state, error)
        return False
    return True
