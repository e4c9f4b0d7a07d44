"""Terminals: the container's pty and the ``--console-socket`` hand-off.

The runtime connects to the console socket (a host path) and passes the
connection to init, which opens a pty inside the container's own devpts,
binds its slave over /dev/console, and sends the master back over the socket
in one SCM_RIGHTS message, as runc does.
"""

from __future__ import annotations

import fcntl
import os
import socket
import termios

from pyoci import syscalls as sc
from pyoci.errors import PyociError
from pyoci.rootfs import Rootfs, fd_path


def connect_console_socket(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise PyociError(f"cannot connect to console socket {path}: {e.strerror}") from None
    return sock


def open_pty() -> tuple[int, str]:
    """A new pty master from the container's /dev/ptmx, and its slave's path."""
    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, termios.TIOCSPTLCK, b"\0\0\0\0")
    return master, os.ptsname(master)


def bind_console(root: Rootfs, slave_path: str) -> None:
    """/dev/console becomes the pty slave, as the spec asks for a terminal."""
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
    fd = root.open("/dev/console")
    try:
        sc.mount(slave_path, fd_path(fd), None, sc.MS_BIND)
    finally:
        os.close(fd)


def send_master(sock: socket.socket, master: int) -> None:
    socket.send_fds(sock, [b"/dev/ptmx"], [master])


def become_session_leader(slave_path: str) -> None:
    """Make the pty slave this process's controlling terminal and its stdio."""
    os.setsid()
    slave = os.open(slave_path, os.O_RDWR)
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)
