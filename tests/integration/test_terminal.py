"""The container's stdio: the caller's own fds without a terminal; with ``process.terminal``
a pty whose master goes to ``--console-socket``; ``--preserve-fds``."""

from __future__ import annotations

import array
import contextlib
import fcntl
import json
import os
import select
import socket
import subprocess
import tempfile
import threading
import time

import pytest
from container_helpers import chown_bundle_for_userns, run_sh, userns_config, wait_for

# --- without a terminal: the caller's fds, passed through --------------------------------

# the shell's own fds ($$): in $(...) stat's stdout is the substitution's pipe
FD_INODES = "for i in 0 1 2; do echo fd$i $(stat -L -c %i /proc/$$/fd/$i); done"
TIOCGPTN = 0x80045430


def _inodes(text: str) -> dict[str, int]:
    return {line.split()[0]: int(line.split()[1]) for line in text.splitlines()
            if line.startswith("fd") and len(line.split()) == 2}


def test_run_stdio_are_the_callers_fds(pyoci, bundle, cid, base_config, write_config):
    """stdin a pipe, stdout a pipe, stderr a file: the container has those very files."""
    cfg = base_config()
    cfg["process"]["args"] = ["sh", "-c", f"read line; echo got:$line; {FD_INODES}"]
    write_config(bundle, cfg)
    with tempfile.TemporaryFile() as err:
        p = pyoci.popen("run", "--bundle", bundle, cid, stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE, stderr=err)
        stdin_ino, stdout_ino = os.fstat(p.stdin.fileno()).st_ino, os.fstat(
            p.stdout.fileno()).st_ino
        out, _ = p.communicate(b"hello\n", timeout=60)
        assert p.returncode == 0
        err_ino = os.fstat(err.fileno()).st_ino
    seen = _inodes(out.decode())
    assert out.startswith(b"got:hello\n")
    assert seen == {"fd0": stdin_ino, "fd1": stdout_ino, "fd2": err_ino}, seen


def test_create_start_stdio_are_the_create_callers_fds(pyoci, bundle, cid, base_config,
                                                       write_config):
    """The fds ``create`` was given are the container's, after ``create`` has exited."""
    cfg = base_config()
    cfg["process"]["args"] = ["sh", "-c", f"echo from-container; {FD_INODES}"]
    write_config(bundle, cfg)
    r_fd, w_fd = os.pipe()
    try:
        p = pyoci.popen("create", "--bundle", bundle, cid, stdout=w_fd,
                        stderr=subprocess.DEVNULL)
        assert p.wait(timeout=60) == 0
        os.close(w_fd)
        w_fd = -1
        pipe_ino = os.fstat(r_fd).st_ino
        pyoci("start", cid, check=True)
        out = _read_all(r_fd, timeout=20).decode()
    finally:
        os.close(r_fd)
        if w_fd != -1:
            os.close(w_fd)
    assert out.startswith("from-container\n")
    assert _inodes(out)["fd1"] == pipe_ino


def _read_all(fd: int, timeout: float) -> bytes:
    """Read ``fd`` to EOF (every writer gone)."""
    data, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                return data
            data += chunk
    pytest.fail(f"no EOF after {timeout}s; read so far: {data!r}", pytrace=False)


def test_exit_code_of_the_process(pyoci, bundle, cid, base_config, write_config):
    r = run_sh(pyoci, bundle, cid, base_config(), "echo out; echo err >&2; exit 7",
               write_config=write_config, check=False)
    assert (r.returncode, r.stdout, r.stderr) == (7, "out\n", "err\n")


# --- with a terminal: the console socket ---------------------------------------------------


