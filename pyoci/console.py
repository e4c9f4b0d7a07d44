"""The foreground side of ``run`` and ``exec``: signals, the process's exit, and a terminal.

pyoci stays in the foreground while the container's process runs: it forwards the
signals it receives to that process, returns the process's exit code (128+signal when
it was killed) and, when the process has a terminal that pyoci made itself, puts the
caller's terminal in raw mode, copies bytes both ways between it and the pty master and
passes window-size changes (SIGWINCH) on.

Everything happens in one poll loop: signals arrive through ``signal.set_wakeup_fd`` (so
they are queued from the moment :class:`SignalQueue` is made, before the process even
exists), the process's exit through a pidfd, and terminal data through the fds
themselves.  No threads: the exec path forks the interpreter, which must then hold
nothing but the main thread.
"""

from __future__ import annotations

import _signal  # signal's C core: signal.py's enums import enum, functools, collections
import errno
import fcntl
import os
import select
import struct
import time

# Never forwarded: uncatchable, or our own business (SIGCHLD: children; SIGWINCH: the pty).
NOT_FORWARDED = frozenset({_signal.SIGKILL, _signal.SIGSTOP, _signal.SIGCHLD, _signal.SIGWINCH})
# Synchronous signals are about pyoci's own faults: a no-op handler would loop forever.
NOT_CAUGHT = frozenset({_signal.SIGKILL, _signal.SIGSTOP, _signal.SIGSEGV, _signal.SIGBUS,
                        _signal.SIGFPE, _signal.SIGILL, _signal.SIGTRAP, _signal.SIGSYS})
# How long to keep reading a pty once its process has exited and the slave is still open
# (a background process of the container holding it): output that was already written.
DRAIN_IDLE_SECONDS = 0.1
DRAIN_MAX_SECONDS = 2.0
# Piped input to a terminal: its end is passed on once the program was quiet this long.
EOF_IDLE_SECONDS = 0.2
# termios is imported by the functions that need a terminal, not here: a run or exec
# without one never loads it. Past pivot_root (exec's process sets the pty's size) it is
# already loaded: pyoci.tty, which every terminal set-up imports in the runtime, imports it.
_WINSIZE = struct.Struct("HHHH")


def _noop(_signum: int, _frame: object) -> None:
    """The Python-level handler: the work is done by the wakeup fd (see SignalQueue)."""


class SignalQueue:
    """Every catchable signal, queued as bytes on a pipe from the moment this is made.

    ``fd`` becomes readable when a signal arrived; :meth:`take` returns the signals
    (first any put back with :meth:`hold`).  :meth:`close` puts the previous handlers back.
    """

    def __init__(self) -> None:
        global _active
        self.held: list[int] = []
        self.fd, self._w = os.pipe()
        os.set_blocking(self.fd, False)
        os.set_blocking(self._w, False)
        self._old_wakeup = _signal.set_wakeup_fd(self._w, warn_on_full_buffer=False)
        self._saved: dict[int, object] = {}
        # _signal, not signal: a fifth of the cost, for the ~60 signals (same handlers)
        for sig in _signal.valid_signals():
            if sig in NOT_CAUGHT:
                continue
            try:
                self._saved[sig] = _signal.signal(sig, _noop)
            except (OSError, ValueError):  # glibc's own real-time signals
                continue
        _active = self
        _register_at_fork()

    def hold(self, sigs: list[int]) -> None:
        """Keep ``sigs`` for the next :meth:`take` (seen before there was anyone to send
        them to)."""
        self.held.extend(sigs)

    def take(self) -> list[int]:
        held, self.held = self.held, []
        data = b""
        while True:
            try:
                chunk = os.read(self.fd, 512)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        return held + list(data)

    def close(self) -> None:
        global _active
        self._restore_handlers()
        if self.fd >= 0:
            os.close(self.fd)
            os.close(self._w)
            self.fd = self._w = -1
        if _active is self:
            _active = None

    def _restore_handlers(self) -> None:
        for sig, handler in self._saved.items():
            try:
                _signal.signal(sig, handler)  # type: ignore[arg-type]
            except (OSError, ValueError, TypeError):
                pass
        self._saved = {}
        if self.fd >= 0:
            _signal.set_wakeup_fd(self._old_wakeup)


# The queue in use, if any: a child forked meanwhile (the container's init, while ``run``
# creates it) must not swallow signals into our queue; it gets the handlers back.
_active: SignalQueue | None = None
_at_fork_registered = False


def _after_fork_in_child() -> None:
    global _active
    if _active is not None:
        _active._restore_handlers()
        _active = None


