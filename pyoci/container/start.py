"""``start``: release a created container's init to exec the user's program.

Opening the exec fifo for reading unblocks init; init reports through the
fifo (``0`` then exec, or ``E<message>``) and the write end closes when exec
succeeds, so EOF after ``0`` means the program is running.
"""

from __future__ import annotations

import os
import select

from pyoci import jsonio
from pyoci import state as st
from pyoci.container.container import Container
from pyoci.errors import PyociError

# Init's report, when the C front door (csrc/pyoci_main.c) has already released init and
# the report was not the plain success "0": it then execs `start` here with this set, and
# this process only finishes the start (stops and destroys the container, says why). The
# front door had checked the status and released its lock first. None otherwise.
RELEASED: bytes | None = None


def start(container: Container) -> None:
    with st.Lock(container.dir):
        stored = container.stored()
        if RELEASED is not None and stored is not None:
            report = RELEASED
        else:
            report = _checked_release(container, stored)
        if report.startswith(b"0E"):  # the final exec step failed after init's "0"
            report = report[1:]
        if report != b"0":
            _stop_and_destroy(container, stored)
            raise PyociError(report[1:].decode(errors="replace") if report.startswith(b"E")
                             else "container init exited before exec")
        config = _load_config(container)
        poststart = config.get("hooks", {}).get("poststart")
        if poststart:
            _run_poststart(container, stored, poststart)


def _checked_release(container: Container, stored: dict | None) -> bytes:
    """Release the init of a container that is created (an error in runc's words if not)."""
    status = st.status_of(container.dir, stored)
    if status == "stopped":
        raise PyociError("cannot start a container that has stopped")
    if status == "running":
        raise PyociError("cannot start an already running container")
    if status != "created":  # runc's words for paused and creating too
        raise PyociError(f"cannot start a container in the {status} state")
    assert stored is not None
    return _release_init(container, stored)


def _stop_and_destroy(container: Container, stored: dict) -> None:
    """A start that failed (a startContainer or poststart hook, the exec): the spec has the
    runtime stop the container and continue at lifecycle step 12, destroying it and running
    the poststop hooks. A later `delete` then finds nothing, which callers accept."""
    from pyoci.container.delete import stop_and_destroy

    stop_and_destroy(container, stored)


def _release_init(container: Container, stored: dict) -> bytes:
    fifo_path = os.path.join(container.dir, st.EXEC_FIFO)
    fd = os.open(fifo_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    data = b""
    try:
        while True:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                data += chunk
            elif not st.is_alive(stored["pid"], stored["pid_start"]):
                break
    finally:
        os.close(fd)
        os.unlink(fifo_path)
    return data


def _load_config(container: Container) -> dict:
    with open(os.path.join(container.dir, st.CONFIG_FILE), "rb") as f:
        return jsonio.loads(f.read())


def _run_poststart(container: Container, stored: dict, poststart: list) -> None:
    """A failing poststart hook stops and destroys the container, as the spec requires."""
    from pyoci.hooks import run_hooks

    state = st.oci_state(stored, "running")
    try:
        run_hooks(poststart, state, "poststart")
    except PyociError:
        _stop_and_destroy(container, stored)
        raise
