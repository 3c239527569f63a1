"""superd's UNIX-socket listener: frames in, frames out, nothing about networks.

accept → check the peer's credentials (SO_PEERCRED, on every connection) →
one thread per admitted connection (bounded) → for each frame: decode
(``shared.wire``), check the request's shape against the verb table, hand
``(verb, args)`` to the dispatcher, send its result or ``{code, message}``.

* A refused peer (uid not admitted) or a connection beyond the limit gets one
  error frame with id 0 and is closed; no thread is started for it.
* A frame that cannot be decoded (not JSON, not an object, length over
  ``MAX_FRAME``, truncated) gets an error frame with id 0, then the connection
  is closed: the stream can no longer be trusted to be in step.
* A well-formed frame with a bad request (unknown verb, bad id, unexpected
  arguments) gets an error answer and the connection stays usable.

The socket file is created with no access for others from the start (umask
at bind time), then given to root:<frontd group> with mode 0660, or left
root-only 0600 when there is no frontd group.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import stat
import struct
import threading
from collections.abc import Callable
from pathlib import Path

from shared.errors import ErrorCode, NetError
from shared.wire import check_request, encode_frame, recv_frame

log = logging.getLogger("netreload.superd.server")

Dispatch = Callable[[str, dict], object]

MAX_CONNECTIONS = 64
SEND_TIMEOUT = 30.0  # seconds a peer may take to read an answer
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid
_NO_ID = 0  # answer id when the request's id could not be read


def peer_credentials(conn: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process that connected ``conn``."""
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    pid, uid, gid = _UCRED.unpack(raw)
    return pid, uid, gid


def error_answer(request_id: int, code: int, message: str) -> dict:
    return {"id": request_id, "ok": False, "error": {"code": int(code), "message": message}}


def _request_id(message: dict) -> int:
    value = message.get("id")
    return value if isinstance(value, int) and not isinstance(value, bool) else _NO_ID


