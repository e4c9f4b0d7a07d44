"""containerd (its runc v2 shim, as Kubernetes uses it) drives the runtime under test.

Each ``ctr run`` gets ``--runc-binary`` (the wrapper around $PYOCI_CLIENT_RUNTIME),
``--runc-root`` (a private state root: the shim passes ``--root <it>/<namespace>``) and a
``--cgroup`` under the session's private parent; see conftest.py.
"""

from __future__ import annotations

import os
import secrets
import time

from client_harness import CTR_IMAGE, cgroup_dirs, wait_until

SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.1; done"]


def _ok(r):
    assert r.returncode == 0, f"exit {r.returncode}\n--- stdout\n{r.stdout}--- stderr\n{r.stderr}"
    return r


def _id(prefix: str = "c") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def _task(ctr, cid: str) -> dict | None:
    """{"pid": ..., "status": ...} from `ctr tasks ls`, or None."""
    for line in _ok(ctr("tasks", "ls")).stdout.splitlines()[1:]:
        fields = line.split()
        if fields and fields[0] == cid:
            return {"pid": int(fields[1]), "status": fields[2]}
    return None


def _detached(ctr, cid: str, *args: str) -> int:
    _ok(ctr("run", "-d", CTR_IMAGE, cid, *(args or SLEEPER)))
    assert wait_until(lambda: (_task(ctr, cid) or {}).get("status") == "RUNNING", 10), \
        _task(ctr, cid)
    return _task(ctr, cid)["pid"]


def _remove(ctr, cid: str) -> None:
    _ok(ctr("tasks", "delete", "-f", cid))
    _ok(ctr("containers", "delete", cid))


def test_run_rm_output(ctr):
    cid = _id()
    r = _ok(ctr("run", "--rm", CTR_IMAGE, cid, "echo", "hello from containerd"))
    assert r.stdout == "hello from containerd\n"
    assert ctr.containers() == []
    # the shim passed its own --root (<runc-root>/<namespace>) and asked for JSON logs
    create = [c for c in ctr.base.calls() if " create " in f" {c} " and cid in c][-1]
    assert f"--root {ctr.base.runtime_root}/clients" in create
    assert "--log-format json" in create


def test_exit_code(ctr):
    assert ctr("run", "--rm", CTR_IMAGE, _id(), "sh", "-c", "exit 42").returncode == 42
    assert ctr("run", "--rm", CTR_IMAGE, _id(), "false").returncode == 1


def test_detached_exec_kill_delete(ctr):
    cid = _id()
    pid = _detached(ctr, cid)
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[0] == b"sh"
    r = _ok(ctr("tasks", "exec", "--exec-id", "e1", cid, "echo", "from exec"))
    assert r.stdout == "from exec\n"
    assert ctr("tasks", "exec", "--exec-id", "e2", cid, "sh", "-c", "exit 7").returncode == 7
    _ok(ctr("tasks", "kill", cid))  # SIGTERM
    assert wait_until(lambda: (_task(ctr, cid) or {}).get("status") == "STOPPED", 10), \
        _task(ctr, cid)
    _ok(ctr("tasks", "delete", cid))
    assert _task(ctr, cid) is None
    _ok(ctr("containers", "delete", cid))
    assert ctr.containers() == []


def test_kill_signal_by_name_and_all(ctr):
    cid = _id()
    _detached(ctr, cid, "sh", "-c", "trap 'exit 9' USR1; while :; do sleep 0.1; done")
    _ok(ctr("tasks", "kill", "-s", "SIGUSR1", cid))
    assert wait_until(lambda: (_task(ctr, cid) or {}).get("status") == "STOPPED", 10)
    _remove(ctr, cid)
    cid = _id()
    _detached(ctr, cid)
    _ok(ctr("tasks", "kill", "--all", "-s", "9", cid))
    assert wait_until(lambda: (_task(ctr, cid) or {}).get("status") == "STOPPED", 10)
    _remove(ctr, cid)


