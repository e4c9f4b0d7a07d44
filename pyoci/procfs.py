"""A procfs the container cannot tamper with, for every write the runtime makes to /proc.

The container's /proc is a path inside a tree the container (or a racing container
sharing a volume) may control: a bind mount, a symlink or a tmpfs over
``/proc/self/attr/exec`` or ``/proc/sys/...`` would redirect the runtime's write
(CVE-2019-19921, CVE-2025-52881).  :class:`ProcFS` instead holds a *detached* procfs
mount, in order of preference:

1. a fresh private instance (fsopen("proc") + fsmount), attached nowhere;
2. a non-recursive clone of the existing /proc mount (open_tree OPEN_TREE_CLONE),
   which carries none of the mounts made on top of it;
3. /proc itself, checked to be the root of a procfs.

Every file is then opened relative to that root with openat2(RESOLVE_BENEATH |
RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS) and checked to be on
procfs, so neither a symlink nor any mount crossing can redirect it.
"""

from __future__ import annotations

import os

from pyoci import syscalls as sc
from pyoci.errors import PyociError

PROC_SUPER_MAGIC = 0x9FA0
PROC_ROOT_INO = 1
RESOLVE = (sc.RESOLVE_BENEATH | sc.RESOLVE_NO_XDEV | sc.RESOLVE_NO_SYMLINKS
           | sc.RESOLVE_NO_MAGICLINKS)


def fs_magic(fd: int) -> int:
    """f_type of the filesystem under ``fd`` (fstatfs; Python's statvfs lacks it)."""
    return sc.fs_magic(fd)


def is_procfs_root(fd: int) -> bool:
    return fs_magic(fd) == PROC_SUPER_MAGIC and os.fstat(fd).st_ino == PROC_ROOT_INO


def _private_instance() -> int:
    fs = sc.fsopen("proc")
    try:
        sc.fsconfig(fs, sc.FSCONFIG_CMD_CREATE)
        return sc.fsmount(fs)
    finally:
        os.close(fs)


def _clone_of(path: str) -> int:
    return sc.open_tree(-100, path, sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC)


class ProcFS:
    """An fd on a procfs root, opened once; files under it are opened safely."""

    def __init__(self, fallback: str = "/proc") -> None:
        self.fd = -1
        self.how = ""
        for how, opener in (("private", _private_instance),
                            ("clone", lambda: _clone_of(fallback)),
                            ("path", lambda: os.open(fallback, os.O_PATH | os.O_DIRECTORY
                                                     | os.O_CLOEXEC))):
            try:
                fd = opener()
            except OSError:
                continue
            if is_procfs_root(fd):
                self.fd, self.how = fd, how
                return
            os.close(fd)
        raise PyociError(f"no procfs found: {fallback} is not the root of a procfs mount")

    def open(self, rel: str, flags: int = os.O_RDONLY) -> int:
        """Open ``rel`` (relative to the procfs root) with no symlink or mount crossing."""
        fd = sc.openat2(self.fd, rel.lstrip("/"), flags | os.O_CLOEXEC, 0, RESOLVE)
        try:
            if fs_magic(fd) != PROC_SUPER_MAGIC:
                raise PyociError(f"/proc/{rel} is not on procfs")
        except BaseException:
            os.close(fd)
            raise
        return fd

    def open_self(self, rel: str, flags: int = os.O_RDONLY) -> int:
        """``/proc/self/<rel>`` of the calling thread group, without the "self" symlink."""
        return self.open(f"{os.getpid()}/{rel}", flags)

    def write(self, rel: str, data: bytes | str) -> None:
        raw = data.encode() if isinstance(data, str) else data
        fd = self.open(rel, os.O_WRONLY)
        try:
            os.write(fd, raw)
        finally:
            os.close(fd)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> ProcFS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_shared: ProcFS | None = None


def shared() -> ProcFS:
    """One ProcFS per process (init opens it once and uses it for every write)."""
    global _shared
    if _shared is None or _shared.fd < 0:
        _shared = ProcFS()
    return _shared


def close_shared() -> None:
    global _shared
    if _shared is not None:
        _shared.close()
        _shared = None
