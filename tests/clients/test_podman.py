"""podman (with conmon) drives the runtime under test: the scenarios of issue 6.

The runtime is $PYOCI_CLIENT_RUNTIME (default .venv/bin/pyoci); see conftest.py for the
private podman configuration these run with.
"""

from __future__ import annotations

import json
import os
import time

from client_harness import IMAGE, cgroup_dirs, wait_until

SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]


def _ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\n--- stdout\n{r.stdout}--- stderr\n{r.stderr}"
    return r


def _inspect(podman, name: str) -> dict:
    return json.loads(_ok(podman("inspect", name)).stdout)[0]


def _status(podman, name: str) -> str:
    return _inspect(podman, name)["State"]["Status"]


def _detached(podman, name: str, *args: str) -> str:
    args = args or tuple(SLEEPER)
    cid = _ok(podman("run", "-d", "--name", name, IMAGE, *args)).stdout.strip()
    assert wait_until(lambda: _status(podman, name) == "running", 10), _inspect(podman, name)
    return cid


def test_run_rm_output(podman):
    r = _ok(podman("run", "--rm", IMAGE, "echo", "hello from podman"))
    assert r.stdout == "hello from podman\n"
    assert podman.container_ids() == []
    # runtime_supports_json lists the runtime: podman asks for JSON error records
    creates = [c for c in podman.base.calls() if " create " in f" {c} "]
    assert creates and "--log-format=json" in creates[-1]


def test_exit_code(podman):
    assert podman("run", "--rm", IMAGE, "sh", "-c", "exit 42").returncode == 42
    assert podman("run", "--rm", IMAGE, "false").returncode == 1


def test_exec_errors_map_to_126_127(podman):
    """podman maps the runtime's exec error wording to 127 (not found) and 126 (denied)."""
    r = podman("run", "--rm", IMAGE, "no-such-command")
    assert r.returncode == 127, r.stderr
    r = podman("run", "--rm", IMAGE, "/no/such/file")
    assert r.returncode == 127, r.stderr
    r = podman("run", "--rm", IMAGE, "/etc/passwd")
    assert r.returncode == 126, r.stderr
    assert podman.container_ids() == []


def test_detached_ps_exec_stop_rm(podman):
    cid = _detached(podman, "c-detached")
    ps = _ok(podman("ps", "--no-trunc", "--format", "{{.ID}} {{.Names}} {{.Status}}")).stdout
    assert f"{cid} c-detached Up" in ps
    assert _ok(podman("exec", "c-detached", "echo", "from exec")).stdout == "from exec\n"
    assert podman("exec", "c-detached", "sh", "-c", "exit 7").returncode == 7
    assert podman("exec", "c-detached", "no-such-command").returncode == 127
    r = _ok(podman("exec", "c-detached", "ps", "-o", "pid,args"))
    assert "while" in r.stdout and "ps -o" in r.stdout
    _ok(podman("stop", "-t", "5", "c-detached"))
    state = _inspect(podman, "c-detached")["State"]
    assert state["Status"] == "exited" and state["ExitCode"] == 0
    _ok(podman("rm", "c-detached"))
    assert podman.container_ids() == []


def test_run_tty(podman):
    s = podman.pty("run", "--rm", "-it", IMAGE, "sh")
    try:
        s.send("tty; echo answer=$((6*7)); stty size\r")
        s.expect(r"/dev/pts/\d+")
        s.expect(r"answer=42")
        s.send("exit 3\r")
        assert s.wait() == 3
    finally:
        s.close()


def test_exec_it(podman):
    _detached(podman, "c-execit")
    s = podman.pty("exec", "-it", "c-execit", "sh")
    try:
        s.send("tty; echo answer=$((6*7))\r")
        s.expect(r"/dev/pts/\d+")
        s.expect(r"answer=42")
        s.send("exit 4\r")
        assert s.wait() == 4
    finally:
        s.close()
    _ok(podman("rm", "-f", "-t", "0", "c-execit"))


def test_user_workdir_env(podman):
    r = _ok(podman("run", "--rm", "--user", "65534:65534", "--workdir", "/tmp",
                   "--env", "FOO=bar baz", IMAGE, "sh", "-c", 'id -u; id -g; pwd; echo "$FOO"'))
    assert r.stdout.split("\n")[:4] == ["65534", "65534", "/tmp", "bar baz"]


def test_resources_read_back(podman):
    script = ("cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
              "/sys/fs/cgroup/pids/pids.max "
              "/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us")
    r = _ok(podman("run", "--rm", "--memory", "64m", "--pids-limit", "77", "--cpus", "0.5",
                   IMAGE, "sh", "-c", script))
    assert r.stdout.split() == [str(64 << 20), "77", "50000", "100000"]


