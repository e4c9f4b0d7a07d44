"""Container state kept on disk under ``<root>/<id>/``.

``state.json`` is written once the container's init is ready; until then the
directory alone means the container is ``creating``.  The exec fifo exists
between create and start, which is how ``created`` is told from ``running``.
Liveness is the init PID *and* its start time, so a recycled PID is never
mistaken for the container.  Only the standard library is imported here: this
module is on the hot path of ``state`` and ``kill``.
"""

from __future__ import annotations

import fcntl
import os

from pyoci import jsonio
from pyoci.errors import ContainerNotFound, CorruptState
from pyoci.fileio import write_new

# Paths are plain strings: pathlib (with fnmatch, re, urllib.parse) would cost every call.

STATE_FILE = "state.json"
# Written by create once the cgroup is made (the creator, the cgroup) and again once init's
# PID is known, so that a container whose creator died half-way can still be cleaned up.
CREATING_FILE = "creating.json"
CONFIG_FILE = "config.json"
EXEC_FIFO = "exec.fifo"
OCI_VERSION = "1.3.0"


def container_dir(root: str, container_id: str) -> str:
    return os.path.join(root, container_id)


def process_start_time(pid: int) -> int | None:
    """The start time (clock ticks since boot) of a live, non-zombie ``pid``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name may hold spaces or parentheses: split after the last ')'.
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def is_alive(pid: int, start_time: int) -> bool:
    return pid > 0 and process_start_time(pid) == start_time


class Lock:
    """An exclusive flock on the container directory, held for one operation.

    Raises ContainerNotFound if the directory is gone, also when it went away (deleted by
    the holder we waited for) between our open and our getting the lock.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> Lock:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise ContainerNotFound() from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(self.path)
            except (FileNotFoundError, NotADirectoryError):
                raise ContainerNotFound() from None
            if not os.path.samestat(os.fstat(fd), current):
                raise ContainerNotFound()
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def remove_dir(path: str) -> None:
    """Remove a container directory so that no reader ever sees it half-removed.

    The directory is first renamed out of the way (to a name no container id can have,
    ``~`` not being allowed in ids), which is atomic: until then readers see the whole
    container, afterwards none of it.
    """
    parent, name = os.path.split(path)
    doomed = os.path.join(parent, f".{name}~deleted~{os.getpid()}")
    try:
        os.rename(path, doomed)
    except FileNotFoundError:
        return
    _remove_tree(doomed)


def _remove_tree(path: str) -> None:
    """``shutil.rmtree(path, ignore_errors=True)`` without importing shutil (with bz2 and
    lzma) on every delete: through directory fds, symlinks removed and never followed."""
    if _remove_flat(path):
        return
    for _, dirs, files, dir_fd in os.fwalk(path, topdown=False):
        for name in files:
            try:
                os.unlink(name, dir_fd=dir_fd)
            except OSError:
                pass
        for name in dirs:  # a symlink to a directory is listed here, and not walked
            try:
                os.rmdir(name, dir_fd=dir_fd)
            except NotADirectoryError:
                try:
                    os.unlink(name, dir_fd=dir_fd)
                except OSError:
                    pass
            except OSError:
                pass
    try:
        os.rmdir(path)
    except OSError:
        pass


def _remove_flat(path: str) -> bool:
    """A directory of files only (a container's, as a rule) removed without a walk: its
    entries unlinked through its fd, then it. False if it is not gone (for the walk)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        for name in os.listdir(fd):
            try:
                os.unlink(name, dir_fd=fd)
            except OSError:
                pass  # a directory: the walk
    finally:
        os.close(fd)
    try:
        os.rmdir(path)
    except OSError:
        return False
    return True


def read_state(path: str) -> dict | None:
    """The stored state, or None while the container is still being created."""
    file = os.path.join(path, STATE_FILE)
    try:
        with open(file, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        if not os.path.isdir(path):
            raise ContainerNotFound() from None
        return None
    except NotADirectoryError:  # a stray file in the root, not a container
        raise ContainerNotFound() from None
    try:
        stored = jsonio.loads(data)
        if not isinstance(stored, dict) or not isinstance(stored.get("pid"), int):
            raise ValueError("not a container's state")
    except ValueError as e:
        raise CorruptState(f"container state {file} is corrupt: {e}") from None
    return stored


def write_state(path: str, data: dict, name: str = STATE_FILE) -> None:
    """Atomically replace state.json (or ``name``), so readers never see half a file."""
    os.replace(stage_state(path, data, name), os.path.join(path, name))


def stage_state(path: str, data: dict, name: str = STATE_FILE) -> str:
    """``name``'s next content written aside, for os.replace to put in place: its path."""
    tmp = os.path.join(path, name + ".tmp")
    write_new(tmp, jsonio.dumps(data).encode())  # json.dump: pure Python, piece by piece
    return tmp


def read_creating(path: str) -> dict | None:
    """What create recorded before the container was ready (None if nothing yet)."""
    try:
        with open(os.path.join(path, CREATING_FILE), "rb") as f:
            return jsonio.loads(f.read())
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None


def creator_gone(creating: dict | None) -> bool:
    """Whether the process that was creating the container has died without finishing."""
    return creating is not None and not is_alive(creating["creator"],
                                                 creating["creator_start"])


def is_frozen(stored: dict) -> bool:
    """Whether the container's cgroup freezer holds it (set by pause)."""
    freezer = stored.get("freezer")
    if not freezer:
        return False
    try:
        with open(freezer) as f:
            value = f.read().strip()
    except OSError:
        return False
    return value in ("1", "FROZEN", "FREEZING")


def status_of(path: str, stored: dict | None) -> str:
    if stored is None:
        # Being created -- unless the creator died: then it never will be.
        return "stopped" if creator_gone(read_creating(path)) else "creating"
    if not is_alive(stored["pid"], stored["pid_start"]):
        return "stopped"
    if is_frozen(stored):
        return "paused"
    if os.path.exists(os.path.join(path, EXEC_FIFO)):
        return "created"
    return "running"


def oci_state(stored: dict, status: str) -> dict:
    """The runtime-spec state object, with runc's extra fields (rootfs, created, owner)."""
    state = {
        "ociVersion": OCI_VERSION,
        "id": stored["id"],
        "pid": stored["pid"] if status != "stopped" else 0,
        "status": status,
        "bundle": stored["bundle"],
        "rootfs": stored["rootfs"],
        "created": stored["created"],
        "owner": stored.get("owner", ""),
    }
    if stored.get("annotations"):
        state["annotations"] = stored["annotations"]
    return state
