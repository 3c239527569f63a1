"""``netreload-frontd [--config C]``: the unprivileged API daemon.

Reads the configuration once, loads the TLS material and binds both
listening sockets (STOMP over TLS on ``stomp_listen``, JSON-RPC on the
local UNIX socket) — then, when started as root, drops to ``frontd_user``
for good (no supplementary groups); started as that user (systemd's
``User=``), it keeps the uid it has. Once both listeners accept it tells
systemd READY=1 (``STOPPING=1`` when it stops). It serves until SIGTERM or SIGINT, then
stops listening, closes its connections and exits 0. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import pwd
import signal
import socket
import ssl
import sys
from dataclasses import dataclass

from frontd.api import HostApi
from frontd.event_relay import EventRelay
from frontd.jsonrpc import JsonRpcDispatcher
from frontd.stomp import StompServer, server_tls_context
from frontd.superd_client import SuperdClient
from frontd.tls_clients import AllowedClients
from frontd.unix_transport import UnixJsonRpcServer, bind_unix_socket
from persistence.atomic import libc
from shared.config import Config, load_config
from shared.errors import ErrorCode, NetError
from shared.sd_notify import sd_notify

log = logging.getLogger("netreload.frontd")

M_MMAP_THRESHOLD = -3  # mallopt(3)
MMAP_THRESHOLD = 128 * 1024  # glibc's default, kept fixed


def keep_big_buffers_mapped() -> None:
    """Pin glibc's mmap threshold. Left dynamic, it rises to the size of the
    first large block freed (a TLS connection's 256 KiB buffer, a 16 MiB
    frame), after which such blocks come from the heap and, freed, stay in
    frontd's RSS: each burst of hostile sockets left it tens of MiB bigger
    (tests/functional/test_wire_hostile.py). Mapped, they go back at free."""
    mallopt = getattr(libc(), "mallopt", None)
    if mallopt is not None:
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` → (host, port)."""
    host, colon, port = value.rpartition(":")
    if not colon or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise NetError(
            ErrorCode.BAD_PARAMS, f"configuration: stomp_listen {value!r} is not HOST:PORT"
        )
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def bind_tcp(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def drop_privileges(user: str) -> None:
    """Become ``user`` for good: no supplementary groups, its gid, its uid."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise NetError(ErrorCode.BAD_PARAMS, f"frontd user {user!r} does not exist") from None
    if entry.pw_uid == 0:
        raise NetError(ErrorCode.BAD_PARAMS, "frontd must not run as root")
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise NetError(ErrorCode.INTERNAL, "dropping privileges did not stick")


@dataclass
class Listeners:
    stomp: socket.socket
    unix: socket.socket


def open_listeners(config: Config) -> Listeners:
    owner = None
    if os.geteuid() == 0:
        try:
            entry = pwd.getpwnam(config.frontd_user)
        except KeyError:
            raise NetError(
                ErrorCode.BAD_PARAMS, f"frontd user {config.frontd_user!r} does not exist"
            ) from None
        owner = (entry.pw_uid, entry.pw_gid)
    unix = bind_unix_socket(config.frontd_unix_socket, owner)
    try:
        stomp = bind_tcp(*parse_listen(config.stomp_listen))
    except OSError:
        unix.close()
        raise
    return Listeners(stomp, unix)


async def serve(
    config: Config,
    listeners: Listeners,
    tls: ssl.SSLContext,
    allowed: AllowedClients | None = None,
) -> None:
    superd = SuperdClient(config.superd_socket)
    api = HostApi(superd)
    engine_rpc = JsonRpcDispatcher(api.table())
    local_rpc = JsonRpcDispatcher(api.table(local=True))
    stomp = StompServer(
        engine_rpc, tls, max_connections=config.stomp_max_connections, allowed_clients=allowed
    )
    local = UnixJsonRpcServer(local_rpc)
    api.set_notify(stomp.publish_event)
    relay = EventRelay(config.superd_socket, stomp.publish_event)
    api.set_events(relay.log)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stomp.start(sock=listeners.stomp)
    await local.start(listeners.unix)
    relay.start()
    log.info(
        "serving STOMP on %s and JSON-RPC on %s", config.stomp_listen, config.frontd_unix_socket
    )
    sd_notify("READY=1")  # both listeners accept: Type=notify's start is over
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        sd_notify("STOPPING=1")
        relay.close()
        await stomp.close()
        await local.close()
        api.set_notify(None)
        engine_rpc.shutdown()
        local_rpc.shutdown()
        superd.close()
        try:
            config.frontd_unix_socket.unlink()
        except OSError:
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netreload-frontd", description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="configuration file (default /etc/netreload/...)")
    args = parser.parse_args(argv)
    keep_big_buffers_mapped()
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = load_config(args.config)
        tls = server_tls_context(config.tls_cert, config.tls_key, config.tls_ca, config.tls_crl)
        allowed = AllowedClients.parse(config.tls_allowed_clients)
        listeners = open_listeners(config)
        if os.geteuid() == 0:
            drop_privileges(config.frontd_user)
    except NetError as error:
        log.error("cannot start: %s", error)
        return int(error.code)
    except OSError as error:
        log.error("cannot start: %s", error)
        return 1
    asyncio.run(serve(config, listeners, tls, allowed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
