"""STOMP 1.2 frames: parsing and encoding, no I/O.

Header values are escaped (``\\\\ \\n \\r \\c``) in every frame but CONNECT,
STOMP and CONNECTED; an undefined escape is a protocol error. A body is read
up to ``content-length`` when the header is there (it may then hold NULs),
else up to the first NUL. EOLs between frames are heart-beats. Repeated
headers: the first one wins.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_FRAME = 16 * 1024 * 1024
MAX_HEAD = 64 * 1024  # command line + headers
CLIENT_COMMANDS = frozenset(
    {
        "CONNECT",
        "STOMP",
        "SEND",
        "SUBSCRIBE",
        "UNSUBSCRIBE",
        "ACK",
        "NACK",
        "BEGIN",
        "COMMIT",
        "ABORT",
        "DISCONNECT",
    }
)
_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", ":": "\\c"}
_UNESCAPES = {"\\": "\\", "n": "\n", "r": "\r", "c": ":"}


class ProtocolError(Exception):
    pass


def _escape(text: str) -> str:
    return "".join(_ESCAPES.get(char, char) for char in text)


def _unescape(text: str) -> str:
    out, chars = [], iter(text)
    for char in chars:
        if char == "\\":
            char = _UNESCAPES.get(next(chars, ""), "")
            if not char:
                raise ProtocolError("undefined escape sequence in a header")
        out.append(char)
    return "".join(out)


@dataclass
class Frame:
    command: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def encode(self) -> bytes:
        raw = self.command == "CONNECTED"
        lines = [self.command]
        for name, value in self.headers.items():
            lines.append(f"{name}:{value}" if raw else f"{_escape(name)}:{_escape(value)}")
        return ("\n".join(lines) + "\n\n").encode() + self.body + b"\0"


class FrameParser:
    """Bytes in, frames out; EOLs between frames are heart-beats."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self._head: tuple[str, dict[str, str], int | None] | None = None
        self._scanned = 0

    def clear(self) -> None:
        """Forget any partial frame and give its buffer back now, not when
        the garbage collector gets to the connection holding it."""
        self._buf = bytearray()
        self._head = None
        self._scanned = 0

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames = []
        while (frame := self._next()) is not None:
            frames.append(frame)
        return frames

    def _next(self) -> Frame | None:
        buf = self._buf
        if self._head is None:
            skip = 0
            while skip < len(buf) and buf[skip] in b"\r\n":
                skip += 1
            del buf[:skip]
            ends = [(i, n) for i, n in ((buf.find(b"\n\n"), 2), (buf.find(b"\n\r\n"), 3)) if i >= 0]
            if not ends:
                if len(buf) > MAX_HEAD:
                    raise ProtocolError("frame headers too large")
                return None
            end, size = min(ends)
            if end > MAX_HEAD:
                raise ProtocolError("frame headers too large")
            self._head = self._parse_head(bytes(buf[:end]))
            del buf[: end + size]
            self._scanned = 0
        command, headers, length = self._head
        if length is not None:
            if len(buf) < length + 1:
                return None
            if buf[length] != 0:
                raise ProtocolError("frame body does not end with NUL after content-length")
            end = length
        else:
            end = buf.find(b"\0", self._scanned)
            if end < 0:
                self._scanned = len(buf)
                if len(buf) > self.max_frame:
                    raise ProtocolError(f"frame larger than {self.max_frame} bytes")
                return None
        body = bytes(buf[:end])
        del buf[: end + 1]
        self._head = None
        return Frame(command, headers, body)

    def _parse_head(self, head: bytes) -> tuple[str, dict[str, str], int | None]:
        try:
            lines = [line.rstrip("\r") for line in head.decode().split("\n")]
        except UnicodeDecodeError:
            raise ProtocolError("frame headers are not UTF-8") from None
        command = lines[0]
        if command not in CLIENT_COMMANDS:
            raise ProtocolError(f"unknown command {command[:20]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon or not name:
                raise ProtocolError("malformed header line")
            if command not in ("CONNECT", "STOMP"):
                name, value = _unescape(name), _unescape(value)
            headers.setdefault(name, value)  # STOMP 1.2: the first one wins
        length = None
        if "content-length" in headers:
            text = headers["content-length"]
            if not text.isdigit():
                raise ProtocolError("content-length is not a number")
            length = int(text)
            if length > self.max_frame:
                raise ProtocolError(f"frame larger than {self.max_frame} bytes")
        return command, headers, length


def parse_heartbeat(value: str) -> tuple[int, int]:
    parts = value.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ProtocolError(f"malformed heart-beat header {value[:40]!r}")
    return int(parts[0]), int(parts[1])