def _register_at_fork() -> None:
    global _at_fork_registered
    if not _at_fork_registered:
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _at_fork_registered = True


def reset_signals_for_exec() -> None:
    """In a forked child about to exec: every disposition back to the default.

    Caught signals are reset by execve anyway; this matters for the ignored ones
    (Python ignores SIGPIPE and SIGXFSZ, and our caller may have ignored more), which
    the container's program would otherwise inherit.  The signal mask is left as is.
    """
    try:
        _signal.set_wakeup_fd(-1)
    except ValueError:
        pass
    for sig in _signal.valid_signals():
        if sig in (_signal.SIGKILL, _signal.SIGSTOP):
            continue
        try:
            _signal.signal(sig, _signal.SIG_DFL)
        except (OSError, ValueError):
            continue


def exit_code(status: int) -> int:
    """A wait status as a shell reports it: the exit code, or 128+signal."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


def get_winsize(fd: int) -> tuple[int, int] | None:
    """(rows, cols) of the terminal on ``fd``, or None if it is not a terminal."""
    import termios  # a terminal only (see _WINSIZE)

    try:
        rows, cols, _, _ = _WINSIZE.unpack(fcntl.ioctl(fd, termios.TIOCGWINSZ, bytes(8)))
    except OSError:
        return None
    return rows, cols


def set_winsize(fd: int, rows: int, cols: int) -> None:
    import termios  # a terminal only (see _WINSIZE)

    fcntl.ioctl(fd, termios.TIOCSWINSZ, _WINSIZE.pack(rows, cols, 0, 0))


def caller_winsize(stdin: int = 0, stdout: int = 1) -> tuple[int, int] | None:
    """The size of the caller's terminal (stdin's, else stdout's), if it has one."""
    return get_winsize(stdin) or get_winsize(stdout)


class Terminal:
    """A container's pty master, tied to the caller's stdin and stdout.

    The caller's stdin, if it is a terminal, is put in raw mode (restored by
    :meth:`restore`): keystrokes, ^C included, go to the container's terminal, which
    does its own line discipline and echo.
    """

    def __init__(self, master: int, stdin: int = 0, stdout: int = 1) -> None:
        self.master = master
        self.stdin = stdin
        self.stdout = stdout
        self.stdin_open = True
        self.master_open = True
        self._pending = b""  # read from stdin, not yet written to the master
        self._eof_due: float | None = None  # when to send the terminal's EOF character
        self._saved_attrs: list | None = None
        os.set_blocking(master, False)

    def set_raw(self) -> None:
        import termios  # a terminal only (see _WINSIZE)

        if not os.isatty(self.stdin):
            return
        try:
            attrs = termios.tcgetattr(self.stdin)
        except termios.error:
            return
        self._saved_attrs = attrs
        raw = [list(a) if isinstance(a, list) else a for a in attrs]
        # cfmakeraw(3)
        raw[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP
                    | termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON)
        raw[1] &= ~termios.OPOST
        raw[2] &= ~(termios.CSIZE | termios.PARENB)
        raw[2] |= termios.CS8
        raw[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG
                    | termios.IEXTEN)
        raw[6][termios.VMIN] = 1
        raw[6][termios.VTIME] = 0
        try:
            termios.tcsetattr(self.stdin, termios.TCSANOW, raw)
        except termios.error:  # e.g. EINTR from SIGTTOU: we run in the background
            self._saved_attrs = None

    def restore(self) -> None:
        import termios  # a terminal only (see _WINSIZE)

        if self._saved_attrs is not None:
            try:
                termios.tcsetattr(self.stdin, termios.TCSANOW, self._saved_attrs)
            except termios.error:
                pass
            self._saved_attrs = None

    def resize(self) -> None:
        size = caller_winsize(self.stdin, self.stdout)
        if size is not None and self.master_open:
            try:
                set_winsize(self.master, *size)
            except OSError:
                pass

    def register(self, poller: select.poll) -> None:
        if self.master_open:
            poller.register(self.master, select.POLLIN | (select.POLLOUT if self._pending else 0))
        if self.stdin_open and len(self._pending) < 65536:
            poller.register(self.stdin, select.POLLIN)

    def handle(self, fd: int, events: int) -> None:
        if fd == self.stdin:
            self._read_stdin()
        elif fd == self.master:
            if events & select.POLLOUT:
                self._flush_pending()
            if events & (select.POLLIN | select.POLLHUP | select.POLLERR):
                self._read_master()

    def _read_stdin(self) -> None:
        try:
            data = os.read(self.stdin, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.stdin_open = False
            if not os.isatty(self.stdin):
                # Piped input ended: end it for the container's terminal too (^D), once
                # the program is quiet: written at once it could arrive before the
                # program set its terminal modes, and be lost in the switch.
                self._eof_due = time.monotonic() + EOF_IDLE_SECONDS
            return
        self._pending += data
        self._flush_pending()

    def _eof_char(self) -> bytes:
        import termios  # a terminal only (see _WINSIZE)

        try:
            eof = termios.tcgetattr(self.master)[6][termios.VEOF]
        except (termios.error, OSError):
            return b"\x04"
        return eof if isinstance(eof, bytes) else bytes([eof])

    def _flush_pending(self) -> None:
        while self._pending and self.master_open:
            try:
                n = os.write(self.master, self._pending)
            except BlockingIOError:
                return
            except OSError:
                self._pending = b""
                return
            self._pending = self._pending[n:]

    def _read_master(self) -> bool:
        """Copy what the master has to stdout; False when there was nothing to read."""
        try:
            data = os.read(self.master, 65536)
        except BlockingIOError:
            return False
        except OSError as e:  # EIO: every slave fd is closed
            if e.errno != errno.EIO:
                raise
            data = b""
        if not data:
            self.master_open = False
            return False
        _write_all(self.stdout, data)
        if self._eof_due is not None:
            self._eof_due = time.monotonic() + EOF_IDLE_SECONDS
        return True

    def timeout(self) -> int | None:
        """Milliseconds the poll loop may sleep before :meth:`tick` has work."""
        if self._eof_due is None:
            return None
        return max(0, int((self._eof_due - time.monotonic()) * 1000) + 1)

    def tick(self) -> None:
        if self._eof_due is not None and time.monotonic() >= self._eof_due:
            self._eof_due = None
            self._pending += self._eof_char()
            self._flush_pending()

    def drain(self) -> None:
        """After the process exited: copy out what it wrote, until the pty is closed
        or quiet (another process of the container may hold the slave open)."""
        deadline = time.monotonic() + DRAIN_MAX_SECONDS
        while self.master_open and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], DRAIN_IDLE_SECONDS)
            if not ready or not self._read_master():
                break

    def close(self) -> None:
        self.restore()
        if self.master >= 0:
            os.close(self.master)
            self.master = -1
        self.master_open = False


