"""Terminals: the container's pty and the ``--console-socket`` hand-off.

The runtime connects to the console socket (a host path) and passes the
connection to init, which opens a pty inside the container's own devpts,
binds its slave over /dev/console, and sends the master back over the socket
in one SCM_RIGHTS message, as runc does.
"""

from __future__ import annotations

import fcntl
import os
import stat
import struct
import termios

from pyoci import syscalls as sc
from pyoci import unixsock
from pyoci.errors import PyociError
from pyoci.rootfs import Rootfs, fd_path

TIOCGPTPEER = 0x5441


def connect_console_socket(path: str) -> unixsock.Socket:
    sock = unixsock.unix_socket()
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise PyociError(f"cannot connect to console socket {path}: {e.strerror}") from None
    return sock


# Python's termios lacks these (and os has no ptsname): <asm-generic/ioctls.h>
TIOCGPTN = 0x80045430  # _IOR('T', 0x30, unsigned int): the pty's number
TIOCSPTLCK = 0x40045431  # _IOW('T', 0x31, int): (un)lock the slave


def open_pty() -> tuple[int, str]:
    """A new pty master from the container's /dev/ptmx, and its slave's path."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
    except OSError:
        os.close(master)
        raise
    return master, f"/dev/pts/{number}"


def open_peer(master: int) -> int:
    """The pty's slave as an fd from its master (TIOCGPTPEER): no path lookup that a
    symlink or mount in the container's /dev/pts could redirect (CVE-2025-52565).

    Where the kernel cannot find the master's devpts (TIOCGPTPEER fails, e.g. ptmx was
    reached through a bind mount) the slave is opened by path, without following a
    symlink, and must be exactly the master's peer device.
    """
    try:
        fd = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        fd = _open_peer_by_path(master)
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or not 136 <= os.major(st.st_rdev) <= 143:
        os.close(fd)
        raise PyociError("the pty slave is not a pseudo-terminal")
    return fd


def _open_peer_by_path(master: int) -> int:
    index = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
    path = f"/dev/pts/{index}"
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as e:
        raise PyociError(f"cannot open the pty slave {path}: {e.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(136 + index // 256,
                                                                  index % 256):
        os.close(fd)
        raise PyociError(f"{path} is not the slave of the container's pty")
    return fd


def bind_console(root: Rootfs, slave_path: str | int) -> None:
    """/dev/console becomes the pty slave (a path, or better an fd from open_peer)."""
    dev = root.mkdir_all("/dev")
    try:
        try:
            os.unlink("console", dir_fd=dev)
        except FileNotFoundError:
            pass
        os.close(os.open("console", os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600, dir_fd=dev))
    finally:
        os.close(dev)
    fd = root.open("/dev/console", os.O_PATH | os.O_NOFOLLOW)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise PyociError("/dev/console in the container is not the file pyoci made")
        src = fd_path(slave_path) if isinstance(slave_path, int) else slave_path
        sc.mount(src, fd_path(fd), None, sc.MS_BIND)
    finally:
        os.close(fd)


def send_master(sock: unixsock.Socket, master: int) -> None:
    unixsock.send_fds(sock, [b"/dev/ptmx"], [master])


def become_session_leader(slave_path: str | int) -> None:
    """Make the pty slave (a path or an fd) this process's controlling terminal and stdio."""
    os.setsid()
    slave = slave_path if isinstance(slave_path, int) else os.open(slave_path, os.O_RDWR)
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)
