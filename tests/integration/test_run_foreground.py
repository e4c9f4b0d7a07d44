"""``run`` in the foreground: signals reach the container, the exit code comes back
(128+signal when killed), orphans are reaped as a subreaper unless ``--no-subreaper``, and
a terminal is copied in raw mode with window-size changes passed on."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from exec_support import (
    SLEEPER,
    controlling_terminal,
    is_raw,
    one_line_error,
    read_until,
    set_winsize,
    state,
    status_field,
    wait_for,
)

TRAPS = ('trap "echo got-USR1" USR1; trap "echo got-HUP" HUP; '
         'trap "echo got-TERM; exit 42" TERM; echo ready; while :; do sleep 0.1; done')


def test_signals_reach_the_container(pyoci, bundle, cid, base_config, write_config):
    write_config(bundle, base_config(["sh", "-c", TRAPS]))
    p = pyoci.popen("run", "--bundle", bundle, cid, stdout=subprocess.PIPE)
    try:
        out = p.stdout.fileno()
        read_until(out, b"ready")
        p.send_signal(signal.SIGUSR1)
        read_until(out, b"got-USR1")
        p.send_signal(signal.SIGHUP)
        read_until(out, b"got-HUP")
        p.send_signal(signal.SIGTERM)
        read_until(out, b"got-TERM")
        assert p.wait(timeout=30) == 42
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
    assert pyoci("state", cid).returncode != 0, "run deletes the container when it exits"


def test_exit_code_is_128_plus_signal(pyoci, bundle, cid, base_config, write_config):
    write_config(bundle, base_config(SLEEPER))
    p = pyoci.popen("run", "--bundle", bundle, cid)
    try:
        wait_for(lambda: pyoci("state", cid).returncode == 0
                 and state(pyoci, cid)["status"] == "running", 20, "the container to run")
        assert pyoci("kill", cid, "KILL").returncode == 0
        assert p.wait(timeout=30) == 128 + signal.SIGKILL
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.mark.parametrize("code", [0, 9])
def test_exit_code_without_subreaper(pyoci, bundle, cid, base_config, write_config, code):
    write_config(bundle, base_config(["sh", "-c", f"exit {code}"]))
    r = pyoci("run", "--no-subreaper", "--bundle", bundle, cid)
    assert r.returncode == code, r.stderr


def _orphan_parent(pyoci, bundle, cid, base_config, write_config, *flags: str) -> tuple:
    """A container without a PID namespace leaves an orphan: its parent, and run's pid."""
    cfg = base_config(["sh", "-c", 'sh -c "sleep 30 & echo orphan \\$!"; sleep 1.5; exit 0'])
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "pid"]
    write_config(bundle, cfg)
    p = pyoci.popen("run", *flags, "--bundle", bundle, cid, stdout=subprocess.PIPE)
    try:
        line = read_until(p.stdout.fileno(), b"\n").decode()
        orphan = int(line.split()[1])
        parent = wait_for(lambda: status_field(orphan, "PPid"), 10, "the orphan's parent")
        time.sleep(0.3)
        parent = status_field(orphan, "PPid")
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
    return int(parent), p.pid, orphan


def test_subreaper_adopts_the_containers_orphans(pyoci, bundle, cid, base_config,
                                                 write_config):
    parent, run_pid, _ = _orphan_parent(pyoci, bundle, cid, base_config, write_config)
    assert parent == run_pid


def test_no_subreaper_leaves_orphans_to_init(pyoci, bundle, cid, base_config, write_config):
    parent, run_pid, _ = _orphan_parent(pyoci, bundle, cid, base_config, write_config,
                                        "--no-subreaper")
    assert parent != run_pid


def test_console_socket_needs_detach(pyoci, bundle, cid, base_config, write_config, root,
                                     tmp_path):
    cfg = base_config(["sh"])
    cfg["process"]["terminal"] = True
    write_config(bundle, cfg)
    r = pyoci("run", "--console-socket", tmp_path / "c.sock", "--bundle", bundle, cid)
    one_line_error(r, "cannot use console socket if", code=1)
    assert os.listdir(root) == []


def test_detach_returns_at_once(pyoci, bundle, cid, base_config, write_config):
    write_config(bundle, base_config(SLEEPER))
    started = time.monotonic()
    r = pyoci("run", "--detach", "--bundle", bundle, cid)
    try:
        assert r.returncode == 0, r.stderr
        assert time.monotonic() - started < 30
        assert state(pyoci, cid)["status"] == "running"
    finally:
        pyoci("delete", "--force", cid)


def test_terminal_in_the_foreground(pyoci, bundle, cid, base_config, write_config):
    """process.terminal without --console-socket: pyoci's own terminal (a pty the test
    owns) in raw mode, copied both ways, resized on SIGWINCH, restored at the end."""
    cfg = base_config(["sh"])
    cfg["process"]["terminal"] = True
    write_config(bundle, cfg)
    mfd, sfd = os.openpty()
    try:
        set_winsize(mfd, 24, 80)
        p = pyoci.popen("run", "--bundle", bundle, cid, stdin=sfd, stdout=sfd, stderr=sfd,
                        preexec_fn=controlling_terminal)
        try:
            wait_for(lambda: is_raw(sfd), 30, "pyoci to put its terminal in raw mode")
            os.write(mfd, b"stty size; tty; echo hi-$((5*5))\n")
            text = read_until(mfd, b"hi-25").decode(errors="replace")
            assert "24 80" in text and "/dev/pts/0" in text, text
            set_winsize(mfd, 40, 100)  # the kernel sends pyoci SIGWINCH: its terminal
            time.sleep(0.3)
            os.write(mfd, b"stty size\n")
            read_until(mfd, b"40 100")
            os.write(mfd, b"exit 4\n")
            assert p.wait(timeout=30) == 4
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        assert not is_raw(sfd), "the caller's terminal settings are restored"
    finally:
        os.close(mfd)
        os.close(sfd)


@pytest.mark.skipif(__import__("exec_support").UNDER_RUNC, reason="pyoci's wording")
def test_listen_fds_are_passed_to_init(pyoci, bundle, cid, base_config, write_config,
                                       tmp_path):
    """Socket activation: LISTEN_FDS for pyoci's own pid go to init from fd 3, before any
    --preserve-fds, and init is told its own pid as LISTEN_PID."""
    (tmp_path / "in3").write_text("listen\n")
    (tmp_path / "in4").write_text("preserved\n")
    write_config(bundle, base_config(["sh", "-c", 'echo "$LISTEN_FDS $LISTEN_PID $$"; '
                                     "cat <&3; cat <&4"]))
    cmd = pyoci.command("run", "--preserve-fds", "1", "--bundle", bundle, cid)
    shell = 'export LISTEN_FDS=1 LISTEN_PID=$$; exec "$@" 3<"$D/in3" 4<"$D/in4"'
    p = subprocess.run(["sh", "-c", shell, "sh", *cmd], env={**os.environ, "D": str(tmp_path)},
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["1 1 1", "listen", "preserved"]