def _write_all(fd: int, data: bytes) -> None:
    while data:
        try:
            n = os.write(fd, data)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        except BrokenPipeError:
            return
        data = data[n:]


def wait_foreground(pid: int, signals: SignalQueue, terminal: Terminal | None = None,
                    reap_orphans: bool = False) -> int:
    """Forward signals to ``pid`` (our child) and copy its terminal until it exits.

    Returns its exit code (128+signal if killed).  ``reap_orphans``: pyoci is a
    subreaper, so orphans of the container come to it; reap them too.
    """
    pidfd = os.pidfd_open(pid)
    status: int | None = None
    try:
        for sig in signals.take() if signals.held else ():
            status = _on_signal(sig, pid, terminal, reap_orphans, status)
        while status is None:
            poller = select.poll()
            poller.register(signals.fd, select.POLLIN)
            poller.register(pidfd, select.POLLIN)
            if terminal is not None:
                terminal.register(poller)
            for fd, events in poller.poll(terminal.timeout() if terminal else None):
                if fd == signals.fd:
                    for sig in signals.take():
                        status = _on_signal(sig, pid, terminal, reap_orphans, status)
                elif fd == pidfd:
                    status = _reap(pid, status)
                elif terminal is not None:
                    terminal.handle(fd, events)
            if terminal is not None:
                terminal.tick()
        if terminal is not None:
            terminal.drain()
    finally:
        os.close(pidfd)
    if reap_orphans:
        reap_zombies()
    return exit_code(status)


def _on_signal(sig: int, pid: int, terminal: Terminal | None, reap_orphans: bool,
               status: int | None) -> int | None:
    if sig == _signal.SIGCHLD:
        if reap_orphans:
            status = reap_zombies(pid, status)
    elif sig == _signal.SIGWINCH:
        if terminal is not None:
            terminal.resize()
    elif sig not in NOT_FORWARDED and status is None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
    return status


def _reap(pid: int, status: int | None) -> int | None:
    try:
        reaped, st = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return status if status is not None else 255 << 8
    return st if reaped == pid else status


def reap_zombies(pid: int = 0, status: int | None = None) -> int | None:
    """Reap every exited child; return ``pid``'s wait status if it was among them."""
    while True:
        try:
            reaped, st = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return status
        if reaped == 0:
            return status
        if reaped == pid:
            status = st