class UnixServer:
    """Serve ``dispatch`` on a UNIX stream socket at ``path``."""

    def __init__(
        self,
        path: Path,
        dispatch: Dispatch,
        allowed_uids: frozenset[int],
        group: int | None = None,
        max_connections: int = MAX_CONNECTIONS,
        after_answer: Callable[[], None] | None = None,
    ) -> None:
        """``after_answer``: run in the connection's thread once each
        answer is sent, or its send failed (work the peer need not wait
        for)."""
        self.path = Path(path)
        self._dispatch = dispatch
        self._after_answer = after_answer
        self._allowed = allowed_uids
        self._group = group
        self._max = max_connections
        self._listener: socket.socket | None = None
        self._inode: tuple[int, int] | None = None
        self._wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._wake_w: int | None = wake_w
        self._stopping = False
        self._wakes_on_signals = False
        self._lock = threading.Lock()
        self._connections: dict[socket.socket, threading.Thread] = {}

    # -- the listening socket ---------------------------------------------
    def start(self) -> None:
        """Create the socket file and listen; no thread is started yet."""
        parent = self.path.parent
        if not parent.exists():
            parent.mkdir(parents=True, exist_ok=True)
            os.chmod(parent, 0o755)
        self._remove_stale_socket()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # no window where the file is wider than 0600
        try:
            listener.bind(str(self.path))
        except OSError:
            listener.close()
            raise
        finally:
            os.umask(old_umask)
        info = os.stat(self.path)
        self._inode = (info.st_dev, info.st_ino)
        if self._group is not None:
            os.chown(self.path, -1, self._group)
            os.chmod(self.path, 0o660)
        listener.listen(min(self._max, socket.SOMAXCONN))
        listener.setblocking(False)
        self._listener = listener
        log.info(
            "listening on %s (mode %o, group %s)",
            self.path,
            stat.S_IMODE(os.stat(self.path).st_mode),
            self._group if self._group is not None else "root",
        )

    def _remove_stale_socket(self) -> None:
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(info.st_mode):
            raise NetError(ErrorCode.BAD_PARAMS, f"{self.path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(self.path))
        except OSError:
            log.info("removing stale socket %s", self.path)
            os.unlink(self.path)
            return
        finally:
            probe.close()
        raise NetError(ErrorCode.RESOURCE_UNAVAILABLE, f"another superd listens on {self.path}")

    def serve_forever(self) -> None:
        """Accept connections until :meth:`stop` is called."""
        assert self._listener is not None, "start() first"
        while not self._stopping:
            ready, _, _ = select.select([self._listener, self._wake_r], [], [])
            if self._wake_r in ready:
                break
            try:
                conn, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as error:
                log.error("accept failed: %s", error)
                continue
            conn.setblocking(True)
            self._admit(conn)

    def wake_on_signals(self) -> None:
        """Main thread only: the C-level handler of every signal with a
        Python handler writes to the wake pipe. The kernel may deliver
        SIGTERM to any thread of superd (the netlink monitor, a connection);
        then nothing interrupts the main thread's select() and the Python
        handler, which runs only in the main thread, would wait for the next
        connection: a stop request ignored until systemd's SIGKILL. Any byte
        on the pipe ends :meth:`serve_forever`."""
        assert self._wake_w is not None, "closed"
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        self._wakes_on_signals = True

    def stop(self) -> None:
        """Ask :meth:`serve_forever` to return; safe in a signal handler."""
        self._stopping = True
        wake_w = self._wake_w
        if wake_w is not None:
            with contextlib.suppress(OSError):
                os.write(wake_w, b"x")

    def close_listener(self) -> None:
        """Stop accepting and remove the socket file (if it is still ours)."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        try:
            info = os.lstat(self.path)
            if (info.st_dev, info.st_ino) == self._inode:
                os.unlink(self.path)
        except FileNotFoundError:
            pass

    def close_connections(self, timeout: float = 10.0) -> None:
        """End every connection after its current request, then wait for them."""
        with self._lock:
            live = dict(self._connections)
        for conn in live:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RD)
        for thread in live.values():
            thread.join(timeout)
        if self._wakes_on_signals:
            signal.set_wakeup_fd(-1)
            self._wakes_on_signals = False
        wake_w, self._wake_w = self._wake_w, None  # a late signal must not write to a reused fd
        if wake_w is not None:
            os.close(wake_w)
            os.close(self._wake_r)

    # -- connections ------------------------------------------------------
    def _admit(self, conn: socket.socket) -> None:
        try:
            pid, uid, _ = peer_credentials(conn)
        except OSError as error:
            log.error("cannot read peer credentials: %s", error)
            conn.close()
            return
        if uid not in self._allowed:
            log.warning("refused connection from pid %d uid %d: not an allowed user", pid, uid)
            self._refuse(
                conn, ErrorCode.BAD_PARAMS, f"permission denied: uid {uid} may not use superd"
            )
            return
        with self._lock:
            if len(self._connections) >= self._max:
                full = True
            else:
                full = False
                thread = threading.Thread(
                    target=self._serve_connection,
                    args=(conn, pid, uid),
                    name=f"superd-conn-{pid}",
                    daemon=True,
                )
                self._connections[conn] = thread
        if full:
            log.warning("refused connection from pid %d: %d connections open", pid, self._max)
            self._refuse(conn, ErrorCode.RESOURCE_UNAVAILABLE, "too many connections")
            return
        log.debug("connection from pid %d uid %d", pid, uid)
        thread.start()

    @staticmethod
    def _refuse(conn: socket.socket, code: ErrorCode, message: str) -> None:
        try:
            conn.settimeout(1.0)
            conn.sendall(encode_frame(error_answer(_NO_ID, code, message)))
        except OSError:
            pass
        finally:
            conn.close()

    def _serve_connection(self, conn: socket.socket, pid: int, uid: int) -> None:
        try:
            # Idle connections are fine (frontd keeps one); a peer that does
            # not read its answers is dropped after SEND_TIMEOUT.
            seconds, micro = int(SEND_TIMEOUT), int(SEND_TIMEOUT % 1 * 1e6)
            conn.setsockopt(
                socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", seconds, micro)
            )
            while self._serve_one(conn, pid):
                pass
        except OSError as error:
            log.info("connection from pid %d: %s", pid, error)
        finally:
            with self._lock:
                self._connections.pop(conn, None)
            conn.close()

    def _serve_one(self, conn: socket.socket, pid: int) -> bool:
        """Answer one request; False when the connection must end."""
        try:
            message = recv_frame(conn, window=True)
        except NetError as error:
            log.warning("connection from pid %d: bad frame: %s", pid, error.message)
            conn.sendall(encode_frame(error_answer(_NO_ID, error.code, error.message)))
            return False
        if message is None:
            return False
        request_id = _request_id(message)
        try:
            request_id, verb, args = check_request(message)
        except NetError as error:
            log.warning("connection from pid %d: %s", pid, error.message)
            conn.sendall(encode_frame(error_answer(request_id, error.code, error.message)))
            return True
        try:
            conn.sendall(self._answer(request_id, verb, args))
        finally:  # also when the peer is gone: the work is due either way
            del message, args  # the request's memory is free before it is handed back
            if self._after_answer is not None:
                try:
                    self._after_answer()
                except Exception:  # a bug here must not end the connection
                    log.exception("work after the answer to %s failed", verb)
        return True

    def _answer(self, request_id: int, verb: str, args: dict) -> bytes:
        try:
            result = self._dispatch(verb, args)
            return encode_frame({"id": request_id, "ok": True, "result": result})
        except NetError as error:
            return encode_frame(error_answer(request_id, error.code, error.message))
        except Exception as error:  # a bug must not kill the connection thread silently
            log.exception("verb %s failed unexpectedly", verb)
            message = f"internal error in {verb}: {type(error).__name__}"
            return encode_frame(error_answer(request_id, ErrorCode.INTERNAL, message))