def test_read_only(podman):
    r = podman("run", "--rm", "--read-only", IMAGE, "sh", "-c", "touch /file")
    assert r.returncode != 0 and "Read-only file system" in r.stderr + r.stdout
    # --read-only keeps a writable tmpfs on /tmp (podman's read-only-tmpfs default)
    _ok(podman("run", "--rm", "--read-only", IMAGE, "sh", "-c", "touch /tmp/file"))


def _cap_eff(podman, *flags: str) -> int:
    r = _ok(podman("run", "--rm", *flags, IMAGE, "grep", "CapEff", "/proc/self/status"))
    return int(r.stdout.split()[1], 16)


def test_cap_drop_add(podman):
    CAP_CHOWN, CAP_NET_RAW, CAP_NET_ADMIN = 1 << 0, 1 << 13, 1 << 12
    default = _cap_eff(podman)
    assert default & CAP_CHOWN and not default & CAP_NET_ADMIN
    dropped = _cap_eff(podman, "--cap-drop", "CHOWN")
    assert dropped == default & ~CAP_CHOWN
    assert _cap_eff(podman, "--cap-drop", "all") == 0
    assert _cap_eff(podman, "--cap-drop", "all", "--cap-add", "NET_ADMIN,NET_RAW") == (
        CAP_NET_ADMIN | CAP_NET_RAW)


def test_default_seccomp(podman):
    r = _ok(podman("run", "--rm", IMAGE, "grep", "^Seccomp:", "/proc/self/status"))
    assert r.stdout.split() == ["Seccomp:", "2"]
    r = _ok(podman("run", "--rm", "--security-opt", "seccomp=unconfined", IMAGE,
                   "grep", "^Seccomp:", "/proc/self/status"))
    assert r.stdout.split() == ["Seccomp:", "0"]


def test_pause_unpause(podman):
    _detached(podman, "c-pause", "sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; "
                                             "sleep 0.05; done")
    pid = _inspect(podman, "c-pause")["State"]["Pid"]

    def counter() -> int:
        with open(f"/proc/{pid}/root/tmp/n") as f:
            return int(f.read() or 0)

    _ok(podman("pause", "c-pause"))
    assert _status(podman, "c-pause") == "paused"
    a = counter()
    time.sleep(0.4)
    assert counter() == a, "a paused container went on running"
    _ok(podman("unpause", "c-pause"))
    assert _status(podman, "c-pause") == "running"
    assert wait_until(lambda: counter() > a, 5), "an unpaused container does not run"
    _ok(podman("rm", "-f", "-t", "0", "c-pause"))


def test_kill_signal_and_logs(podman):
    _detached(podman, "c-kill", "sh", "-c",
              "trap 'echo got USR1; exit 5' USR1; echo ready; echo to-stderr >&2; "
              "while :; do sleep 0.1; done")
    assert wait_until(lambda: "ready" in podman("logs", "c-kill").stdout, 10)
    _ok(podman("kill", "-s", "USR1", "c-kill"))
    assert _ok(podman("wait", "c-kill")).stdout.strip() == "5"
    logs = podman("logs", "c-kill")
    assert logs.stdout.splitlines() == ["ready", "got USR1"]
    assert logs.stderr.splitlines() == ["to-stderr"]
    # and a signal by number
    _detached(podman, "c-kill9")
    _ok(podman("kill", "-s", "9", "c-kill9"))
    assert _ok(podman("wait", "c-kill9")).stdout.strip() == "137"
    _ok(podman("rm", "c-kill", "c-kill9"))


def test_inspect(podman):
    cid = _detached(podman, "c-inspect")
    info = _inspect(podman, "c-inspect")
    assert info["Id"] == cid
    assert info["OCIRuntime"] == "pyoci"
    assert info["State"]["Running"] is True and info["State"]["Pid"] > 0
    pid = info["State"]["Pid"]
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[0] == b"sh"
    # the pid podman knows is the one the runtime reports
    state = json.loads(_ok(podman("container", "inspect", "--format", "{{json .State}}",
                                  "c-inspect")).stdout)
    assert state["Pid"] == pid
    _ok(podman("rm", "-f", "-t", "0", "c-inspect"))


def test_twenty_containers_nothing_leaked(podman):
    before_mounts = _mounts_count()
    for i in range(20):
        r = _ok(podman("run", "--rm", IMAGE, "echo", f"n{i}"))
        assert r.stdout == f"n{i}\n"
    assert podman.container_ids() == []
    assert podman.base.runtime_entries() == []
    # only podman's own conmon cgroup is left under our parent
    parent = podman.base.cgroup_parent
    left = [d for d in cgroup_dirs(parent)
            if os.path.basename(d) not in (parent, "conmon")]
    assert left == []
    assert _mounts_count() == before_mounts


def _mounts_count() -> int:
    with open("/proc/self/mountinfo") as f:
        return len(f.read().splitlines())
