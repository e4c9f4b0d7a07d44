"""The channel between the runtime process and the container's init.

A SOCK_SEQPACKET socketpair: one JSON message per packet, so neither side
needs framing.  The parent answers requests (user namespace maps, hooks) and
waits for ``ready`` or ``error``; the child side survives pivot_root because
it is an inherited descriptor, not a path.
"""

from __future__ import annotations

from pyoci import jsonio, unixsock


class ChannelClosed(Exception):
    """The other end went away without a final message."""


class Channel:
    def __init__(self, sock: unixsock.Socket) -> None:
        self.sock = sock

    @classmethod
    def pair(cls) -> tuple[Channel, Channel]:
        parent, child = unixsock.socketpair(unixsock.SOCK_SEQPACKET)
        return cls(parent), cls(child)

    def send(self, kind: str, **fields: object) -> None:
        self.sock.send(jsonio.dumps({"type": kind, **fields}).encode())

    def recv(self, timeout: float | None = None) -> dict:
        self.sock.settimeout(timeout)
        data = self.sock.recv(65536)
        if not data:
            raise ChannelClosed()
        return jsonio.loads(data)

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()
