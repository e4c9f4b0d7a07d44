"""``exec``: a new process in a running (or created) container, as ``runc exec`` runs it.

Output, exit codes (128+signal), the container's namespaces, cgroup and process settings,
stdio passed through, detached exec with a pid file, paused and stopped containers, and
50 concurrent execs into one container.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import threading
import time

import pytest
from exec_support import (
    SLEEPER,
    UNDER_RUNC,
    children_of,
    ns_of,
    one_line_error,
    pids_in_pidns,
    pyoci_only,
    start_container,
    state,
    status_field,
    wait_for,
)


@pytest.fixture
def running(pyoci, bundle, cid, base_config, write_config):
    """A container running ``sleep``; force-deleted afterwards. Yields its state."""
    st = start_container(pyoci, bundle, cid, base_config(SLEEPER), write_config)
    try:
        yield st
    finally:
        pyoci("delete", "--force", cid)


def test_output_and_exit_code(pyoci, running):
    r = pyoci("exec", running["id"], "sh", "-c", "echo out; echo err >&2; exit 7")
    assert (r.returncode, r.stdout, r.stderr) == (7, "out\n", "err\n")
    assert pyoci("exec", running["id"], "true").returncode == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL, signal.SIGUSR1])
def test_killed_process_is_128_plus_signal(pyoci, running, sig):
    r = pyoci("exec", running["id"], "sh", "-c", f"kill -{int(sig)} $$")
    assert r.returncode == 128 + sig, r.stderr


def test_stdin_is_passed_through(pyoci, running):
    r = pyoci("exec", running["id"], "sh", "-c", "read a; read b; echo $b-$a", input="1\n2\n")
    assert (r.returncode, r.stdout) == (0, "2-1\n")


def test_stdio_are_the_callers_fds_no_copying(pyoci, running):
    """The process writes into the caller's very pipe: the reader sees EOF when the
    process (not pyoci) closes it, even after a detached exec has returned."""
    r_fd, w_fd = os.pipe()
    try:
        cmd = pyoci.command("exec", "-d", running["id"], "sh", "-c",
                            "stat -L -c %i /proc/$$/fd/1; sleep 0.5; echo late")
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=w_fd,
                           stderr=subprocess.PIPE, timeout=60)
        assert p.returncode == 0, p.stderr
        os.close(w_fd)
        w_fd = -1
        pipe_ino = os.fstat(r_fd).st_ino
        data = b""
        while chunk := os.read(r_fd, 4096):  # EOF once the process exits
            data += chunk
    finally:
        os.close(r_fd)
        if w_fd >= 0:
            os.close(w_fd)
    lines = data.decode().split()
    assert lines == [str(pipe_ino), "late"], lines


def test_joins_every_namespace_of_the_container(pyoci, running):
    init = running["pid"]
    names = ["ipc", "uts", "net", "pid", "mnt"]
    script = "; ".join(f"readlink /proc/self/ns/{n}" for n in names)
    r = pyoci("exec", running["id"], "sh", "-c", f"{script}; hostname; cat /proc/1/cmdline")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:5] == [ns_of(init, n) for n in names]
    assert lines[5] == "pyoci"  # base_config's hostname
    assert lines[6].startswith("sleep"), lines[6]


def test_joins_the_container_cgroup(pyoci, running, tmp_path):
    pid_file = tmp_path / "pid"
    r = pyoci("exec", "-d", "--pid-file", pid_file, running["id"], "sleep", "30")
    assert r.returncode == 0, r.stderr
    pid = int(pid_file.read_text())
    try:
        with open(f"/proc/{running['pid']}/cgroup") as f:
            init_cg = f.read()
        with open(f"/proc/{pid}/cgroup") as f:
            assert f.read() == init_cg
    finally:
        os.kill(pid, signal.SIGKILL)


def test_env_cwd_user_and_groups(pyoci, running):
    r = pyoci("exec", "-e", "FOO=bar", "-e", "TERM=dumb", "--cwd", "/tmp", "-u", "1000:1001",
              "-g", "5", "-g", "7", running["id"], "sh", "-c",
              'echo "$FOO $TERM $HOME"; pwd; id -u; id -g; id -G')
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["bar dumb /", "/tmp", "1000", "1001", "1001 5 7"]


@pyoci_only  # runc takes numeric ids only
def test_user_by_name_from_the_container(pyoci, running):
    r = pyoci("exec", "-u", "nobody", running["id"], "sh", "-c", "id -u; id -g; echo $HOME")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["65534", "65534", "/"]
    r = pyoci("exec", running["id"], "sh", "-c", "echo $HOME")
    assert r.stdout == "/root\n"  # HOME from the container's /etc/passwd, as runc sets it


def test_process_settings_of_the_container(pyoci, running):
    """Capabilities, no_new_privs and rlimits of config.json's process (base_config)."""
    r = pyoci("exec", running["id"], "sh", "-c",
              "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; ulimit -n")
    assert r.returncode == 0, r.stderr
    fields = dict(line.split(":\t") for line in r.stdout.splitlines()[:3])
    caps = 1 << 29 | 1 << 5 | 1 << 10  # AUDIT_WRITE, KILL, NET_BIND_SERVICE
    assert int(fields["CapEff"], 16) == caps and int(fields["CapBnd"], 16) == caps
    assert fields["NoNewPrivs"] == "1"
    assert r.stdout.splitlines()[3] == "1024"