def test_run_tty(ctr):
    s = ctr.pty("run", "--rm", "-t", CTR_IMAGE, _id(), "sh")
    try:
        s.send("tty; echo answer=$((6*7))\r")
        s.expect(r"/dev/pts/\d+")
        s.expect(r"answer=42")
        s.send("exit 3\r")
        assert s.wait() == 3
    finally:
        s.close()


def test_tasks_ps(ctr):
    cid = _id()
    pid = _detached(ctr, cid, "sh", "-c", "sleep 1000 & wait")
    _ok(ctr("tasks", "exec", "-d", "--exec-id", "bg", cid, "sleep", "30"))

    def pids():
        lines = _ok(ctr("tasks", "ps", cid)).stdout.splitlines()[1:]
        return {int(line.split()[0]) for line in lines if line.strip()}
    assert wait_until(lambda: len(pids()) == 3, 10), pids()  # sh, its sleep, the exec
    found = pids()
    assert pid in found
    for p in found:
        with open(f"/proc/{p}/cgroup") as f:
            assert ctr.base.cgroup_parent in f.read()
    _remove(ctr, cid)


def test_pause_resume(ctr):
    cid = _id()
    _detached(ctr, cid, "sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; "
                                    "sleep 0.05; done")
    pid = _task(ctr, cid)["pid"]

    def counter() -> int:
        with open(f"/proc/{pid}/root/tmp/n") as f:
            return int(f.read() or 0)

    _ok(ctr("tasks", "pause", cid))
    assert _task(ctr, cid)["status"] == "PAUSED"
    a = counter()
    time.sleep(0.4)
    assert counter() == a, "a paused task went on running"
    _ok(ctr("tasks", "resume", cid))
    assert _task(ctr, cid)["status"] == "RUNNING"
    assert wait_until(lambda: counter() > a, 5), "a resumed task does not run"
    _remove(ctr, cid)


def test_memory_limit(ctr):
    """ctr's spec has no cgroup mount: read the limit from the container's own cgroup
    (named in /proc/<pid>/cgroup), then see it enforced."""
    cid = _id()
    _ok(ctr("run", "-d", "--memory-limit", str(64 << 20), CTR_IMAGE, cid, *SLEEPER))
    assert wait_until(lambda: (_task(ctr, cid) or {}).get("status") == "RUNNING", 10)
    pid = _task(ctr, cid)["pid"]
    with open(f"/proc/{pid}/cgroup") as f:
        path = [line.split(":", 2)[2].strip() for line in f if ":memory:" in line][0]
    assert path == f"/{ctr.base.cgroup_parent}/{cid}"
    with open(f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes") as f:
        assert int(f.read()) == 64 << 20
    # 100 MiB held in one process: the OOM killer ends it (exit 137), the task lives on
    r = ctr("tasks", "exec", "--exec-id", "hog", cid, "sh", "-c",
            "head -c 104857600 /dev/zero | tail -c 104857600 >/dev/null")
    assert r.returncode == 137, (r.returncode, r.stderr)
    assert _task(ctr, cid)["status"] == "RUNNING"
    _remove(ctr, cid)


def test_twenty_containers_nothing_leaked(ctr):
    for i in range(20):
        r = _ok(ctr("run", "--rm", CTR_IMAGE, _id("loop"), "echo", f"n{i}"))
        assert r.stdout == f"n{i}\n"
    assert ctr.containers() == []
    assert _ok(ctr("snapshots", "ls")).stdout.splitlines()[1:] == [] or all(
        "Committed" in line for line in _ok(ctr("snapshots", "ls")).stdout.splitlines()[1:])
    assert wait_until(lambda: ctr.base.runtime_entries() == [], 5), ctr.base.runtime_entries()
    parent = ctr.base.cgroup_parent
    assert [d for d in cgroup_dirs(parent) if "loop-" in d] == []
    with open("/proc/self/mountinfo") as f:
        assert ctr.dir not in f.read().replace(os.path.join(ctr.dir, "root"), "")
