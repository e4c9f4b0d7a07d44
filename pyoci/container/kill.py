"""``kill``: signal the container's init (or, with ``--all``, every process in it)."""

from __future__ import annotations

import _signal  # signal's C core: signal.py's enums import enum, functools, collections
import os

from pyoci import state as st
from pyoci.container.container import Container
from pyoci.errors import PyociError


def kill(container: Container, sig: int, all_processes: bool = False) -> None:
    stored = container.stored()
    status = st.status_of(container.dir, stored)
    if status not in ("created", "running", "paused"):
        raise PyociError("container not running")
    assert stored is not None
    if all_processes:
        signal_all(stored, sig)
    else:
        signal_init(stored, sig)


def signal_init(stored: dict, sig: int) -> None:
    """Signal init through a pidfd checked against its start time: never a recycled PID."""
    try:
        pidfd = os.pidfd_open(stored["pid"])
    except ProcessLookupError:
        raise PyociError("container not running") from None
    try:
        if st.process_start_time(stored["pid"]) != stored["pid_start"]:
            raise PyociError("container not running")
        try:
            _signal.pidfd_send_signal(pidfd, sig)
        except ProcessLookupError:  # init exited since: the pidfd still names it, not a reuse
            raise PyociError("container not running") from None
    finally:
        os.close(pidfd)


def container_pids(stored: dict) -> list[int]:
    """Every process in the container: those in its cgroup, or else those sharing init's
    PID namespace, if it has one."""
    if stored.get("cgroup"):
        from pyoci.cgroups import cgroup_pids, procs_dir

        return cgroup_pids(procs_dir(stored))
    pid = stored["pid"]
    try:
        own_ns = os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return []
    if own_ns == os.readlink("/proc/self/ns/pid"):
        return [pid]
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.readlink(f"/proc/{name}/ns/pid") == own_ns:
                    pids.append(int(name))
            except OSError:
                continue
    return pids


def signal_all(stored: dict, sig: int) -> None:
    if stored.get("cgroup"):
        from pyoci.cgroups import kill_all

        kill_all(stored, sig)  # frozen while signalled, so that nothing forks away
        return
    for pid in container_pids(stored):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
