"""What the v1 and v2 managers share: planned writes, directory creation, freezing,
signalling and removal."""

from __future__ import annotations

import _signal  # signal's C core: signal.py's enums import enum, functools, collections
import errno
import os
import time

from pyoci import logger
from pyoci.cgroups import CgroupError, cgroup_pids, remove_dir
from pyoci.fileio import read_all


class Write:
    """One planned write of ``value`` to ``directory/file``, for the config field ``field``.

    ``optional``: skipped when the file does not exist.  ``retry``: an EINVAL is retried
    once after the other writes (period before quota, burst before quota).
    ``readback``: the kernel clamps silently; read the value back and name the bound.
    """

    __slots__ = ("field", "directory", "file", "value", "optional", "retry", "readback")

    def __init__(self, field: str, directory: str, file: str, value: object, *,
                 optional: bool = False, retry: bool = False, readback: bool = False) -> None:
        self.field = field
        self.directory = directory
        self.file = file
        self.value = str(value)
        self.optional = optional
        self.retry = retry
        self.readback = readback

    @property
    def path(self) -> str:
        return os.path.join(self.directory, self.file)

    def __repr__(self) -> str:
        return f"Write({self.field}: {self.path} <- {self.value!r})"


def write_file(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def read_file(path: str) -> str:
    return read_all(path).decode()


def read_int(path: str, default: int = 0) -> int:
    try:
        value = read_file(path).strip()
    except OSError:
        return default
    if value == "max":
        return 2 ** 64 - 1
    try:
        return int(value)
    except ValueError:
        return default


def read_kv(path: str) -> dict[str, int]:
    """A flat-keyed file (memory.stat, cpu.stat, memory.events) as a dict."""
    out: dict[str, int] = {}
    try:
        text = read_file(path)
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return out


def missing(writes: list[Write]) -> Write | None:
    """The first non-optional write whose file does not exist."""
    for w in writes:
        if not w.optional and not os.path.exists(w.path):
            return w
    return None


def not_supported(w: Write) -> CgroupError:
    return CgroupError(f"{w.field}: not supported on this host: {w.path} does not exist")


def perform(writes: list[Write]) -> None:
    """Do the writes in order; one clear error naming the field if one fails."""
    later: list[Write] = []
    for w in writes:
        try:
            _do(w)
        except OSError as e:
            if w.retry and e.errno == errno.EINVAL:
                later.append(w)
                continue
            raise _error(w, e) from None
    for w in later:
        try:
            _do(w)
        except OSError as e:
            raise _error(w, e) from None


def _do(w: Write) -> None:
    try:
        write_file(w.path, w.value)
    except FileNotFoundError:
        if w.optional:
            return
        raise
    if w.readback:
        got = read_file(w.path).strip()
        if got != w.value:
            bound = "maximum" if int(w.value) > int(got) else "minimum"
            raise CgroupError(f"{w.field}: {w.value} is out of range: the {bound} allowed "
                              f"{w.file} is {got}")


def _error(w: Write, e: OSError) -> CgroupError:
    if e.errno == errno.ENOENT:
        return not_supported(w)
    return CgroupError(f"{w.field}: cannot set {w.file} to {w.value!r}: {e.strerror}")


def make_dirs(path: str, mountpoint: str, created: list[str], on_new=None) -> None:
    """mkdir -p below ``mountpoint``, recording what was made (parents first)."""
    try:
        os.mkdir(path, 0o755)  # usually only the last one is missing
    except FileExistsError:
        return  # and so its parents are there
    except OSError:
        pass  # a parent is missing (the walk makes it) or a failure (the walk names it)
    else:
        created.append(path)
        if on_new is not None:
            on_new(path)
        return
    if path.startswith(mountpoint + "/"):
        rel = path[len(mountpoint) + 1:]  # resolve_dirs made it normal: relpath's answer
    else:
        rel = os.path.relpath(path, mountpoint)
    current = mountpoint
    for part in rel.split("/"):
        current = os.path.join(current, part)
        try:
            os.mkdir(current, 0o755)
        except FileExistsError:
            continue
        except OSError as e:
            raise CgroupError(f"cannot create cgroup {current}: {e.strerror}") from None
        created.append(current)
        if on_new is not None:
            on_new(current)


def join(directory: str, pid: int) -> None:
    try:
        write_file(os.path.join(directory, "cgroup.procs"), str(pid))
    except OSError as e:
        raise CgroupError(f"cannot join cgroup {directory}: {e.strerror}") from None


def join_self_v1(directories: list[str], pid: int) -> None:
    """Move ``pid`` into v1 ``directories``; the calling process itself through ``tasks``.

    A write of a pid to cgroup.procs takes the kernel's global threadgroup lock for
    writing, whose first taker waits for an RCU grace period (5-20 ms on an idle host);
    "0" written to a v1 ``tasks`` file moves just the calling thread without it.  That
    is the whole process only while it has one thread, so it is used only then.
    """
    if pid != os.getpid() or not _single_threaded():
        for d in directories:
            join(d, pid)
        return
    for d in directories:
        try:
            write_file(os.path.join(d, "tasks"), "0")
        except FileNotFoundError:
            join(d, pid)
        except OSError as e:
            raise CgroupError(f"cannot join cgroup {d}: {e.strerror}") from None


def _single_threaded() -> bool:
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


class DeferredJoin:
    """A v2 cgroup's join left to the fork of the process that must be in it.

    The caller does nothing the cgroup would account before that fork when it
    ``accounts`` (see pyoci.init.stage1).  ``fork(into=True)`` makes the child in the
    cgroup (clone3 CLONE_INTO_CGROUP), without the grace period of a cgroup.procs write
    (see :func:`join_self_v1`).  The kernel checks that against the caller's current
    credentials and cgroup namespace, so a caller that has changed them (a user
    namespace) forks plainly and :meth:`finish` writes the child's pid through the
    cgroup.procs opened up front: for such writes the kernel checks the opener's.
    """

    def __init__(self, directory: str, accounts: bool = False) -> None:
        self.directory = directory
        self.accounts = accounts  # it has controllers: what a process does there counts
        self.joined = False
        flags = os.O_CLOEXEC
        try:
            self.dir_fd = os.open(directory, flags | os.O_RDONLY | os.O_DIRECTORY)
        except OSError as e:
            raise CgroupError(f"cannot join cgroup {directory}: {e.strerror}") from None
        try:
            self.procs_fd = os.open(os.path.join(directory, "cgroup.procs"),
                                    flags | os.O_WRONLY)
        except OSError as e:
            os.close(self.dir_fd)
            raise CgroupError(f"cannot join cgroup {directory}: {e.strerror}") from None

    def fork(self, into: bool) -> int:
        """os.fork(); with ``into``, the child born in the cgroup.

        A refusal by the cgroup is an error, not a retry: the kernel checks it after
        allocating the child's pid, and a failed first fork in a new PID namespace
        leaves that namespace unable to hold any process.  Only a kernel without
        clone3 or CLONE_INTO_CGROUP (refused before that) gets a plain fork.
        """
        if into:
            from pyoci import syscalls

            try:
                pid = syscalls.fork_into_cgroup(self.dir_fd)
            except OSError as e:
                if e.errno not in (errno.ENOSYS, errno.EINVAL, errno.E2BIG):
                    raise CgroupError(f"cannot join cgroup {self.directory}: "
                                      f"{os.strerror(e.errno)}") from None
            else:
                self.joined = True
                return pid
        return os.fork()

    def finish(self, pid: int) -> None:
        """Join ``pid`` unless it was born in the cgroup; close the files either way."""
        try:
            if not self.joined:
                try:
                    os.write(self.procs_fd, str(pid).encode())
                except OSError as e:
                    raise CgroupError(f"cannot join cgroup {self.directory}: "
                                      f"{e.strerror}") from None
                self.joined = True
        finally:
            self.close()

    def close(self) -> None:
        for fd in (self.dir_fd, self.procs_fd):
            if fd >= 0:
                os.close(fd)
        self.dir_fd = self.procs_fd = -1


def has_controllers(directory: str) -> bool:
    """Whether a v2 cgroup has any controller (unreadable: assume it has)."""
    try:
        return bool(read_file(os.path.join(directory, "cgroup.controllers")).split())
    except OSError:
        return True


def remove_created(created: list[str]) -> None:
    """Remove the directories one create made, deepest first; best effort."""
    for d in reversed(created):
        try:
            remove_dir(d, timeout=2.0)
        except CgroupError:
            pass


def kill_and_remove(manager, timeout: float) -> None:
    """SIGKILL whatever is in the container's cgroup, then rmdir it, retrying."""
    deadline = time.monotonic() + timeout
    try:
        # The kernel removes a cgroup only without processes (or sub-cgroups): then
        # there is nothing to kill, and no walk of the directory is needed to know it.
        os.rmdir(manager.procs_dir())
    except OSError:
        kill_procs(manager, deadline)
    last: CgroupError | None = None
    for d in manager.dirs():
        try:
            remove_dir(d, timeout=max(0.5, deadline - time.monotonic()))
        except CgroupError as e:
            last = e
    if last is not None:
        raise last


def abort(manager, timeout: float = 10.0) -> None:
    """Undo a failed create: kill what it started there, remove what it made.

    Only a cgroup found empty (``manager.claimed``) is ours to kill in: a create refused
    because another container is in the cgroup must leave that one alone.
    """
    if getattr(manager, "claimed", False):
        try:
            kill_procs(manager, time.monotonic() + timeout)
        except CgroupError:
            pass
    remove_created(manager.created)


def kill_procs(manager, deadline: float) -> None:
    procs = manager.procs_dir()
    while os.path.isdir(procs):
        pids = cgroup_pids(procs)
        if not pids:
            break
        manager.signal_all(_signal.SIGKILL)
        if time.monotonic() > deadline:
            raise CgroupError(f"cannot remove cgroup {procs}: processes {pids} do not exit")
        time.sleep(0.01)


def signal_pids(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.001
    while not predicate():
        if time.monotonic() > deadline:
            raise CgroupError(what)
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def signal_frozen(manager, sig: int) -> None:
    """Signal every process with the cgroup frozen, so that none forks away meanwhile."""
    was_frozen = manager.is_frozen()
    if not was_frozen:
        _warn_on_error(manager.freeze)
    signal_pids(manager.pids(), sig)
    if not was_frozen or sig == _signal.SIGKILL:
        _warn_on_error(manager.thaw)


def _warn_on_error(func) -> None:
    try:
        func()
    except (OSError, CgroupError) as e:
        logger.warning("%s", e)