def test_cap_flag_adds_to_every_set(pyoci, running):
    r = pyoci("exec", "--cap", "CAP_CHOWN", running["id"], "grep", "CapEff", "/proc/self/status")
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.split()[1], 16) & 1  # CAP_CHOWN is bit 0


def test_no_new_privs_flag(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config(SLEEPER)
    cfg["process"]["noNewPrivileges"] = False
    start_container(pyoci, bundle, cid, cfg, write_config)
    try:
        get = ["grep", "NoNewPrivs", "/proc/self/status"]
        assert pyoci("exec", cid, *get).stdout.split()[1] == "0"
        assert pyoci("exec", "--no-new-privs", cid, *get).stdout.split()[1] == "1"
    finally:
        pyoci("delete", "--force", cid)


def test_no_runtime_fds_leak(pyoci, running):
    r = pyoci("exec", running["id"], "sh", "-c", "ls /proc/$$/fd; true")
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split(), key=int) == ["0", "1", "2"]


def test_preserve_fds(pyoci, running, tmp_path):
    (tmp_path / "in3").write_text("three\n")
    cmd = pyoci.command("exec", "--preserve-fds", "2", running["id"], "sh", "-c",
                        "cat <&3; echo four >&4; ls /proc/$$/fd; true")
    shell = 'exec "$@" 3<"$D/in3" 4>"$D/out4"'
    p = subprocess.run(["sh", "-c", shell, "sh", *cmd], env={**os.environ, "D": str(tmp_path)},
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split()
    assert lines[0] == "three"
    assert sorted(lines[1:], key=int) == ["0", "1", "2", "3", "4"]
    assert (tmp_path / "out4").read_text() == "four\n"


@pyoci_only
def test_listen_fds_are_passed_and_consistent(pyoci, running, tmp_path):
    """Socket activation: LISTEN_FDS for pyoci's own pid are passed on, first, and the
    process is told its own pid (in the container) as LISTEN_PID."""
    (tmp_path / "in3").write_text("listen\n")
    cmd = pyoci.command("exec", running["id"], "sh", "-c",
                        'echo "$LISTEN_FDS $LISTEN_PID $$"; cat <&3')
    shell = 'export LISTEN_FDS=1 LISTEN_PID=$$; exec "$@" 3<"$D/in3"'
    p = subprocess.run(["sh", "-c", shell, "sh", *cmd], env={**os.environ, "D": str(tmp_path)},
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    first, second = p.stdout.splitlines()
    count, listen_pid, own_pid = first.split()
    assert count == "1" and listen_pid == own_pid
    assert second == "listen"


def test_exec_into_created_container(pyoci, bundle, cid, base_config, write_config):
    write_config(bundle, base_config(SLEEPER))
    assert pyoci("create", "--bundle", bundle, cid).returncode == 0
    try:
        r = pyoci("exec", cid, "sh", "-c", "echo in-created; hostname")
        assert (r.returncode, r.stdout) == (0, "in-created\npyoci\n"), r.stderr
        assert state(pyoci, cid)["status"] == "created"  # init still waits for start
    finally:
        pyoci("delete", "--force", cid)


def test_detached_exec_writes_pid_file_once_running(pyoci, running, tmp_path):
    pid_file = tmp_path / "exec.pid"
    r = pyoci("exec", "--detach", "--pid-file", pid_file, running["id"], "sleep", "60")
    assert r.returncode == 0, r.stderr
    text = pid_file.read_text()
    assert re.fullmatch(r"[1-9][0-9]*", text), repr(text)  # a bare number, no newline
    pid = int(text)
    try:
        # when pyoci returned, the process existed and was already the program
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            assert f.read().split(b"\0")[:2] == [b"sleep", b"60"]
        assert ns_of(pid, "pid") == ns_of(running["pid"], "pid")
        assert pid in pids_in_pidns(running["pid"])
    finally:
        os.kill(pid, signal.SIGKILL)


def test_foreground_pid_file(pyoci, running, tmp_path):
    pid_file = tmp_path / "fg.pid"
    p = pyoci.popen("exec", "--pid-file", pid_file, running["id"], "sh", "-c", "sleep 3")
    try:
        text = wait_for(lambda: pid_file.exists() and pid_file.read_text(), 20,
                        "the pid file")
        assert re.fullmatch(r"[1-9][0-9]*", text), repr(text)
        assert int(text) in pids_in_pidns(running["pid"])
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()


@pyoci_only  # runc 1.1 waits for the background child here
def test_short_lived_process_leaving_a_child_does_not_hang(pyoci, running):
    """pyoci returns when its process exits, whoever still holds its stdout."""
    started = time.monotonic()
    r = pyoci("exec", running["id"], "sh", "-c", "sleep 30 & exit 3", timeout=20)
    assert r.returncode == 3
    assert time.monotonic() - started < 15


def test_fifty_concurrent_execs(pyoci, running):
    procs = [pyoci.popen("exec", running["id"], "sh", "-c", "echo $$; sleep 0.2",
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(50)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        results.append((p.returncode, out.decode().strip(), err.decode()))
    failed = [r for r in results if r[0] != 0]
    assert not failed, failed[:3]
    pids = {r[1] for r in results}
    assert len(pids) == 50, "every exec is its own process"
    # nothing is left in the container but its init
    wait_for(lambda: pids_in_pidns(running["pid"]) == {running["pid"]}, 10,
             "the execs to be gone")


# --- paused, stopped, exiting --------------------------------------------------------------


def _pause_or_skip(pyoci, cid):
    r = pyoci("pause", cid)
    if r.returncode != 0:
        pytest.skip(f"pause is not available here: {r.stderr.strip()}")


def test_exec_into_paused_container(pyoci, running, tmp_path):
    cid = running["id"]
    _pause_or_skip(pyoci, cid)
    try:
        r = pyoci("exec", cid, "true")
        one_line_error(r, "cannot exec in a paused container (use --ignore-paused to override)")
        # --ignore-paused: the process joins the frozen cgroup and runs once resumed
        out = tmp_path / "out"
        with open(out, "w") as f:
            p = pyoci.popen("exec", "--ignore-paused", cid, "echo", "thawed", stdout=f,
                            stderr=subprocess.PIPE)
            time.sleep(1)
            assert p.poll() is None, "the exec finished in a frozen container"
            assert pyoci("resume", cid).returncode == 0
            p.wait(timeout=30)
        assert p.returncode == 0 and out.read_text() == "thawed\n"
    finally:
        pyoci("resume", cid)


@pyoci_only
def test_interrupted_exec_into_paused_container_leaves_resume_working(pyoci, running):
    """SIGTERM while the process waits in the freezer: pyoci gives up (255) and holds no
    lock that would keep ``resume`` from working."""
    cid = running["id"]
    _pause_or_skip(pyoci, cid)
    try:
        with tempfile.TemporaryFile() as err:
            p = pyoci.popen("exec", "--ignore-paused", cid, "true", stderr=err)
            time.sleep(1.5)
            p.send_signal(signal.SIGTERM)
            # (its stdio stay open in the frozen process until the container is resumed)
            assert p.wait(timeout=30) == 255
            err.seek(0)
            assert b"interrupted by SIGTERM" in err.read()
        assert pyoci("resume", cid, timeout=30).returncode == 0
        assert pyoci("exec", cid, "true").returncode == 0
    finally:
        pyoci("resume", cid)


def test_exec_into_stopped_container(pyoci, running):
    cid = running["id"]
    assert pyoci("kill", cid, "KILL").returncode == 0
    wait_for(lambda: state(pyoci, cid)["status"] == "stopped", 10, "the container to stop")
    one_line_error(pyoci("exec", cid, "true"), "cannot exec in a stopped container")


def test_exec_while_init_exits_has_a_defined_answer(pyoci, bundle, cid, base_config,
                                                    write_config):
    """Execs racing init's exit: each one either runs or says the container stopped."""
    start_container(pyoci, bundle, cid, base_config(["sleep", "1"]), write_config)
    try:
        outcomes = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            r = pyoci("exec", cid, "true", timeout=30)
            outcomes.append(r.returncode)
            if r.returncode != 0:
                assert r.returncode in (255, 137), r.stderr
                if r.returncode == 255 and not UNDER_RUNC:  # runc: "read init-p: ..."
                    assert "stopped" in r.stderr, r.stderr
            if state(pyoci, cid)["status"] == "stopped" and r.returncode == 255:
                break
        assert outcomes[-1] == 255, outcomes
    finally:
        pyoci("delete", "--force", cid)


# --- the joining process is out of the container's reach ---------------------------------


@pyoci_only
def test_joining_process_is_not_dumpable(pyoci, bundle, cid, base_config, write_config):
    """While the exec'd process is still pyoci (here: blocked reading a FIFO that replaced
    /etc/passwd, to resolve ``-u someone``), the container sees it but cannot open its
    /proc/<pid>/exe, fd/ or environ; from the host its /proc files belong to root, not to
    the container's (user-namespaced) root."""
    from container_helpers import chown_bundle_for_userns, userns_config

    cfg = userns_config(base_config(SLEEPER))
    cfg["process"]["env"].append("HOME=/root")  # init must not read /etc/passwd either
    rootfs = os.path.join(bundle, "rootfs")
    os.unlink(os.path.join(rootfs, "etc", "passwd"))
    fifo = os.path.join(rootfs, "etc", "passwd")
    os.mkfifo(fifo)
    chown_bundle_for_userns(bundle)
    st = start_container(pyoci, bundle, cid, cfg, write_config)
    p = None
    try:
        p = pyoci.popen("exec", "-u", "someone", cid, "true",
                        stderr=subprocess.PIPE)
        joined = wait_for(lambda: [c for c in children_of(p.pid)
                                   if c in pids_in_pidns(st["pid"])], 20,
                          "the joining process to appear in the container")
        pid = joined[0]
        assert os.stat(f"/proc/{pid}").st_uid == 0  # not the container's root (100000)
        assert os.stat(f"/proc/{st['pid']}").st_uid == 100000
        nspid = status_field(pid, "NSpid").split()[-1]
        probe = (f"readlink /proc/{nspid}/exe && echo EXE-READ; ls /proc/{nspid}/fd "
                 f"&& echo FD-READ; cat /proc/{nspid}/environ && echo ENV-READ; "
                 "readlink /proc/1/exe >/dev/null && echo INIT-OK")
        r = pyoci("exec", cid, "sh", "-c", probe)
        assert "INIT-OK" in r.stdout, (r.stdout, r.stderr)
        for leaked in ("EXE-READ", "FD-READ", "ENV-READ"):
            assert leaked not in r.stdout, (r.stdout, r.stderr)
        assert "Permission denied" in r.stderr
    finally:
        if p is not None:
            # release the reader: it finds no such user and fails cleanly
            threading.Thread(target=lambda: open(fifo, "w").close(), daemon=True).start()
            _, err = p.communicate(timeout=30)
            assert p.returncode == 255 and b"unable to find user someone" in err, err
        pyoci("delete", "--force", cid)


# --- more of the process: seccomp, arguments, a container being created -----------------


def test_seccomp_filter_of_the_container(pyoci, bundle, cid, base_config, write_config):
    """The container's seccomp filter applies to exec'd processes too (the default-like
    allow-list profile; mkdir gets the configured errno)."""
    import errno

    from seccomp_profiles import default_profile

    cfg = base_config(SLEEPER)
    prof = default_profile()
    prof["syscalls"].insert(0, {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                                "errnoRet": errno.EADDRNOTAVAIL})
    cfg["linux"]["seccomp"] = prof
    start_container(pyoci, bundle, cid, cfg, write_config)
    try:
        r = pyoci("exec", cid, "sh", "-c", "grep -E '^Seccomp:' /proc/self/status; "
                  "mkdir /tmp/x 2>&1; echo mkdir=$?; hostname other 2>&1; echo hostname=$?")
        assert r.returncode == 0, r.stderr
        assert "Seccomp:\t2" in r.stdout
        assert os.strerror(errno.EADDRNOTAVAIL) in r.stdout and "mkdir=1" in r.stdout
        assert "hostname=1" in r.stdout  # sethostname is not in the allow-list
    finally:
        pyoci("delete", "--force", cid)


def test_command_options_are_the_commands(pyoci, running):
    """Everything after the container id is the command, dashes included."""
    r = pyoci("exec", running["id"], "ls", "-1", "-d", "/tmp", "/etc")
    assert (r.returncode, r.stdout) == (0, "/etc\n/tmp\n"), r.stderr
    r = pyoci("exec", running["id"], "sh", "-c", 'echo "$@"', "sh", "--help", "-t")
    assert r.stdout == "--help -t\n"


@pyoci_only
def test_exec_into_container_being_created(pyoci, root):
    """A container directory without state.json yet is one whose create is under way."""
    os.mkdir(os.path.join(root, "being-made"), 0o711)
    try:
        r = pyoci("exec", "being-made", "true")
        one_line_error(r, "cannot exec in a container that is being created")
    finally:
        os.rmdir(os.path.join(root, "being-made"))


@pyoci_only
def test_python_api_exec(running, root, tmp_path):
    from pyoci import Container

    c = Container.load(running["id"], root)
    out = tmp_path / "out"
    with open(out, "w") as f:
        saved = os.dup(1)
        os.dup2(f.fileno(), 1)
        try:
            code = c.exec(["sh", "-c", "echo api; exit 4"], env=("X=1",))
        finally:
            os.dup2(saved, 1)
            os.close(saved)
    assert code == 4 and out.read_text() == "api\n"


def test_namespaces_not_owned_by_the_user_namespace(pyoci, bundle, cid, base_config,
                                                    write_config):
    """A container with a user namespace that joins a host network namespace by path: the
    exec joins that one before giving up the host's privileges for the user namespace."""
    from container_helpers import (
        chown_bundle_for_userns,
        helper_process,
        userns_config,
        wait_ns_differs,
    )

    with helper_process("unshare", "--net", "sleep", "300") as helper:
        netns = wait_ns_differs(helper.pid, "net")
        cfg = userns_config(base_config(SLEEPER))
        cfg["linux"]["namespaces"] = [
            {"type": "network", "path": f"/proc/{helper.pid}/ns/net"} if n["type"] == "network"
            else n for n in cfg["linux"]["namespaces"]]
        chown_bundle_for_userns(bundle)
        st = start_container(pyoci, bundle, cid, cfg, write_config)
        try:
            r = pyoci("exec", cid, "sh", "-c",
                      "readlink /proc/self/ns/net; readlink /proc/self/ns/user; id -u")
            assert r.returncode == 0, r.stderr
            net, user, uid = r.stdout.split()
            assert net == netns
            assert user == ns_of(st["pid"], "user") and uid == "0"
        finally:
            pyoci("delete", "--force", cid)


def test_stdio_ownership_for_another_user(pyoci, running, tmp_path):
    """As runc: the process's stdio is chowned to its user (it can reopen /dev/stdout),
    but never the host's null device."""
    before = os.stat("/dev/null")
    out = tmp_path / "out"
    with open(out, "w") as f:
        p = subprocess.run(pyoci.command("exec", "-u", "1000:1000", running["id"], "sh", "-c",
                                         "echo reopened > /dev/stdout"),
                           stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.PIPE,
                           timeout=60)
    assert p.returncode == 0, p.stderr
    assert out.read_text() == "reopened\n"
    after = os.stat("/dev/null")
    assert (after.st_uid, after.st_gid, after.st_mode) == (before.st_uid, before.st_gid,
                                                          before.st_mode)
