"""Messages between worker processes, the zygote and session hosts (DESIGN.md §7).

One request and one answer per connection over a local (Unix) socket, each a JSON
object after its length (4 bytes, big-endian). Answers are ``{"ok": value}`` or
``{"error": {"kind": str, "message": str, ...}}``. A reader bounds what it accepts:
once edited code has run in a host, what the host sends is untrusted input.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

__all__ = ["MAX_MESSAGE", "WireError", "read", "write"]

#: The largest message read (a graph of a few hundred nodes with ledgers is ~1 MB).
MAX_MESSAGE = 64 * 1024 * 1024

_LENGTH = struct.Struct(">I")


class WireError(ConnectionError):
    """The other side closed the connection early or sent something malformed."""


def write(sock: socket.socket, message: Any) -> None:
    data = json.dumps(message, separators=(",", ":")).encode()
    sock.sendall(_LENGTH.pack(len(data)) + data)


def read(sock: socket.socket, limit: int = MAX_MESSAGE) -> Any:
    (length,) = _LENGTH.unpack(_exactly(sock, _LENGTH.size))
    if length > limit:
        raise WireError(f"a message of {length} bytes is over the limit of {limit}")
    data = _exactly(sock, length)
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise WireError(f"a message is not JSON: {type(exc).__name__}") from None


def _exactly(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise WireError("the connection closed before a whole message arrived")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
