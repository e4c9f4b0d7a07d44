"""Device nodes in the container's /dev: the defaults, ``linux.devices`` and symlinks."""

from __future__ import annotations

import os
import stat

from pyoci import syscalls as sc
from pyoci.errors import PyociError
from pyoci.rootfs import Rootfs, fd_path

# The devices every container gets (runc's AllowedDevices that are files).
DEFAULT_DEVICES = [
    {"path": "/dev/null", "type": "c", "major": 1, "minor": 3},
    {"path": "/dev/zero", "type": "c", "major": 1, "minor": 5},
    {"path": "/dev/full", "type": "c", "major": 1, "minor": 7},
    {"path": "/dev/random", "type": "c", "major": 1, "minor": 8},
    {"path": "/dev/urandom", "type": "c", "major": 1, "minor": 9},
    {"path": "/dev/tty", "type": "c", "major": 5, "minor": 0},
]

DEV_SYMLINKS = [
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
]

TYPE_BITS = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def needs_dev_setup(config: dict) -> bool:
    """runc leaves /dev alone when the config binds a host directory over it."""
    for m in config.get("mounts", []):
        if m.get("destination", "").rstrip("/") == "/dev":
            opts = m.get("options", [])
            if m.get("type") == "bind" or "bind" in opts or "rbind" in opts:
                return False
    return True


def create_devices(root: Rootfs, config: dict, in_userns: bool) -> None:
    configured = config.get("linux", {}).get("devices", [])
    paths = {d["path"] for d in configured}
    devices = [d for d in DEFAULT_DEVICES if d["path"] not in paths] + configured
    parents = _Parents(root)  # /dev resolved once, not once per node
    try:
        for dev in devices:
            _create_device(root, dev, in_userns, parents)
        for target, link in DEV_SYMLINKS:
            _symlink(root, target, link, parents)
        if os.path.exists("/proc/kcore"):
            _symlink(root, "/proc/kcore", "/dev/core", parents)
    finally:
        parents.close()


class _Parents:
    """O_PATH fds of the directories nodes are made in, each made and resolved once."""

    def __init__(self, root: Rootfs) -> None:
        self.root = root
        self.fds: dict[str, int] = {}

    def get(self, parent: str) -> int:
        fd = self.fds.get(parent)
        if fd is None:
            fd = self.fds[parent] = self.root.mkdir_all(parent)
        return fd

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds = {}


def setup_ptmx(root: Rootfs) -> None:
    """/dev/ptmx points into the container's own devpts instance."""
    try:
        fd = root.open("/dev/pts/ptmx")
    except FileNotFoundError:
        return
    os.close(fd)
    dev = root.mkdir_all("/dev")
    try:
        try:
            os.unlink("ptmx", dir_fd=dev)
        except FileNotFoundError:
            pass
        os.symlink("pts/ptmx", "ptmx", dir_fd=dev)
    finally:
        os.close(dev)


def _symlink(root: Rootfs, target: str, link: str, parents: _Parents) -> None:
    parent, _, name = link.rpartition("/")
    try:
        os.symlink(target, name, dir_fd=parents.get(parent))
    except FileExistsError:
        pass


def _create_device(root: Rootfs, dev: dict, in_userns: bool, parents: _Parents) -> None:
    path = dev["path"]
    parent, _, name = path.rpartition("/")
    kind = dev.get("type", "c")
    if kind not in TYPE_BITS:
        raise PyociError(f"linux.devices: {path}: unknown device type {kind!r}")
    pfd = parents.get(parent or "/")
    try:
        os.unlink(name, dir_fd=pfd)
    except (FileNotFoundError, IsADirectoryError):
        pass
    if in_userns:
        # mknod is not allowed in a user namespace: bind the host's node instead.
        os.close(os.open(name, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o644, dir_fd=pfd))
        fd = root.open(path)
        try:
            sc.mount(path, fd_path(fd), None, sc.MS_BIND)
        finally:
            os.close(fd)
        return
    mode = dev.get("fileMode", 0o666) & 0o7777
    rdev = os.makedev(dev.get("major", 0), dev.get("minor", 0)) if kind != "p" else 0
    try:
        os.mknod(name, mode | TYPE_BITS[kind], rdev, dir_fd=pfd)
    except OSError as e:
        raise PyociError(f"create device {path}: {e.strerror}") from None
    os.chmod(name, mode, dir_fd=pfd, follow_symlinks=False)
    os.chown(name, dev.get("uid", 0), dev.get("gid", 0), dir_fd=pfd, follow_symlinks=False)
