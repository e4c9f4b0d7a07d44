"""Namespaces: which to create and which to join, from ``linux.namespaces``."""

from __future__ import annotations

import os

from pyoci import syscalls
from pyoci.errors import PyociError

# config type -> (clone flag, name under /proc/<pid>/ns)
NAMESPACES: dict[str, tuple[int, str]] = {
    "user": (syscalls.CLONE_NEWUSER, "user"),
    "mount": (syscalls.CLONE_NEWNS, "mnt"),
    "pid": (syscalls.CLONE_NEWPID, "pid"),
    "network": (syscalls.CLONE_NEWNET, "net"),
    "ipc": (syscalls.CLONE_NEWIPC, "ipc"),
    "uts": (syscalls.CLONE_NEWUTS, "uts"),
    "cgroup": (syscalls.CLONE_NEWCGROUP, "cgroup"),
    "time": (syscalls.CLONE_NEWTIME, "time"),
}


class NamespacePlan:
    """The namespaces a config asks for, split into those to join and to create."""

    def __init__(self, config: dict) -> None:
        entries = config.get("linux", {}).get("namespaces", [])
        self.types = {ns["type"] for ns in entries}
        self.join = [(ns["type"], ns["path"]) for ns in entries if ns.get("path")]
        # The user namespace is entered first: it grants the rights for the rest.
        self.join.sort(key=lambda e: e[0] != "user")
        self.create = {ns["type"] for ns in entries if not ns.get("path")}

    def has(self, ns_type: str) -> bool:
        return ns_type in self.types

    def creates(self, ns_type: str) -> bool:
        return ns_type in self.create

    def create_flags(self, *, exclude: tuple[str, ...] = ()) -> int:
        flags = 0
        for ns_type in self.create:
            if ns_type not in exclude:
                flags |= NAMESPACES[ns_type][0]
        return flags

    def enter_joined(self) -> None:
        """setns into every namespace given by path, user namespace first."""
        fds: list[tuple[int, int]] = []
        try:
            for ns_type, path in self.join:
                try:
                    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                except OSError as e:
                    raise PyociError(f"open namespace {ns_type} path {path}: "
                                     f"{e.strerror}") from None
                fds.append((fd, NAMESPACES[ns_type][0]))
            try:
                syscalls.join_namespaces(fds)
            except OSError as e:
                ns_type, path = self.join[int(e.filename)]
                raise PyociError(f"failed to join {ns_type} namespace {path}: "
                                 f"{os.strerror(e.errno)}") from None
        finally:
            for fd, _ in fds:
                os.close(fd)


def bring_up_loopback() -> None:
    """``lo`` of a new network namespace starts DOWN; runc brings it up, so do we."""
    import _socket  # not socket: it imports selectors, enum, ... (see pyoci.unixsock)
    import fcntl
    import struct

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s, siocgifflags, req))[1]
        if not flags & iff_up:
            fcntl.ioctl(s, siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))
    finally:
        s.close()
