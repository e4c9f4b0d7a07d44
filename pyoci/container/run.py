"""``run``: create and start in one call; in the foreground, wait and return the exit code.

In the foreground pyoci makes itself a child subreaper before forking, so the
container's init (whose forking parent exits) is re-parented to it: it can
then be waited for, and signals pyoci receives are forwarded to it.
"""

from __future__ import annotations

import os
import signal

import prctl

from pyoci.container.container import Container

UNFORWARDED = {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD}


def run(container_id: str, bundle: str, root: str, *, detach: bool = False,
        keep: bool = False, **create_options) -> int:
    if not detach:
        prctl.set_child_subreaper(True)
    container = Container.create(container_id, bundle, root, **create_options)
    try:
        container.start()
    except BaseException:
        container.delete(force=True)
        _reap_all()
        raise
    if detach:
        return 0
    pid = container.stored()["pid"]  # type: ignore[index]
    _forward_signals(pid)
    code = _wait_for(pid)
    if not keep:
        container.delete(force=True)
    _reap_all()
    return code


def _forward_signals(pid: int) -> None:
    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in signal.valid_signals():
        if sig not in UNFORWARDED:
            try:
                signal.signal(sig, forward)
            except (OSError, ValueError):
                continue


def _wait_for(pid: int) -> int:
    """Reap children (orphans come to us as subreaper) until init exits."""
    while True:
        try:
            reaped, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 255
        except InterruptedError:
            continue
        if reaped == pid:
            return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) \
                else 128 + os.WTERMSIG(status)


def _reap_all() -> None:
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return
