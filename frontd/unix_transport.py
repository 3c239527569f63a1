"""JSON-RPC over frontd's local UNIX socket, for the ``netreload`` CLI.

Framing: newline-delimited JSON. Each request is one JSON-RPC 2.0 request
serialized on a single line (compact JSON never contains a raw newline) and
ended by ``\\n``; each response is one line too. Requests on a connection
run concurrently, so responses may come back in another order than the
requests: match them by ``id``. A line longer than 16 MiB closes the
connection. The socket is mode 0660: access is for the frontd user and its
group.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from pathlib import Path

from frontd.jsonrpc import INVALID_REQUEST, encode, error_response
from frontd.stomp import RequestSink, finish_handlers

log = logging.getLogger("netreload.frontd.unix")

MAX_LINE = 16 * 1024 * 1024
MAX_CONNECTIONS = 16
SOCKET_MODE = 0o660


def bind_unix_socket(
    path: Path, owner: tuple[int, int] | None = None, mode: int = SOCKET_MODE
) -> socket.socket:
    """A listening socket at ``path`` (a stale one is replaced)."""
    path = Path(path)
    if path.is_socket():
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old_umask = os.umask(0o777 & ~mode)
        try:
            sock.bind(str(path))
        finally:
            os.umask(old_umask)
        os.chmod(path, mode)
        if owner is not None:
            os.chown(path, *owner)
        sock.listen(MAX_CONNECTIONS)
    except OSError:
        sock.close()
        raise
    return sock


class UnixJsonRpcServer:
    def __init__(self, requests: RequestSink, max_connections: int = MAX_CONNECTIONS) -> None:
        self.requests = requests
        self.max_connections = max_connections
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None

    async def start(self, sock: socket.socket) -> None:
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_unix_server(self._accept, sock=sock, limit=MAX_LINE)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        await finish_handlers(self._handlers)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._writers) >= self.max_connections:
            log.warning("refusing a local connection: %d already open", len(self._writers))
            writer.close()
            return
        self._writers.add(writer)
        handler = asyncio.current_task()
        if handler is not None:
            self._handlers.add(handler)
        try:
            await self._serve(reader, writer)
        except (OSError, asyncio.IncompleteReadError) as error:
            log.debug("local connection failed: %s", error)
        finally:
            self._writers.discard(writer)
            self._handlers.discard(handler)  # type: ignore[arg-type]
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        pending: set[asyncio.Future] = set()
        try:
            while True:
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.LimitOverrunError:
                    too_long = error_response(None, INVALID_REQUEST, "request line exceeds 16 MiB")
                    writer.write(encode(too_long) + b"\n")
                    return
                except asyncio.IncompleteReadError as partial:
                    line = partial.partial  # the last request may lack its newline
                    if line.strip():
                        pending.add(self._submit(line, writer))
                    return
                if line.strip():
                    future = self._submit(line, writer)
                    pending.add(future)
                    future.add_done_callback(pending.discard)
        finally:
            # The client may half-close after its last request: answer it first.
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    def _submit(self, line: bytes, writer: asyncio.StreamWriter) -> asyncio.Future:
        loop = self._loop
        assert loop is not None

        def write(answer: bytes) -> None:
            if not writer.is_closing():
                writer.write(answer + b"\n")

        def reply(answer: bytes) -> None:
            try:
                loop.call_soon_threadsafe(write, answer)
            except RuntimeError:
                log.debug("dropping an answer after shutdown")

        return asyncio.wrap_future(self.requests.submit(line, reply), loop=loop)
