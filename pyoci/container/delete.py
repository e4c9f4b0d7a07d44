"""``delete``: destroy a stopped container (``--force``: any container)."""

from __future__ import annotations

import _signal  # signal's C core: signal.py's enums import enum, functools, collections
import os
import select

from pyoci import jsonio, logger
from pyoci import state as st
from pyoci.container.container import Container
from pyoci.container.kill import container_pids
from pyoci.errors import ContainerNotFound, CorruptState, PyociError


def delete(container: Container, force: bool = False) -> None:
    """Delete the container; with ``force``, one that is gone (or going) is no error."""
    try:
        _delete(container, force)
    except ContainerNotFound:
        if not force:
            raise


def _delete(container: Container, force: bool) -> None:
    with st.Lock(container.dir):
        try:
            stored = container.stored()
        except CorruptState:
            if not force:
                raise
            _delete_corrupt(container)
            return
        if stored is None:
            _delete_unfinished(container, force)
            return
        status = st.status_of(container.dir, stored)
        if status in ("running", "paused") and not force:
            raise PyociError(f"cannot delete container {container.id} that is not stopped: "
                             f"{status}")
        if status == "creating" and not force:
            raise PyociError(f"cannot delete container {container.id} that is being created")
        if stored is not None and status != "stopped":
            _kill_and_wait(stored)
        _destroy(container, stored)


def _delete_corrupt(container: Container) -> None:
    """delete --force of a container whose state.json is unreadable: its cgroup is found
    again from its config.json (as create placed it), its processes in it killed."""
    try:
        config = _read_config(container)
    except ValueError:
        config = {}
    if config:
        from pyoci import cgroups

        try:
            cgroups.new_manager(config, container.id).destroy()
        except Exception as e:  # noqa: BLE001 - best effort: the state is gone either way
            logger.warning("container %s: cannot remove its cgroup: %s", container.id, e)
    st.remove_dir(container.dir)


def _delete_unfinished(container: Container, force: bool) -> None:
    """A container that never became ready: still being created, or its creator died.

    A live creator notices the directory is gone and undoes its own work; after a dead
    one, what it recorded in creating.json (its init, its cgroup) is cleaned up here.
    """
    creating = st.read_creating(container.dir)
    if not st.creator_gone(creating):
        if not force:
            raise PyociError(f"cannot delete container {container.id} that is being created")
        st.remove_dir(container.dir)
        return
    assert creating is not None
    if creating.get("pid") and st.is_alive(creating["pid"], creating.get("pid_start")):
        _kill_and_wait({**creating, "cgroup": None})
    if creating.get("cgroup"):
        from pyoci.cgroups import destroy

        destroy(creating)
    st.remove_dir(container.dir)


def stop_and_destroy(container: Container, stored: dict) -> None:
    """For a start that failed: the spec's "stop the container, and continue the lifecycle
    at step 12" -- kill what is left, undo create (the cgroup), run the poststop hooks.

    The state directory stays, as a stopped container marked destroyed, so that the
    `delete` callers send next (as after runc) succeeds without running poststop again.
    The caller holds the container's lock.
    """
    _kill_and_wait(stored)
    if stored.get("cgroup"):
        from pyoci.cgroups import destroy

        destroy(stored)
    stored = {**stored, "cgroup": None, "freezer": None, "destroyed": True}
    st.write_state(container.dir, stored)
    _run_poststop(_read_config(container), stored)


def _kill_and_wait(stored: dict) -> None:
    if not stored.get("cgroup") and not st.is_alive(stored["pid"], stored["pid_start"]):
        return  # init is gone, and its PID may be another process's by now
    pids = container_pids(stored)
    fds = []
    for pid in pids:
        try:
            fds.append(os.pidfd_open(pid))
            os.kill(pid, _signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        for fd in fds:
            select.select([fd], [], [], 10)
    finally:
        for fd in fds:
            os.close(fd)


def _destroy(container: Container, stored: dict | None) -> None:
    config = _read_config(container)
    if stored is not None and stored.get("cgroup"):
        from pyoci.cgroups import destroy

        destroy(stored)  # kills what lingers in it, retries rmdir while busy
    st.remove_dir(container.dir)
    if stored is not None and not stored.get("destroyed"):
        _run_poststop(config, stored)


def _read_config(container: Container) -> dict:
    try:
        with open(os.path.join(container.dir, st.CONFIG_FILE), "rb") as f:
            return jsonio.loads(f.read())
    except FileNotFoundError:
        return {}


def _run_poststop(config: dict, stored: dict) -> None:
    """Run the poststop hooks; a failing one is only a warning (lifecycle step 13)."""
    poststop = config.get("hooks", {}).get("poststop")
    if poststop:
        from pyoci.hooks import run_hooks

        try:
            run_hooks(poststop, st.oci_state(stored, "stopped"), "poststop")
        except PyociError as e:
            logger.warning("%s", e)
