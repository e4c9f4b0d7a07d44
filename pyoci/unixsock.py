"""Sockets on ``_socket``, the C core of the socket module (issue 7).

``import socket`` costs ~2 ms on every `create`, `run` and `exec` (it imports selectors,
enum, functools, collections, array): the runtime only needs a socketpair, a Unix
socket to connect or listen on, and fds passed with SCM_RIGHTS. ``_socket.socket`` has
every method used here (close-on-exec as socket.socket's are); it lacks socket.py's
conveniences (``with``, ``accept``, ``send_fds``/``recv_fds``), written out below as
socket.py writes them, but with struct for the fds' C ints: the array module imports
collections.abc (to register array as a MutableSequence).
"""

from __future__ import annotations

import _socket
import struct

AF_INET = _socket.AF_INET
AF_UNIX = _socket.AF_UNIX
SOCK_DGRAM = _socket.SOCK_DGRAM
SOCK_SEQPACKET = _socket.SOCK_SEQPACKET
SOCK_STREAM = _socket.SOCK_STREAM

Socket = _socket.socket


def socketpair(kind: int) -> tuple[Socket, Socket]:
    """A connected pair of AF_UNIX sockets of type ``kind``."""
    return _socket.socketpair(AF_UNIX, kind)


def unix_socket() -> Socket:
    """A new AF_UNIX stream socket."""
    return Socket(AF_UNIX, SOCK_STREAM)


def accept(listener: Socket) -> Socket:
    """``listener.accept()[0]``: the connection, blocking (socket.accept's default)."""
    fd, _ = listener._accept()
    conn = Socket(fileno=fd)
    conn.setblocking(True)
    return conn


def send_fds(sock: Socket, buffers: list[bytes], fds: list[int]) -> int:
    """``socket.send_fds``: ``buffers`` with ``fds`` attached (SCM_RIGHTS)."""
    return sock.sendmsg(buffers, [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                                   struct.pack(f"{len(fds)}i", *fds))])


def recv_fds(sock: Socket, bufsize: int, maxfds: int,
             flags: int = 0) -> tuple[bytes, list[int], int, object]:
    """``socket.recv_fds``: (data, fds, msg flags, address); at most ``maxfds`` fds."""
    size = struct.calcsize("i")
    fds: list[int] = []
    msg, ancdata, msg_flags, addr = sock.recvmsg(bufsize, _socket.CMSG_LEN(maxfds * size),
                                                 flags)
    for level, kind, data in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds += struct.unpack(f"{len(data) // size}i", data[:len(data) - len(data) % size])
    return msg, fds, msg_flags, addr
