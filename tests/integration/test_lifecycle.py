"""The container lifecycle (runtime.md "Lifecycle" and "Operations") through the CLI.

Every test runs real busybox containers. ``PYOCI_TEST_RUNTIME=runc`` runs the same tests
against runc, to check the tests themselves; those about pyoci's own files are skipped.
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import subprocess
import tempfile
import time

import pytest
from lifecycle_helpers import (
    RFC3339,
    assert_one_line_error,
    cmdline,
    pid_alive,
    pyoci_only,
    shared_dir,
    state,
    state_entries,
    wait_for,
    wait_status,
)

SLEEP = ["sleep", "1000"]


def _traps(*signals: str) -> list[str]:
    """A shell (PID 1) that logs each named signal to /out/log, then idles."""
    traps = "; ".join(f"trap 'echo {s} >> /out/log' {s}" for s in signals)
    return ["sh", "-c", f"{traps}; touch /out/ready; while :; do sleep 0.05; done"]


def _log_lines(host: str) -> list[str]:
    try:
        with open(os.path.join(host, "log")) as f:
            return f.read().split()
    except FileNotFoundError:
        return []


# ---------------------------------------------------------------------------------------
# create / start / state


def test_create_waits_and_start_runs_the_program(pyoci, bundle, cid, base_config,
                                                 write_config):
    cfg = base_config(["sh", "-c", "touch /out/ran; exec sleep 1000"])
    host = shared_dir(bundle, cfg)
    write_config(bundle, cfg)
    ran = os.path.join(host, "ran")

    r = pyoci("create", "--bundle", bundle, cid)
    assert r.returncode == 0, r.stderr
    st = state(pyoci, cid)
    assert st["status"] == "created"
    pid = st["pid"]
    assert pid > 0 and pid_alive(pid)
    # init waits: the user's program has not run, and does not run on its own.
    time.sleep(0.3)
    assert not os.path.exists(ran), "the user program ran before start"
    assert state(pyoci, cid)["status"] == "created"
    # ...and it is a different process (its own PID namespace), not the program yet.
    assert os.readlink(f"/proc/{pid}/ns/pid") != os.readlink("/proc/self/ns/pid")
    assert cmdline(pid) != SLEEP

    r = pyoci("start", cid)
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    wait_for(lambda: os.path.exists(ran), what="the program to run after start")
    st = state(pyoci, cid)
    assert st["status"] == "running"
    assert st["pid"] == pid, "start must exec the program in the created init"
    wait_for(lambda: cmdline(pid) == SLEEP, what="init to exec sleep")

    pyoci("delete", "--force", cid, check=True)
    wait_for(lambda: not pid_alive(pid), what="the container to die")


def test_state_fields(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config(SLEEP)
    cfg["annotations"] = {"org.example.key": "value", "other": "x y"}
    write_config(bundle, cfg)
    before = datetime.datetime.now(datetime.UTC)
    pyoci("create", "--bundle", bundle, cid, check=True)
    after = datetime.datetime.now(datetime.UTC)

    r = pyoci("state", cid)
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["ociVersion"]
    assert st["id"] == cid
    assert st["status"] == "created"
    assert isinstance(st["pid"], int) and st["pid"] > 0 and pid_alive(st["pid"])
    assert st["bundle"] == bundle
    assert st["rootfs"] == os.path.join(bundle, "rootfs")
    assert st["annotations"] == cfg["annotations"]
    assert RFC3339.fullmatch(st["created"]), st["created"]
    created = datetime.datetime.fromisoformat(st["created"].replace("Z", "+00:00"))
    # RFC 3339 with sub-second precision may be a little past the second `after` saw.
    assert before - datetime.timedelta(seconds=1) <= created <= after + \
        datetime.timedelta(seconds=1)

    pyoci("start", cid, check=True)
    running = state(pyoci, cid)
    assert running["status"] == "running"
    assert running["created"] == st["created"], "created is when create ran, not start"
    pyoci("kill", cid, "KILL", check=True)
    stopped = wait_status(pyoci, cid, "stopped")
    assert stopped["pid"] == 0
    assert stopped["bundle"] == bundle and stopped["id"] == cid
    pyoci("delete", cid, check=True)


def test_state_matches_the_state_schema(pyoci, bundle, cid, base_config, write_config):
    """runtime.md: the state "MUST adhere to the JSON Schema schema/state-schema.json"."""
    from pyoci.config import load_schema_validator

    validator = load_schema_validator("state-schema.json")
    cfg = base_config(SLEEP)
    cfg["annotations"] = {"a": "b"}
    write_config(bundle, cfg)
    pyoci("create", "--bundle", bundle, cid, check=True)
    seen = [state(pyoci, cid)]
    pyoci("start", cid, check=True)
    seen.append(state(pyoci, cid))
    pyoci("kill", cid, "KILL", check=True)
    seen.append(wait_status(pyoci, cid, "stopped"))
    assert [s["status"] for s in seen] == ["created", "running", "stopped"]
    for s in seen:
        errors = [e.message for e in validator.iter_errors(s)]
        assert errors == [], (s, errors)
    pyoci("delete", cid, check=True)


def test_state_without_annotations_has_none(pyoci, bundle, cid, base_config, write_config):
    write_config(bundle, base_config(SLEEP))
    pyoci("create", "--bundle", bundle, cid, check=True)
    st = state(pyoci, cid)
    assert st.get("annotations") in (None, {})
    pyoci("delete", "--force", cid, check=True)


def test_process_exiting_on_its_own_is_stopped(pyoci, bundle, cid, base_config,
                                               write_config):
    write_config(bundle, base_config(["sh", "-c", "exit 0"]))
    pyoci("create", "--bundle", bundle, cid, check=True)
    pid = state(pyoci, cid)["pid"]
    pyoci("start", cid, check=True)
    st = wait_status(pyoci, cid, "stopped")
    assert st["pid"] == 0
    assert not pid_alive(pid)
    # still there until deleted, and still stopped for a new CLI process
    assert state(pyoci, cid)["status"] == "stopped"
    pyoci("delete", cid, check=True)
    assert state_entries(pyoci.root) == []


def test_state_survives_across_processes(pyoci, bundle, cid, base_config, write_config,
                                         tmp_path):
    write_config(bundle, base_config(SLEEP))
    pyoci("create", "--bundle", bundle, cid, check=True)
    # another CLI process, elsewhere, with another environment, sees the same container
    r = pyoci("state", cid, cwd=str(tmp_path), env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["status"] == "created"
    assert os.path.isdir(os.path.join(pyoci.root, cid))
    pyoci("start", cid, cwd=str(tmp_path), check=True)
    assert state(pyoci, cid)["status"] == "running"
    pyoci("delete", "--force", cid, check=True)


def test_pid_file_holds_bare_pid(pyoci, bundle, cid, base_config, write_config):
    write_config(bundle, base_config(SLEEP))
    # relative to the caller's working directory, and the --flag=v form
    r = pyoci("create", f"--bundle={bundle}", "--pid-file=init.pid", cid, cwd=bundle)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(bundle, "init.pid")) as f:
        text = f.read()
    assert text.isdigit(), f"pid file holds {text!r}, not a bare integer"
    assert int(text) == state(pyoci, cid)["pid"]

    other = os.path.join(bundle, "run.pid")
    cid2 = cid + "-2"
    pyoci("run", "--detach", "--bundle", bundle, "--pid-file", other, cid2, check=True)
    with open(other) as f:
        text = f.read()
    assert text.isdigit() and int(text) == state(pyoci, cid2)["pid"]
    pyoci("delete", "--force", cid, check=True)
    pyoci("delete", "--force", cid2, check=True)


def _hold_in_create_hook(bundle: str, cfg: dict) -> tuple[str, str]:
    """Make create wait in a createRuntime hook until the test touches the returned ``go``.

    Returns (in_hook, go): ``in_hook`` appears once create is in the hook.
    """
    d = os.path.join(bundle, "hook")
    os.makedirs(d, exist_ok=True)
    in_hook, go = os.path.join(d, "in"), os.path.join(d, "go")
    cfg["hooks"] = {"createRuntime": [{
        "path": "/bin/sh",
        "args": ["sh", "-c", f"touch {in_hook}; while [ ! -e {go} ]; do sleep 0.02; done"],
        "env": ["PATH=/usr/bin:/bin"],
        "timeout": 30,
    }]}
    return in_hook, go


@pyoci_only
def test_creating_status_and_operations(pyoci, bundle, cid, base_config, write_config):
    """While create runs, state says "creating"; start, kill and delete refuse it."""
    cfg = base_config(SLEEP)
    in_hook, go = _hold_in_create_hook(bundle, cfg)
    write_config(bundle, cfg)
    err = tempfile.TemporaryFile()  # not a pipe: the created init holds it open
    p = pyoci.popen("create", "--bundle", bundle, cid, stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_for(lambda: os.path.exists(in_hook), what="create to reach its hook")
        st = state(pyoci, cid)
        assert st["status"] == "creating" and st["id"] == cid
        assert st["bundle"] == bundle  # REQUIRED in every state
        assert [c["id"] for c in json.loads(pyoci("list", "-f", "json").stdout) or []] in (
            [], [cid])
        assert_one_line_error(pyoci("start", cid), "creating")
        assert_one_line_error(pyoci("kill", cid, "KILL"), "container not running")
        assert_one_line_error(pyoci("delete", cid), "being created")
    finally:
        open(go, "w").close()
    p.wait(timeout=30)
    err.seek(0)
    assert p.returncode == 0, err.read()
    assert state(pyoci, cid)["status"] == "created"
    pyoci("delete", "--force", cid, check=True)


@pyoci_only
def test_delete_force_while_creating(pyoci, bundle, cid, base_config, write_config):
    """delete --force of a container being created: create fails cleanly, nothing left."""
    cfg = base_config(SLEEP)
    in_hook, go = _hold_in_create_hook(bundle, cfg)
    write_config(bundle, cfg)
    p = pyoci.popen("create", "--bundle", bundle, cid, stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: os.path.exists(in_hook), what="create to reach its hook")
        r = pyoci("delete", "--force", cid)
        assert r.returncode == 0, r.stderr
    finally:
        open(go, "w").close()
    _, err = p.communicate(timeout=30)
    assert p.returncode != 0
    assert "Traceback" not in err
    assert err.strip().splitlines() == [f"container {cid} was deleted while it was being "
                                        "created"]
    assert state_entries(pyoci.root) == []
    assert_one_line_error(pyoci("state", cid), "container does not exist")


@pyoci_only
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_create_interrupted_by_signal_leaves_nothing(pyoci, bundle, cid, base_config,
                                                     write_config, sig):
    cfg = base_config(SLEEP)
    in_hook, _go = _hold_in_create_hook(bundle, cfg)
    write_config(bundle, cfg)
    p = pyoci.popen("create", "--bundle", bundle, cid, stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE, text=True)
    wait_for(lambda: os.path.exists(in_hook), what="create to reach its hook")
    time.sleep(0.1)  # the hook runs (a signal while its Popen returns is not covered)
    p.send_signal(sig)
    _, err = p.communicate(timeout=30)
    assert p.returncode != 0
    assert "Traceback" not in err
    assert err.strip().splitlines() == [f"create interrupted by {sig.name}"]
    # no state dir; the leak check makes sure no hook, init, mount or cgroup is left
    assert state_entries(pyoci.root) == []


@pyoci_only
@pytest.mark.parametrize("force", [False, True])
def test_creator_killed_half_way(pyoci, bundle, cid, base_config, write_config, force):
    """create SIGKILLed mid-way (as a caller's timeout does): the container is stopped,
    not forever "creating", and delete removes everything it had made."""
    cfg = base_config(SLEEP)
    in_hook, go = _hold_in_create_hook(bundle, cfg)
    write_config(bundle, cfg)
    p = pyoci.popen("create", "--bundle", bundle, cid, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: os.path.exists(in_hook), what="create to reach its hook")
        p.kill()
        p.wait(timeout=10)
    finally:
        open(go, "w").close()
    st = state(pyoci, cid)
    assert st["status"] == "stopped" and st["pid"] == 0
    assert_one_line_error(pyoci("start", cid), "cannot start a container that has stopped")
    assert_one_line_error(pyoci("kill", cid, "KILL"), "container not running")
    r = pyoci("delete", "--force", cid) if force else pyoci("delete", cid)
    assert r.returncode == 0, r.stderr
    assert state_entries(pyoci.root) == []
    # the leak check then finds no init, hook, mount or cgroup left


# ---------------------------------------------------------------------------------------
# kill


def test_kill_signal_names_and_numbers(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config(_traps("USR1", "USR2", "TERM", "HUP"))
    host = shared_dir(bundle, cfg)
    write_config(bundle, cfg)
    pyoci("run", "--detach", "--bundle", bundle, cid, check=True)
    wait_for(lambda: os.path.exists(os.path.join(host, "ready")), what="traps set")

    expected = []
    for spelling, name in (("USR1", "USR1"), ("SIGUSR2", "USR2"), (str(signal.SIGUSR1.value),
                           "USR1"), ("hup", "HUP"), ("SIGHUP", "HUP"), (None, "TERM"),
                           ("", "TERM")):
        args = ("kill", cid) if spelling is None else ("kill", cid, spelling)
        r = pyoci(*args)
        assert r.returncode == 0, f"kill {spelling}: {r.stderr}"
        expected.append(name)
        n = len(expected)
        wait_for(lambda n=n: len(_log_lines(host)) >= n, what=f"signal {spelling} to arrive")
        assert _log_lines(host) == expected

    assert state(pyoci, cid)["status"] == "running"
    r = pyoci("kill", cid, "9")
    assert r.returncode == 0, r.stderr
    assert wait_status(pyoci, cid, "stopped")["pid"] == 0
    pyoci("delete", cid, check=True)


def test_kill_all_signals_every_process(pyoci, bundle, cid, base_config, write_config):
    # PID 1 (sh) ignores SIGTERM (no handler); its children do not.
    cfg = base_config(["sh", "-c", "sleep 1000 & sleep 1000 & wait; exit 4"])
    write_config(bundle, cfg)
    pyoci("run", "-d", "--bundle", bundle, cid, check=True)
    pid = state(pyoci, cid)["pid"]
    ns = os.readlink(f"/proc/{pid}/ns/pid")

    def in_container() -> list[int]:
        out = []
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    if os.readlink(f"/proc/{name}/ns/pid") == ns and pid_alive(int(name)):
                        out.append(int(name))
                except OSError:
                    pass
        return out

    wait_for(lambda: len(in_container()) == 3, what="the two sleeps to start")
    pyoci("kill", cid, "TERM", check=True)  # init only: ignored
    time.sleep(0.3)
    assert len(in_container()) == 3
    assert state(pyoci, cid)["status"] == "running"

    r = pyoci("kill", "--all", cid, "TERM")
    assert r.returncode == 0, r.stderr
    # the sleeps die, `wait` returns, sh exits: the whole container stops
    wait_status(pyoci, cid, "stopped")
    wait_for(lambda: in_container() == [], what="every container process to exit")
    pyoci("delete", cid, check=True)


def test_kill_all_with_sigkill(pyoci, bundle, cid, base_config, write_config):
    write_config(bundle, base_config(["sh", "-c", "sleep 1000 & exec sleep 1000"]))
    pyoci("run", "--detach", "--bundle", bundle, cid, check=True)
    pyoci("kill", "-a", cid, "KILL", check=True)
    assert wait_status(pyoci, cid, "stopped")["pid"] == 0
    pyoci("delete", cid, check=True)


def test_kill_created_container(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config(["sh", "-c", "touch /out/ran"])
    host = shared_dir(bundle, cfg)
    write_config(bundle, cfg)
    pyoci("create", "--bundle", bundle, cid, check=True)
    pyoci("kill", cid, "KILL", check=True)
    wait_status(pyoci, cid, "stopped")
    assert not os.path.exists(os.path.join(host, "ran"))
    r = pyoci("start", cid)
    assert_one_line_error(r, "cannot start a container that has stopped")
    assert not os.path.exists(os.path.join(host, "ran"))
    pyoci("delete", cid, check=True)


def test_kill_created_container_with_sigterm(pyoci, bundle, cid, base_config, write_config):
    """A created container ends on TERM (as runc's does), although its init is PID 1."""
    cfg = base_config(["sh", "-c", "touch /out/ran"])
    host = shared_dir(bundle, cfg)
    write_config(bundle, cfg)
    for sig in ("TERM", "INT", "HUP"):
        pyoci("create", "--bundle", bundle, cid, check=True)
        pyoci("kill", cid, sig, check=True)
        assert wait_status(pyoci, cid, "stopped")["pid"] == 0
        pyoci("delete", cid, check=True)
    # a signal that ends nothing by default leaves it waiting
    pyoci("create", "--bundle", bundle, cid, check=True)
    pyoci("kill", cid, "WINCH", check=True)
    time.sleep(0.2)
    assert state(pyoci, cid)["status"] == "created"
    pyoci("delete", "--force", cid, check=True)
    assert not os.path.exists(os.path.join(host, "ran"))


def test_kill_stopped_fails(pyoci, bundle, cid):
    pyoci("create", "--bundle", bundle, cid, check=True)
    pyoci("start", cid, check=True)
    wait_status(pyoci, cid, "stopped")
    for args in (("kill", cid), ("kill", cid, "KILL")):
        r = pyoci(*args)
        assert_one_line_error(r, "container not running")
    assert state(pyoci, cid)["status"] == "stopped"
    pyoci("delete", cid, check=True)


def test_kill_signal_zero_probes(pyoci, bundle, cid, base_config, write_config):
    write_config(bundle, base_config(SLEEP))
    pyoci("run", "-d", "--bundle", bundle, cid, check=True)
    assert pyoci("kill", cid, "0").returncode == 0
    assert state(pyoci, cid)["status"] == "running"
    pyoci("kill", cid, "KILL", check=True)
    wait_status(pyoci, cid, "stopped")
    assert_one_line_error(pyoci("kill", cid, "0"), "container not running")
    pyoci("delete", cid, check=True)


# ---------------------------------------------------------------------------------------
# start


def test_start_twice_fails(pyoci, bundle, cid, base_config, write_config):
    write_config(bundle, base_config(SLEEP))
    pyoci("create", "--bundle", bundle, cid, check=True)
    pyoci("start", cid, check=True)
    pid = state(pyoci, cid)["pid"]
    r = pyoci("start", cid)
    assert_one_line_error(r, "cannot start an already running container")
    st = state(pyoci, cid)
    assert st["status"] == "running" and st["pid"] == pid
    pyoci("kill", cid, "KILL", check=True)
    wait_status(pyoci, cid, "stopped")
    assert_one_line_error(pyoci("start", cid), "cannot start a container that has stopped")
    pyoci("delete", cid, check=True)


def test_start_of_paused_container_fails(pyoci, bundle, cid, base_config, write_config):
    write_config(bundle, base_config(SLEEP))
    pyoci("run", "-d", "--bundle", bundle, cid, check=True)
    pyoci("pause", cid, check=True)
    try:
        assert state(pyoci, cid)["status"] == "paused"
        assert_one_line_error(pyoci("start", cid), "cannot start a container in the paused state")
        assert_one_line_error(pyoci("delete", cid), "that is not stopped: paused")
    finally:
        pyoci("resume", cid)
    assert state(pyoci, cid)["status"] == "running"
    pyoci("delete", "--force", cid, check=True)


# ---------------------------------------------------------------------------------------
# delete


def test_delete_stopped(pyoci, bundle, cid):
    pyoci("create", "--bundle", bundle, cid, check=True)
    pyoci("start", cid, check=True)
    wait_status(pyoci, cid, "stopped")
    r = pyoci("delete", cid)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""
    assert state_entries(pyoci.root) == []
    assert_one_line_error(pyoci("state", cid), "container does not exist")
    assert_one_line_error(pyoci("delete", cid), "container does not exist")


def test_delete_created_kills_init(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config(["sh", "-c", "touch /out/ran"])
    host = shared_dir(bundle, cfg)
    write_config(bundle, cfg)
    pyoci("create", "--bundle", bundle, cid, check=True)
    pid = state(pyoci, cid)["pid"]
    r = pyoci("delete", cid)
    assert r.returncode == 0, r.stderr
    assert not pid_alive(pid), "delete returned before the created init was gone"
    assert state_entries(pyoci.root) == []
    assert not os.path.exists(os.path.join(host, "ran")), "deleting ran the program"
    assert_one_line_error(pyoci("start", cid), "container does not exist")


def test_delete_running_needs_force(pyoci, bundle, cid, base_config, write_config):
    write_config(bundle, base_config(SLEEP))
    pyoci("run", "--detach", "--bundle", bundle, cid, check=True)
    pid = state(pyoci, cid)["pid"]
    r = pyoci("delete", cid)
    assert_one_line_error(r, f"cannot delete container {cid} that is not stopped: running")
    assert pid_alive(pid)
    assert state(pyoci, cid)["status"] == "running"

    r = pyoci("delete", "--force", cid)
    assert r.returncode == 0, r.stderr
    assert not pid_alive(pid), "delete --force returned before the container was gone"
    assert state_entries(pyoci.root) == []


def test_delete_force_short_flag(pyoci, bundle, cid, base_config, write_config):
    write_config(bundle, base_config(SLEEP))
    pyoci("run", "-d", "-b", bundle, cid, check=True)
    pid = state(pyoci, cid)["pid"]
    pyoci("delete", "-f", cid, check=True)
    assert not pid_alive(pid)
    assert state_entries(pyoci.root) == []


# ---------------------------------------------------------------------------------------
# run


def test_run_returns_exit_code_and_cleans_up(pyoci, new_bundle, cid):
    b = new_bundle(["sh", "-c", "echo out; echo err >&2; exit 3"])
    r = pyoci("run", "--bundle", b, cid)
    assert r.returncode == 3, r.stderr
    assert r.stdout == "out\n"
    assert r.stderr == "err\n"
    assert state_entries(pyoci.root) == []


def test_run_zero_exit(pyoci, bundle, cid):
    r = pyoci("run", "--bundle", bundle, cid)
    assert r.returncode == 0, r.stderr
    assert state_entries(pyoci.root) == []


def test_run_passes_stdin_through(pyoci, new_bundle, cid):
    b = new_bundle(["sh", "-c", "read line; echo got:$line"])
    r = pyoci("run", "-b", b, cid, input="hello\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "got:hello\n"


def _running(pyoci, cid: str) -> dict | None:
    """The state if the container exists and runs (for polling a `run` in the background)."""
    r = pyoci("state", cid)
    if r.returncode != 0:
        return None
    st = json.loads(r.stdout)
    return st if st["status"] == "running" else None


def test_run_killed_by_signal_is_128_plus_n(pyoci, new_bundle, cid):
    b = new_bundle(SLEEP)
    p = pyoci.popen("run", "--bundle", b, cid, stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE)
    wait_for(lambda: _running(pyoci, cid), what="the container to run")
    pyoci("kill", cid, "KILL", check=True)
    _, err = p.communicate(timeout=10)
    assert p.returncode == 128 + signal.SIGKILL, err
    assert state_entries(pyoci.root) == []


def test_run_forwards_signals(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config(["sh", "-c", "trap 'exit 7' USR1; touch /out/ready; "
                                   "while :; do sleep 0.05; done"])
    host = shared_dir(bundle, cfg)
    write_config(bundle, cfg)
    p = pyoci.popen("run", "--bundle", bundle, cid, stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE)
    wait_for(lambda: os.path.exists(os.path.join(host, "ready")), what="the trap to be set")
    p.send_signal(signal.SIGUSR1)
    _, err = p.communicate(timeout=10)
    assert p.returncode == 7, err
    assert state_entries(pyoci.root) == []


def test_run_detach(pyoci, bundle, cid, base_config, write_config):
    write_config(bundle, base_config(SLEEP))
    t0 = time.monotonic()
    r = pyoci("run", "--detach", "--bundle", bundle, cid)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 10
    st = state(pyoci, cid)
    assert st["status"] == "running"
    wait_for(lambda: cmdline(st["pid"]) == SLEEP, what="sleep to run")
    pyoci("delete", "--force", cid, check=True)
    assert not pid_alive(st["pid"])


def test_run_keep_leaves_stopped_container(pyoci, new_bundle, cid):
    b = new_bundle(["sh", "-c", "exit 5"])
    r = pyoci("run", "--keep", "--bundle", b, cid)
    assert r.returncode == 5, r.stderr
    st = state(pyoci, cid)
    assert st["status"] == "stopped" and st["pid"] == 0
    listed = json.loads(pyoci("list", "--format", "json", check=True).stdout)
    assert [(c["id"], c["status"]) for c in listed] == [(cid, "stopped")]
    pyoci("delete", cid, check=True)
    assert state_entries(pyoci.root) == []


def test_run_duplicate_id_leaves_first_alone(pyoci, bundle, cid, base_config, write_config):
    write_config(bundle, base_config(SLEEP))
    pyoci("run", "-d", "--bundle", bundle, cid, check=True)
    pid = state(pyoci, cid)["pid"]
    r = pyoci("run", "--bundle", bundle, cid)
    assert_one_line_error(r, "container with given ID already exists")
    st = state(pyoci, cid)
    assert st["status"] == "running" and st["pid"] == pid
    pyoci("delete", "--force", cid, check=True)


# ---------------------------------------------------------------------------------------
# list


def test_list_formats(pyoci, bundle, cid, base_config, write_config):
    assert pyoci("list", "-q", check=True).stdout == ""
    empty = pyoci("list", check=True).stdout.splitlines()
    assert empty[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert len(empty) == 1
    assert json.loads(pyoci("list", "--format", "json", check=True).stdout) in (None, [])

    write_config(bundle, base_config(SLEEP))
    a, b = cid + "-a", cid + "-b"
    pyoci("create", "--bundle", bundle, b, check=True)
    pyoci("run", "-d", "--bundle", bundle, a, check=True)
    sa, sb = state(pyoci, a), state(pyoci, b)

    quiet = pyoci("list", "--quiet", check=True).stdout
    assert quiet.splitlines() == [a, b]

    table = pyoci("list", check=True).stdout.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    rows = [line.split() for line in table[1:]]
    assert rows == [
        [a, str(sa["pid"]), "running", bundle, sa["created"], "root"],
        [b, str(sb["pid"]), "created", bundle, sb["created"], "root"],
    ]
    # the columns line up, as Go's tabwriter aligns them
    starts = [table[0].index(h) for h in ("PID", "STATUS", "BUNDLE")]
    for line in table[1:]:
        for s in starts:
            assert line[s - 1] == " " and line[s] != " "

    for form in (("--format", "json"), ("--format=json",), ("-f", "json")):
        items = json.loads(pyoci("list", *form, check=True).stdout)
        assert [i["id"] for i in items] == [a, b]
        by_id = {i["id"]: i for i in items}
        assert by_id[a]["status"] == "running" and by_id[a]["pid"] == sa["pid"]
        assert by_id[b]["status"] == "created" and by_id[b]["pid"] == sb["pid"]
        for item in items:
            assert item["owner"] == "root"  # the state dir's owner, by name
            assert item["bundle"] == bundle
            assert RFC3339.fullmatch(item["created"])
            assert {"id", "pid", "status", "bundle", "created", "owner"} <= set(item)

    pyoci("kill", a, "KILL", check=True)
    wait_status(pyoci, a, "stopped")
    items = json.loads(pyoci("list", "--format", "json", check=True).stdout)
    assert {i["id"]: (i["status"], i["pid"]) for i in items} == {
        a: ("stopped", 0), b: ("created", sb["pid"])}
    pyoci("delete", a, check=True)
    pyoci("delete", "--force", b, check=True)


# ---------------------------------------------------------------------------------------
# concurrency and PID reuse


def test_concurrent_operations_on_one_container(pyoci, bundle, cid, base_config,
                                                write_config):
    write_config(bundle, base_config(SLEEP))
    pyoci("run", "-d", "--bundle", bundle, cid, check=True)
    pid = state(pyoci, cid)["pid"]
    kw = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    procs = []
    for i in range(10):
        procs.append(("state", pyoci.popen("state", cid, **kw)))
        procs.append(("kill", pyoci.popen("kill", cid, "0", **kw)))
        if i == 3:
            procs.append(("delete", pyoci.popen("delete", "--force", cid, **kw)))
    for what, p in procs:
        out, err = p.communicate(timeout=30)
        assert "Traceback" not in err, err
        if what == "delete":
            assert p.returncode == 0, err
        elif p.returncode == 0:
            if what == "state":
                st = json.loads(out)
                assert st["id"] == cid
                assert st["status"] in ("running", "stopped"), st
        else:
            assert err.strip().endswith(("container does not exist", "container not running",
                                         'container does not exist"',
                                         'container not running"')), err
    assert not pid_alive(pid)
    assert state_entries(pyoci.root) == []


def test_concurrent_deletes(pyoci, bundle, cid, base_config, write_config):
    write_config(bundle, base_config(SLEEP))
    pyoci("run", "-d", "--bundle", bundle, cid, check=True)
    pid = state(pyoci, cid)["pid"]
    kw = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    procs = [pyoci.popen("delete", "--force", cid, **kw) for _ in range(5)]
    for p in procs:
        _, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        assert err == ""
    assert not pid_alive(pid)
    assert state_entries(pyoci.root) == []


def test_concurrent_creates_of_one_id(pyoci, bundle, cid, base_config, write_config,
                                      tmp_path):
    write_config(bundle, base_config(SLEEP))
    procs = []
    for i in range(5):
        err = open(tmp_path / f"err{i}", "w+")  # not a pipe: the created init holds it
        procs.append((pyoci.popen("create", "--bundle", bundle, cid,
                                  stdout=subprocess.DEVNULL, stderr=err), err))
    codes = []
    for p, err in procs:
        p.wait(timeout=60)
        err.seek(0)
        text = err.read()
        err.close()
        codes.append(p.returncode)
        if p.returncode:
            assert text.strip() == "container with given ID already exists" or \
                text.strip().endswith('container with given ID already exists"'), text
    assert codes.count(0) == 1, codes
    assert state(pyoci, cid)["status"] == "created"
    assert state_entries(pyoci.root) == [cid]
    pyoci("delete", "--force", cid, check=True)


def test_concurrent_starts(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config(["sh", "-c", "echo x >> /out/runs; exec sleep 1000"])
    host = shared_dir(bundle, cfg)
    write_config(bundle, cfg)
    pyoci("create", "--bundle", bundle, cid, check=True)
    kw = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    procs = [pyoci.popen("start", cid, **kw) for _ in range(5)]
    results = [(p.wait(timeout=60), p.communicate()[1]) for p in procs]
    assert [rc for rc, _ in results].count(0) == 1, results
    for rc, err in results:
        if rc:
            assert "cannot start an already running container" in err, err
    wait_for(lambda: os.path.exists(os.path.join(host, "runs")), what="the program to run")
    time.sleep(0.1)
    with open(os.path.join(host, "runs")) as f:
        assert f.read() == "x\n", "the program ran more than once"
    assert state(pyoci, cid)["status"] == "running"
    pyoci("delete", "--force", cid, check=True)


@pyoci_only
def test_recycled_pid_is_not_the_container(pyoci, bundle, cid):
    """state.json names a live process that is not the container: stopped, never signalled."""
    pyoci("run", "--keep", "--bundle", bundle, cid, check=True)
    assert state(pyoci, cid)["status"] == "stopped"
    stranger = subprocess.Popen(SLEEP, stdin=subprocess.DEVNULL)
    try:
        path = os.path.join(pyoci.root, cid, "state.json")
        with open(path) as f:
            stored = json.load(f)
        stored["pid"] = stranger.pid  # as if the kernel had handed init's PID on
        with open(path, "w") as f:
            json.dump(stored, f)

        st = state(pyoci, cid)
        assert st["status"] == "stopped" and st["pid"] == 0
        listed = json.loads(pyoci("list", "--format", "json", check=True).stdout)
        assert listed[0]["status"] == "stopped"
        for args in (("kill", cid, "KILL"), ("kill", cid, "TERM"), ("kill", "--all", cid,
                                                                     "KILL")):
            assert_one_line_error(pyoci(*args), "container not running")
        assert_one_line_error(pyoci("start", cid), "cannot start a container that has stopped")
        pyoci("delete", cid, check=True)
        time.sleep(0.1)
        assert stranger.poll() is None, "pyoci signalled a process that is not the container"
        assert state_entries(pyoci.root) == []
    finally:
        stranger.kill()
        stranger.wait()


@pyoci_only
def test_recycled_pid_of_created_container(pyoci, bundle, cid, base_config, write_config):
    """The same, for a container deleted with --force (which kills what it thinks is init)."""
    write_config(bundle, base_config(SLEEP))
    pyoci("create", "--bundle", bundle, cid, check=True)
    real_pid = state(pyoci, cid)["pid"]
    pyoci("kill", cid, "KILL", check=True)
    wait_for(lambda: not pid_alive(real_pid), what="init to die")
    stranger = subprocess.Popen(SLEEP, stdin=subprocess.DEVNULL)
    try:
        path = os.path.join(pyoci.root, cid, "state.json")
        with open(path) as f:
            stored = json.load(f)
        stored["pid"] = stranger.pid
        with open(path, "w") as f:
            json.dump(stored, f)
        assert state(pyoci, cid)["status"] == "stopped"
        pyoci("delete", "--force", cid, check=True)
        time.sleep(0.1)
        assert stranger.poll() is None, "delete --force killed a process not in the container"
    finally:
        stranger.kill()
        stranger.wait()
