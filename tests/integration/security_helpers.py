"""Helpers for the security tests (capabilities, seccomp, user namespaces, CVEs).

Free of fixtures (those are in tests/conftest.py): each test builds a config from
``base_config``, runs a shell script in the container and asserts on its output.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import struct
import tempfile
import threading
import time

# <linux/seccomp.h>: struct seccomp_notif is 80 bytes, seccomp_notif_resp 24.
NOTIF_SIZE = 80
NOTIF_RESP = struct.Struct("=QqiI")
SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101
SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1


def run_script(pyoci, bundle: str, cid: str, cfg: dict, script: str, write_config,
               timeout: float = 60):
    """``pyoci run`` with ``sh -c script`` as the process; the CompletedProcess."""
    cfg["process"]["args"] = ["sh", "-c", script]
    write_config(bundle, cfg)
    return pyoci("run", "--bundle", bundle, cid, timeout=timeout)


def ok(r) -> str:
    assert r.returncode == 0, (f"exit {r.returncode}\n--- stdout\n{r.stdout}"
                               f"--- stderr\n{r.stderr}")
    return r.stdout


def status(text: str) -> dict[str, str]:
    """``Key:\\tvalue`` lines of /proc/<pid>/status as a dict."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key and " " not in key:
            out[key] = value.strip()
    return out


def capmask(names: list[str]) -> int:
    from pyoci.capabilities import CAP_NUMBERS

    m = 0
    for n in names:
        m |= 1 << CAP_NUMBERS[n]
    return m


def one_line_error(r, *needles: str) -> str:
    """The command failed with a one-line message on stderr containing ``needles``."""
    assert r.returncode != 0, f"expected failure, got exit 0\n{r.stdout}{r.stderr}"
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one stderr line, got:\n{r.stderr}"
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"
    return lines[0]


def nothing_left(root: str) -> None:
    """No container state left in the state root."""
    left = os.listdir(root) if os.path.isdir(root) else []
    assert left == [], f"state left behind: {left}"


class NotifyListener:
    """A seccomp agent on a unix socket: receives the container process state and the
    notify fd (SCM_RIGHTS) and answers every notification with ``answer(nr, args)``,
    which returns (val, error, flags)."""

    def __init__(self, answer, directory: str | None = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="pyoci-test-listener-", dir=directory or "/tmp")
        self.path = os.path.join(self.dir, "agent.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(4)
        self.answer = answer
        self.states: list[dict] = []
        self.seen: list[tuple[int, tuple[int, ...]]] = []
        self.errors: list[str] = []
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        import fcntl

        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.settimeout(30)
                try:
                    msg, fds, _, _ = socket.recv_fds(conn, 65536, 4)
                except OSError as e:
                    self.errors.append(f"recv: {e}")
                    continue
                if not msg:
                    continue  # connection closed without a state (container deleted)
                self.states.append(json.loads(msg))
                if len(fds) != 1:
                    self.errors.append(f"expected one fd, got {fds}")
                    for fd in fds:
                        os.close(fd)
                    continue
            nfd = fds[0]
            try:
                while not self._stop.is_set():
                    r, _, x = select.select([nfd], [], [nfd], 0.2)
                    if not r:
                        continue
                    buf = bytearray(NOTIF_SIZE)
                    try:
                        fcntl.ioctl(nfd, SECCOMP_IOCTL_NOTIF_RECV, buf, True)
                    except OSError:
                        break  # the filter's processes are gone
                    nid, _pid, _flags, nr, _arch, _ip = struct.unpack_from("=QIIiIQ", buf)
                    args = struct.unpack_from("=6Q", buf, 32)
                    self.seen.append((nr, args))
                    val, error, flags = self.answer(nr, args)
                    resp = bytearray(NOTIF_RESP.pack(nid, val, error, flags))
                    with contextlib.suppress(OSError):
                        fcntl.ioctl(nfd, SECCOMP_IOCTL_NOTIF_SEND, resp, True)
            finally:
                os.close(nfd)

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(10)
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            os.rmdir(self.dir)


def syscall_nr(name: str) -> int:
    import pyseccomp

    return pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name)


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
