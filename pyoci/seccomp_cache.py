"""Compiled seccomp filters kept under the state root, so a profile seen before is not
compiled again.

Engines send the same profile with every container (podman its default one), and
compiling it is the most expensive step of `create` and `exec`: importing pyseccomp
(ctypes, typing) and having libseccomp resolve, add and export some 400 rules take about
30 ms, as long as the rest of `create`. crun keeps such a cache too (a checksum of the
profile, its own and libseccomp's versions and the kernel, under its state root).

An entry is found by a CRC of its key and then holds the whole key, compared in full:
the seccomp section as JSON, pyoci's version and the kernel (uname), so a different
profile or a new kernel is never answered from another's entry. It also names the
libseccomp library that compiled it (path, inode, size, mtime), and is ignored once that
file changed (an upgraded libseccomp may resolve more syscall names). Only filters that
compiled without an error, for a container that was then created, are stored; the flags,
which depend on what the running kernel supports, and every other check are done on every
call. The directory,
``<root>/.seccomp~cache`` (not a container id: `list` skips it, as does every other
command), holds at most :data:`MAX_ENTRIES` entries, written whole (a rename) so that
concurrent creates never read half of one. Any entry that is unreadable, malformed or
different is a miss: the filter is compiled as if there were no cache.
"""

from __future__ import annotations

import os
import zlib

from pyoci import __version__, jsonio
from pyoci.fileio import read_all, write_new

DIR_NAME = ".seccomp~cache"
MAX_ENTRIES = 32


class Compiled:
    """What compiling a profile yields, independent of the running kernel's flags."""

    def __init__(self, bpf: bytes, notify: bool, skipped: list[str]) -> None:
        self.bpf, self.notify, self.skipped = bpf, notify, skipped


def _key(seccomp: dict) -> bytes:
    uname = os.uname()
    return jsonio.dumps([__version__, uname.release, uname.version, uname.machine,
                         seccomp]).encode()


def _entry_path(state_root: str, key: bytes) -> str:
    return os.path.join(state_root, DIR_NAME, f"{zlib.crc32(key):08x}-{len(key)}")


def _library_identity(path: str) -> list[object]:
    st = os.stat(path)
    return [path, st.st_ino, st.st_size, st.st_mtime_ns]


def load(state_root: str, seccomp: dict) -> Compiled | None:
    """The cached compilation of ``seccomp``, or None."""
    key = _key(seccomp)
    try:
        data = read_all(_entry_path(state_root, key), os.O_NOFOLLOW)
        header, bpf = data.split(b"\n", 1)
        meta = jsonio.loads(header)
        stored_key, library, notify, skipped, size = meta
        if (stored_key.encode() != key or _library_identity(library[0]) != library
                or len(bpf) != size or size % 8 or not size):
            return None
        return Compiled(bpf, bool(notify), list(skipped))
    except (OSError, ValueError, TypeError, AttributeError, IndexError):
        return None


def store(state_root: str, seccomp: dict, compiled: Compiled, library: str) -> None:
    """Keep ``compiled`` for the next time; a failure to is only a lost optimisation.

    The state root is not made here: the first create makes it, with its own mode.
    """
    key = _key(seccomp)
    path = _entry_path(state_root, key)
    cache_dir = os.path.dirname(path)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        header = jsonio.dumps([key.decode(), _library_identity(library), compiled.notify,
                               compiled.skipped, len(compiled.bpf)]).encode()
        try:
            os.mkdir(cache_dir, 0o700)
        except FileExistsError:
            _evict(cache_dir)
        write_new(tmp, header + b"\n" + compiled.bpf, os.O_EXCL, 0o600)
        os.rename(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _evict(cache_dir: str) -> None:
    """Past MAX_ENTRIES, start over: profiles in use come back at their next create."""
    names = os.listdir(cache_dir)
    if len(names) < MAX_ENTRIES:
        return
    for name in names:
        try:
            os.unlink(os.path.join(cache_dir, name))
        except OSError:
            pass
