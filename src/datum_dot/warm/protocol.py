"""The runner's wire format on its Unix socket.

The client opens with one request frame: a 4-byte big-endian length, then a JSON object; a run
request carries the caller's stdin, stdout and stderr as SCM_RIGHTS file descriptors on the
frame's first bytes. After that both sides exchange JSON objects, one per line: the runner
says `{"pid": N}` once the child runs, `{"exit": CODE}` when it ended, or `{"refused": WHY}`
instead; the client may send `{"signal": N}` at any time to forward a signal to the child.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

MAX_REQUEST = 4 * 1024 * 1024  # an environment and an argv; anything larger is not ours
_LENGTH = struct.Struct(">I")


class ProtocolError(Exception):
    """The other side sent something that is not the protocol, or went away mid-frame."""


class ClosedError(ProtocolError):
    """The other side closed the connection before sending anything (`is_up` does)."""


def send_request(sock: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
    """Send the opening frame, with `fds` attached when there are any.

    Raises:
        OSError: The socket or one of the fds is unusable.
    """
    body = json.dumps(request).encode()
    frame = _LENGTH.pack(len(body)) + body
    sent = socket.send_fds(sock, [frame], fds) if fds else sock.send(frame)
    if sent < len(frame):
        sock.sendall(frame[sent:])


def receive_request(sock: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """Read the opening frame and the fds that came with it.

    Raises:
        ProtocolError: A malformed or oversized frame, or a closed connection.
        OSError: The socket failed (or timed out).
    """
    data, fds, _flags, _addr = socket.recv_fds(sock, 65536, 3)
    if not data and not fds:
        raise ClosedError("closed before a request")
    try:
        if len(data) < _LENGTH.size:
            data += _read_exactly(sock, _LENGTH.size - len(data))
        (length,) = _LENGTH.unpack(data[: _LENGTH.size])
        if length > MAX_REQUEST:
            raise ProtocolError(f"request of {length} bytes")
        body = data[_LENGTH.size :]
        if len(body) < length:
            body += _read_exactly(sock, length - len(body))
        request = json.loads(body[:length])
        if not isinstance(request, dict):
            raise ProtocolError("request is not an object")
    except (ProtocolError, ValueError):
        for fd in fds:
            _close(fd)
        raise
    return request, fds


def send_line(sock: socket.socket, message: dict[str, Any]) -> None:
    """Send one JSON object on a line of its own.

    Raises:
        OSError: The other side went away.
    """
    sock.sendall(json.dumps(message).encode() + b"\n")


class LineReader:
    """Reads the JSON objects, one per line, the other side sends."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""

    def read(self) -> dict[str, Any] | None:
        """The next object; None when the other side closed the connection.

        Raises:
            ProtocolError: A line that is not a JSON object.
            OSError: The socket failed (or timed out).
        """
        while b"\n" not in self._buffer:
            chunk = self._sock.recv(4096)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            message = json.loads(line)
        except ValueError as e:
            raise ProtocolError(f"not JSON: {line[:80]!r}") from e
        if not isinstance(message, dict):
            raise ProtocolError(f"not an object: {line[:80]!r}")
        return message


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    out = b""
    while len(out) < size:
        chunk = sock.recv(size - len(out))
        if not chunk:
            raise ProtocolError("connection closed mid-frame")
        out += chunk
    return out


def _close(fd: int) -> None:
    import os

    try:
        os.close(fd)
    except OSError:
        return