class ConsoleSocket:
    """A listening AF_UNIX socket that collects what the runtime sends: (data, fds)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.messages: list[tuple[bytes, list[int]]] = []
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
                    data, fds, _flags, _addr = socket.recv_fds(conn, 4096, 8)
                    if not data and not fds:
                        return  # the runtime closed its end
                    self.messages.append((data, fds))
        except BaseException as e:  # noqa: BLE001 - reported by wait()
            self.error = e

    def wait(self, timeout: float = 60) -> list[tuple[bytes, list[int]]]:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the runtime never closed the console socket"
        if self.error:
            raise self.error
        return self.messages

    def close(self) -> None:
        self.sock.close()
        for _, fds in self.messages:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)


@pytest.fixture
def console(bundle):
    path = os.path.join(bundle, "console.sock")
    c = ConsoleSocket(path)
    yield c
    c.close()


def _read_until(fd: int, needle: bytes, timeout: float = 20) -> bytes:
    data, deadline = b"", time.monotonic() + timeout
    while needle not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"{needle!r} not read from the pty within {timeout}s: {data!r}",
                        pytrace=False)
        ready, _, _ = select.select([fd], [], [], min(left, 0.2))
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the slave side is closed
                break
            if not chunk:
                break
            data += chunk
    return data


def test_terminal_master_sent_to_console_socket(pyoci, bundle, cid, base_config, write_config,
                                                console):
    cfg = base_config(["sh"])
    cfg["process"]["terminal"] = True
    write_config(bundle, cfg)
    pyoci("create", "--bundle", bundle, "--console-socket", console.path, cid, check=True)
    messages = console.wait()
    assert len(messages) == 1, f"expected one message, got {messages}"
    _data, fds = messages[0]
    assert len(fds) == 1, f"expected exactly one fd, got {fds}"
    master = fds[0]
    # it is a pty master: TIOCGPTN answers with its number
    ptn = array.array("i", [0])
    fcntl.ioctl(master, TIOCGPTN, ptn)
    assert ptn[0] == 0, "the container's own devpts numbers its first pty 0"

    pyoci("start", cid, check=True)
    os.write(master, b"echo hi\n")
    out = _read_until(master, b"hi\r\n")
    assert b"echo hi" in out  # the terminal echoes what was typed
    os.write(master, b"tty; readlink /proc/self/fd/0; stat -c '%t:%T %F' /dev/console;"
                     b" echo done-$((20+22))\n")
    out = _read_until(master, b"done-42")
    text = out.decode(errors="replace").replace("\r", "")
    lines = text.splitlines()
    assert "/dev/pts/0" in lines, text
    assert lines.count("/dev/pts/0") >= 2, "tty and fd 0 are both the pty slave"
    assert "88:0 character special file" in lines, text  # /dev/console = the pty (136, 0)
    os.write(master, b"exit 3\n")
    wait_for(lambda: json.loads(pyoci("state", cid, check=True).stdout)["status"] == "stopped",
             20, "the shell to exit")
    pyoci("delete", cid, check=True)


def test_terminal_job_control_is_available(pyoci, bundle, cid, base_config, write_config,
                                           console):
    """The pty is the process's controlling terminal: ^C reaches the foreground job."""
    cfg = base_config(["sh"])
    cfg["process"]["terminal"] = True
    write_config(bundle, cfg)
    pyoci("create", "--bundle", bundle, "--console-socket", console.path, cid, check=True)
    master = console.wait()[0][1][0]
    pyoci("start", cid, check=True)
    os.write(master, b"sleep 100\n")
    _read_until(master, b"sleep 100\r\n")
    time.sleep(0.5)
    os.write(master, b"\x03")  # ^C: SIGINT to the foreground process group
    # the shell is back at its prompt long before sleep would have ended
    os.write(master, b"echo after-$((1+1))\n")
    _read_until(master, b"after-2", timeout=10)
    os.write(master, b"exit\n")
    wait_for(lambda: json.loads(pyoci("state", cid, check=True).stdout)["status"] == "stopped",
             20, "the shell to exit")
    pyoci("delete", cid, check=True)


