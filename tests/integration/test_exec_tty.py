"""``exec -t``: a pty from the container's devpts.

With ``--console-socket`` the master goes to the socket (a test helper receives it, types,
reads the echo and resizes the terminal); without it pyoci keeps the master, puts the
caller's terminal in raw mode, copies both ways and passes SIGWINCH on.
"""

from __future__ import annotations

import os
import re
import time

import pytest
from exec_support import (
    SLEEPER,
    ConsoleSocket,
    controlling_terminal,
    is_raw,
    one_line_error,
    pids_in_pidns,
    pyoci_only,
    read_until,
    set_winsize,
    start_container,
    wait_for,
)


@pytest.fixture
def running(pyoci, bundle, cid, base_config, write_config):
    st = start_container(pyoci, bundle, cid, base_config(SLEEPER), write_config)
    try:
        yield st
    finally:
        pyoci("delete", "--force", cid)


@pytest.fixture
def console(tmp_path):
    c = ConsoleSocket(str(tmp_path / "console.sock"))
    try:
        yield c
    finally:
        c.close()


def _stty_size(master: int, rows: int, cols: int) -> None:
    """Resize through the master; `stty size` in the container reports the new size."""
    set_winsize(master, rows, cols)
    os.write(master, b"stty size\n")
    read_until(master, f"{rows} {cols}".encode())


def test_exec_tty_through_console_socket(pyoci, running, console, tmp_path):
    """-d -t --console-socket (how containerd and conmon call it): the helper gets the
    master, types, reads the echo, resizes; the process never gets pyoci's stdio."""
    out, pid_file = tmp_path / "out", tmp_path / "pid"
    with open(out, "wb") as f:
        p = pyoci.popen("exec", "-d", "-t", "--console-socket", console.path, "--pid-file",
                        pid_file, running["id"], "sh", stdout=f, stderr=f)
        assert p.wait(timeout=60) == 0
    pid = int(pid_file.read_text())
    assert pid in pids_in_pidns(running["pid"])
    master = console.master()
    os.write(master, b"echo hel''lo-$((6*7))\n")
    seen = read_until(master, b"hello-42\r\n")
    assert b"echo hel''lo-$((6*7))" in seen  # the terminal echoed the keystrokes
    _stty_size(master, 33, 99)
    _stty_size(master, 12, 40)
    os.write(master, b"tty; ls -l /proc/$$/fd | grep -c /dev/pts/; echo end-$((1+1))\n")
    text = read_until(master, b"end-2").decode(errors="replace").replace("\r", "")
    assert re.search(r"^/dev/pts/\d+$", text, re.M), text
    assert re.search(r"^3$", text, re.M), "fds 0, 1 and 2 are all the pty: " + text
    os.write(master, b"exit 3\n")
    wait_for(lambda: pid not in pids_in_pidns(running["pid"]), 20, "the shell to exit")
    assert out.read_bytes() == b"", "the process must not inherit pyoci's stdout/stderr"


def test_exec_tty_job_control(pyoci, running, console):
    """The pty is the process's controlling terminal: ^C interrupts its foreground job."""
    r = pyoci("exec", "-d", "-t", "--console-socket", console.path, running["id"], "sh")
    assert r.returncode == 0, r.stderr
    master = console.master()
    os.write(master, b"sleep 100\n")
    time.sleep(0.5)
    os.write(master, b"\x03")  # SIGINT for sleep, from the container's terminal
    os.write(master, b"echo after-$((1+1))\n")
    read_until(master, b"after-2", timeout=10)
    os.write(master, b"exit 0\n")


def test_exec_tty_foreground_raw_copy_and_resize(pyoci, running):
    """No console socket: pyoci copies between its own terminal (here a pty the test owns)
    and the container's, in raw mode, and passes a window-size change on (SIGWINCH)."""
    mfd, sfd = os.openpty()
    try:
        set_winsize(mfd, 20, 70)
        p = pyoci.popen("exec", "-t", running["id"], "sh", stdin=sfd, stdout=sfd, stderr=sfd,
                        preexec_fn=controlling_terminal)
        try:
            wait_for(lambda: is_raw(sfd), 20, "pyoci to put its terminal in raw mode")
            os.write(mfd, b"stty size\n")
            read_until(mfd, b"20 70")
            set_winsize(mfd, 30, 90)  # the kernel sends pyoci SIGWINCH: its terminal
            time.sleep(0.3)
            os.write(mfd, b"stty size\n")
            read_until(mfd, b"30 90")
            # raw: ^C is a byte for the container's terminal, not a signal for pyoci
            os.write(mfd, b"sleep 100\n")
            time.sleep(0.5)
            os.write(mfd, b"\x03")
            os.write(mfd, b"echo after-$((3+4))\n")
            read_until(mfd, b"after-7", timeout=10)
            os.write(mfd, b"exit 5\n")
            assert p.wait(timeout=30) == 5
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        assert not is_raw(sfd), "the caller's terminal settings are restored"
    finally:
        os.close(mfd)
        os.close(sfd)


@pyoci_only  # runc needs a controlling terminal (/dev/tty) for a foreground -t
def test_exec_tty_foreground_stdin_not_a_terminal(pyoci, running):
    """-t with pipes (no terminal of our own): output still comes through the pty."""
    r = pyoci("exec", "-t", running["id"], "sh", "-c", "tty; echo piped-$((4+4))")
    assert r.returncode == 0, r.stderr
    assert "piped-8" in r.stdout and "/dev/pts/" in r.stdout


def test_exec_tty_errors(pyoci, running, console):
    one_line_error(pyoci("exec", "-d", "-t", running["id"], "true"),
                   "cannot allocate tty", "console socket")
    one_line_error(pyoci("exec", "--console-socket", console.path, running["id"], "true"),
                   "cannot use console socket if")
    one_line_error(pyoci("exec", "-t", "--console-socket", console.path, running["id"],
                         "true"), "cannot use console socket if")  # not detached


def test_exec_tty_console_size_from_process_json(pyoci, running, console, tmp_path):
    import json

    proc = {"terminal": True, "cwd": "/", "args": ["sh"], "consoleSize": {"height": 17,
                                                                          "width": 55},
            "env": ["PATH=/bin:/usr/bin"], "user": {"uid": 0, "gid": 0}}
    (tmp_path / "process.json").write_text(json.dumps(proc))
    r = pyoci("exec", "-d", "--process", tmp_path / "process.json", "--console-socket",
              console.path, running["id"])
    assert r.returncode == 0, r.stderr
    master = console.master()
    os.write(master, b"stty size\n")
    read_until(master, b"17 55")
    os.write(master, b"exit\n")


@pyoci_only  # runc needs a controlling terminal (/dev/tty) for a foreground -t
def test_exec_tty_piped_input_ends_with_eof(pyoci, running):
    """-t with piped input: when the input ends the container's terminal reads EOF (^D),
    so an interactive shell exits instead of waiting forever."""
    r = pyoci("exec", "-t", running["id"], "sh", input="echo hi-$((2+2))\n", timeout=30)
    assert r.returncode == 0, r.stderr
    assert "hi-4" in r.stdout
