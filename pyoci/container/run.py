"""``run``: create and start in one call; in the foreground, wait and return the exit code.

In the foreground pyoci is a child subreaper while it creates the container, so the
container's init (whose forking parent exits) is re-parented to it and can be waited
for.  It stays one, reaping the container's orphans, unless ``--no-subreaper``: then it
stops being one as soon as init is its child (as runc's init is runc's own child).

Signals pyoci receives are queued from the start and forwarded to init once it exists
(see :mod:`pyoci.console`).  With ``process.terminal`` and no ``--console-socket``, pyoci
makes a console socket of its own, receives the pty master, puts the caller's terminal
in raw mode and copies both ways, passing window-size changes on.
"""

from __future__ import annotations

import os

from pyoci import jsonio, syscalls, unixsock
from pyoci.console import SignalQueue, Terminal, reap_zombies, wait_foreground
from pyoci.container.container import Container
from pyoci.errors import PyociError

CONSOLE_TIMEOUT = 10.0


def run(container_id: str, bundle: str, root: str, *, detach: bool = False,
        keep: bool = False, no_subreaper: bool = False, **create_options) -> int:
    terminal_wanted = _wants_terminal(bundle)
    if create_options.get("console_socket") and (not detach or terminal_wanted is False):
        # runc's rule: the console socket is for a detached container with a terminal
        raise PyociError("cannot use console socket if pyoci will not detach or allocate tty")
    if detach:
        container = Container.create(container_id, bundle, root, meanwhile=_prefetch_start,
                                     **create_options)
        try:
            container.start()
        except BaseException:
            container.delete(force=True)
            raise
        return 0
    signals = SignalQueue()
    listener: _ConsoleListener | None = None
    terminal: Terminal | None = None
    try:
        syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)  # python-prctl: the container only
        if terminal_wanted:
            listener = _ConsoleListener()
            create_options["console_socket"] = listener.path
        container = Container.create(container_id, bundle, root, meanwhile=_prefetch,
                                     **create_options)
        try:
            if no_subreaper:
                syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 0)  # init is our child by now
            if listener is not None:
                terminal = Terminal(listener.receive())
                listener.close()
                listener = None
                terminal.set_raw()
                terminal.resize()
            container.start()
            pid = container.stored()["pid"]  # type: ignore[index]
            code = wait_foreground(pid, signals, terminal, reap_orphans=not no_subreaper)
        except BaseException:
            container.delete(force=True)
            reap_zombies()
            raise
        if terminal is not None:
            terminal.restore()
        if not keep:
            container.delete(force=True)
        reap_zombies()
        return code
    finally:
        if terminal is not None:
            terminal.close()
        if listener is not None:
            listener.close()
        signals.close()


def _prefetch_start() -> None:
    """What start imports, imported while init sets the container up (create's
    ``meanwhile``: the runtime only waits then)."""
    import pyoci.container.start  # noqa: F401


def _prefetch() -> None:
    """What start and, once the container has exited, delete import (see above)."""
    _prefetch_start()
    import pyoci.container.delete  # noqa: F401 - imports kill too


def _wants_terminal(bundle: str) -> bool | None:
    """Whether config.json asks for a terminal; None if it can't be read (a bad config
    is create's to report)."""
    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            return bool(jsonio.loads(f.read()).get("process", {}).get("terminal"))
    except (OSError, ValueError, AttributeError):
        return None


class _ConsoleListener:
    """A console socket of pyoci's own, in a private directory, for a foreground run."""

    def __init__(self) -> None:
        self.dir = _private_dir("pyoci-console-")
        self.path = os.path.join(self.dir, "console.sock")
        self.sock = unixsock.unix_socket()
        self.sock.bind(self.path)
        self.sock.listen(1)

    def receive(self) -> int:
        """The pty master init sent while it was being created."""
        self.sock.settimeout(CONSOLE_TIMEOUT)
        try:
            conn = unixsock.accept(self.sock)
        except TimeoutError:
            raise PyociError("the container's init sent no console") from None
        try:
            conn.settimeout(CONSOLE_TIMEOUT)
            _, fds, _, _ = unixsock.recv_fds(conn, 1024, 1)
        finally:
            conn.close()
        if not fds:
            raise PyociError("the container's init sent no console")
        return fds[0]

    def close(self) -> None:
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.rmdir(self.dir)


def _private_dir(prefix: str) -> str:
    """``tempfile.mkdtemp(prefix=prefix)`` (mode 0700, a random name) in $TMPDIR or /tmp,
    without importing tempfile (with shutil and random) on `run`'s path; tempfile itself
    when that directory will not do."""
    base = os.environ.get("TMPDIR") or "/tmp"
    for _ in range(10):
        path = os.path.join(base, prefix + os.urandom(6).hex())
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue
        except OSError:
            break
    import tempfile

    return tempfile.mkdtemp(prefix=prefix)
