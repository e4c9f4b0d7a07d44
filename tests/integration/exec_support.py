"""Helpers for the exec, terminal and foreground-run tests (no fixtures: see conftest.py)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import select
import shlex
import socket
import struct
import termios
import threading
import time

import pytest

_RUNTIME = shlex.split(os.environ.get("PYOCI_TEST_RUNTIME", ""))
UNDER_RUNC = bool(_RUNTIME) and os.path.basename(_RUNTIME[0]) != "pyoci"
pyoci_only = pytest.mark.skipif(UNDER_RUNC, reason="pyoci-specific wording or behaviour")

SLEEPER = ["sleep", "100000"]


def start_container(pyoci, bundle: str, cid: str, cfg: dict, write_config) -> dict:
    """``run --detach`` ``cfg`` (its process should keep running); the container's state."""
    write_config(bundle, cfg)
    r = pyoci("run", "--detach", "--bundle", bundle, cid)
    assert r.returncode == 0, f"run -d failed ({r.returncode}): {r.stderr}"
    return state(pyoci, cid)


def state(pyoci, cid: str) -> dict:
    r = pyoci("state", cid)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def wait_for(predicate, timeout: float = 10.0, what: str = "condition", interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}", pytrace=False)
        time.sleep(interval)


_LOGFMT = re.compile(r'^time="[^"]*" level=\w+ msg="(.*)"$')


def one_line_error(r, *needles: str, code: int = 255) -> str:
    """Failed with ``code``, exactly one stderr line naming every needle, no traceback.

    Returns the message (runc's logfmt ``msg="..."`` unquoted, when the suite runs
    against runc)."""
    assert r.returncode == code, f"exit {r.returncode}, wanted {code}: {r.stderr!r}"
    assert "Traceback" not in r.stderr, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one stderr line: {r.stderr!r}"
    line = lines[0]
    m = _LOGFMT.match(line)
    if m:
        line = m.group(1).replace('\\"', '"').replace("\\\\", "\\")
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    return line


def controlling_terminal() -> None:
    """preexec_fn: a session of its own whose controlling terminal is stdin (a pty)."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def ns_of(pid: int | str, ns: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{ns}")


def pids_in_pidns(init_pid: int) -> set[int]:
    """Host pids of every process in init's PID namespace (init included)."""
    target = ns_of(init_pid, "pid")
    found = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if ns_of(name, "pid") == target:
                    found.add(int(name))
            except OSError:
                continue
    return found


def status_field(pid: int, field: str) -> str | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def children_of(ppid: int) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit() and status_field(int(name), "PPid") == str(ppid):
            out.append(int(name))
    return out


# --- terminals ------------------------------------------------------------------------


class ConsoleSocket:
    """A listening AF_UNIX socket; a thread accepts one connection and keeps the fds the
    runtime sends (the pty master)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.fds: list[int] = []
        self.got = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            self.sock.settimeout(60)
            conn, _ = self.sock.accept()
            with conn:
                conn.settimeout(60)
                while True:
                    data, fds, _, _ = socket.recv_fds(conn, 4096, 8)
                    self.fds.extend(fds)
                    if fds:
                        self.got.set()
                    if not data and not fds:
                        return
        except BaseException as e:  # noqa: BLE001 - reported by master()
            self.error = e
        finally:
            self.got.set()

    def master(self, timeout: float = 60) -> int:
        assert self.got.wait(timeout), "no pty master arrived on the console socket"
        if self.error:
            raise self.error
        assert len(self.fds) == 1, f"expected exactly one fd, got {self.fds}"
        return self.fds[0]

    def close(self) -> None:
        self.sock.close()
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = []


def read_until(fd: int, needle: bytes, timeout: float = 20) -> bytes:
    """Read from ``fd`` until ``needle`` has been seen; everything read."""
    data, deadline = b"", time.monotonic() + timeout
    while needle not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"{needle!r} not read within {timeout}s: {data!r}", pytrace=False)
        ready, _, _ = select.select([fd], [], [], min(left, 0.2))
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the other side is closed
                break
            if not chunk:
                break
            data += chunk
    return data


def set_winsize(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def is_raw(fd: int) -> bool:
    lflag = termios.tcgetattr(fd)[3]
    return not lflag & (termios.ICANON | termios.ECHO | termios.ISIG)