def test_terminal_without_console_socket_fails(pyoci, bundle, cid, root, base_config,
                                               write_config):
    cfg = base_config(["true"])
    cfg["process"]["terminal"] = True
    write_config(bundle, cfg)
    r = pyoci("create", "--bundle", bundle, cid)
    assert r.returncode != 0
    assert "console" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert os.listdir(root) == []


def test_console_socket_not_listening_fails(pyoci, bundle, cid, root, base_config,
                                            write_config):
    cfg = base_config(["true"])
    cfg["process"]["terminal"] = True
    write_config(bundle, cfg)
    r = pyoci("create", "--bundle", bundle, "--console-socket",
              os.path.join(bundle, "nobody-listens.sock"), cid)
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    assert os.listdir(root) == []


# --- --preserve-fds ----------------------------------------------------------------------


def _fds_of_detached(pyoci, bundle, cid, *extra: str) -> dict[int, str]:
    """``run --detach`` with fd 3 reading BUNDLE/in3, fd 4 writing BUNDLE/out4 and fd 5
    open too; the container ends by exec'ing ``sleep``, whose fds are then read from the
    host (a shell's own fds come and go: pipes for its pipelines)."""
    with open(os.path.join(bundle, "in3"), "w") as f:
        f.write("from fd 3\n")
    cmd = pyoci.command("run", "--detach", "--bundle", bundle, *extra, cid)
    shell = 'exec "$@" 3<"$D/in3" 4>"$D/out4" 5<"$D/in3"'
    with tempfile.TemporaryFile("w+") as err:  # not a pipe: the container keeps it open
        r = subprocess.run(["sh", "-c", shell, "sh", *cmd], env={**os.environ, "D": bundle},
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                           timeout=60)
        err.seek(0)
        assert r.returncode == 0, err.read()
    pid = json.loads(pyoci("state", cid, check=True).stdout)["pid"]
    wait_for(lambda: _cmdline(pid) == ["sleep", "300"], 20, "the container to exec sleep")
    fds = {int(n): os.readlink(f"/proc/{pid}/fd/{n}") for n in os.listdir(f"/proc/{pid}/fd")}
    pyoci("delete", "--force", cid, check=True)
    return fds


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode().split("\0")[:-1]
    except OSError:
        return []


def test_preserve_fds(pyoci, bundle, cid, base_config, write_config):
    write_config(bundle, base_config(
        ["sh", "-c", "cat <&3 > /dev/null; echo to-four >&4; exec sleep 300"]))
    fds = _fds_of_detached(pyoci, bundle, cid, "--preserve-fds", "2")
    assert sorted(fds) == [0, 1, 2, 3, 4], f"fd 5 must not be passed: {fds}"
    assert fds[3] == os.path.join(bundle, "in3")
    assert fds[4] == os.path.join(bundle, "out4")
    with open(os.path.join(bundle, "out4")) as f:
        assert f.read() == "to-four\n"


def test_without_preserve_fds_no_extra_fd_is_passed(pyoci, bundle, cid, base_config,
                                                    write_config):
    write_config(bundle, base_config(["sleep", "300"]))
    fds = _fds_of_detached(pyoci, bundle, cid)
    assert sorted(fds) == [0, 1, 2], fds


def test_terminal_in_a_user_namespace(pyoci, bundle, cid, base_config, write_config,
                                      console):
    cfg = userns_config(base_config(["sh", "-c", "tty; stat -c '%t:%T' /dev/console; id -u"]))
    cfg["process"]["terminal"] = True
    chown_bundle_for_userns(bundle)
    write_config(bundle, cfg)
    pyoci("create", "--bundle", bundle, "--console-socket", console.path, cid, check=True)
    master = console.wait()[0][1][0]
    pyoci("start", cid, check=True)
    text = _read_until(master, b"\r\n0\r\n").decode().replace("\r", "")
    assert text.split() == ["/dev/pts/0", "88:0", "0"], text
    wait_for(lambda: json.loads(pyoci("state", cid, check=True).stdout)["status"] == "stopped",
             20, "the container to exit")
    pyoci("delete", cid, check=True)
