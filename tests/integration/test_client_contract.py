"""The runtime contract podman (through conmon) and containerd (through its runc shim)
rely on, as found by driving pyoci with them (tests/clients/): issue 6, point 1.

* podman adds ``--log-format=json --log FILE`` and, when a call fails, parses the whole
  file as ONE JSON object: a failure leaves exactly one ``{level,msg,time}`` record;
* podman maps the runtime's exec error wording to exit 126 ("permission denied") and
  127 ("executable file not found in $PATH", "no such file or directory");
* conmon reads ``--pid-file`` as a bare integer;
* containerd's shim passes ``--root /run/containerd/runc/<namespace>`` (a directory that
  may not exist yet), calls ``state`` with no other global flag, ``delete --force`` on
  a container that is already gone, ``kill [--all] ID SIGNAL`` with a name or a number,
  ``ps --format json ID`` (a JSON array of host pids), ``update --resources -`` (JSON on
  stdin), and ``features`` (the runtime-spec features document).

Every test also runs against runc (``PYOCI_TEST_RUNTIME=runc``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest
from lifecycle_helpers import RUNTIME, UNDER_RUNC, pid_alive, state, wait_for, wait_status

COUNTER = ("trap 'n=$((n+1)); echo $n > /dev/shm/n' USR1 USR2 HUP; "
           "while :; do sleep 0.05; done")


def _cgroup_config(base_config, cid: str, args: list[str]) -> dict:
    """A config whose cgroup is /<cid> in every hierarchy: never below the test's own
    cgroup (on this host that would be inside a memory cgroup we must not touch)."""
    cfg = base_config(args)
    cfg["linux"]["cgroupsPath"] = f"/{cid}"
    return cfg


def _running(pyoci, new_bundle, cid, cfg) -> int:
    b = new_bundle(config=cfg)
    r = pyoci("run", "-d", "--bundle", b, cid)
    assert r.returncode == 0, r.stderr
    return wait_status(pyoci, cid, "running")["pid"]


def _json_log(path) -> dict:
    """The --log file after a failure, read as podman reads it: one JSON object."""
    with open(path) as f:
        text = f.read()
    assert text.endswith("\n") and text.count("\n") == 1, f"not one record: {text!r}"
    record = json.loads(text)
    assert set(record) == {"level", "msg", "time"}, record
    assert record["level"] == "error"
    return record


# ---------------------------------------------------------------------------------------
# --log FILE --log-format json


@pytest.mark.parametrize("arg, wording", [
    ("/etc/passwd", 'exec: "/etc/passwd": permission denied'),
    ("no-such-command", 'exec: "no-such-command": executable file not found in $PATH'),
    ("/no/such/file", "no such file or directory"),
])
def test_exec_failure_is_one_json_record_in_runc_words(pyoci, new_bundle, cid, base_config,
                                                       tmp_path, arg, wording):
    """podman: the failing call's log is one JSON error record, worded as runc words it
    (so that podman turns it into 126 or 127); runc fails at create, pyoci may at start."""
    b = new_bundle(config=base_config([arg]))
    create_log, start_log = tmp_path / "create.log", tmp_path / "start.log"
    r = pyoci("--log", create_log, "--log-format", "json", "create", "--bundle", b, cid)
    if r.returncode == 0:
        assert create_log.read_text() == ""
        r = pyoci("--log", start_log, "--log-format", "json", "start", cid)
        log = start_log
    else:
        log = create_log
    assert r.returncode == 1
    record = _json_log(log)
    assert wording in record["msg"]
    assert wording in r.stderr


def test_log_file_created_and_empty_on_success(pyoci, new_bundle, cid, base_config,
                                               tmp_path):
    b = new_bundle(config=base_config(["true"]))
    for n, args in enumerate((("create", "--bundle", b, cid), ("start", cid),
                              ("delete", "--force", cid))):
        log = tmp_path / f"{n}.log"
        r = pyoci("--log", log, "--log-format", "json", *args)
        assert r.returncode == 0, r.stderr
        assert log.exists() and log.read_text() == "", args


# ---------------------------------------------------------------------------------------
# --pid-file, --root, state, delete --force


def test_pid_file_is_a_bare_integer(pyoci, bundle, cid, tmp_path):
    pid_file = tmp_path / "pid"
    r = pyoci("create", "--bundle", bundle, "--pid-file", pid_file, cid)
    assert r.returncode == 0, r.stderr
    text = pid_file.read_text()
    assert re.fullmatch(r"[1-9][0-9]*", text), repr(text)
    assert int(text) == state(pyoci, cid)["pid"]


def test_root_that_does_not_exist_yet(bundle, cid, root):
    """containerd's shim: --root /run/containerd/runc/<namespace>, made on first use."""
    deep = os.path.join(root, "runc", "k8s.io")

    def cli(*args):
        # through files: a created container holds the caller's stdio open
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            p = subprocess.run([*RUNTIME, "--root", deep, *args], stdout=out, stderr=err,
                               timeout=60, stdin=subprocess.DEVNULL)
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(p.args, p.returncode, out.read().decode(),
                                               err.read().decode())

    try:
        r = cli("create", "--bundle", bundle, cid)
        assert r.returncode == 0, r.stderr
        assert os.path.isdir(os.path.join(deep, cid))
        assert json.loads(cli("state", cid).stdout)["status"] == "created"
        assert cli("delete", "--force", cid).returncode == 0
    finally:
        cli("delete", "--force", cid)
        shutil.rmtree(os.path.join(root, "runc"), ignore_errors=True)


def test_state_with_no_other_global_flag(pyoci, bundle, cid):
    """podman and the shim call `state ID` with nothing but --root; from any directory."""
    assert pyoci("create", "--bundle", bundle, cid).returncode == 0
    r = subprocess.run([*RUNTIME, "--root", pyoci.root, "state", cid], capture_output=True,
                       text=True, timeout=60, cwd="/", stdin=subprocess.DEVNULL,
                       env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["id"] == cid and st["status"] == "created" and st["pid"] > 0
    assert r.stderr == ""


def test_delete_force_of_a_container_already_gone(pyoci, bundle, cid, tmp_path):
    assert pyoci("run", "--bundle", bundle, cid).returncode == 0  # gone when it exits
    log = tmp_path / "log"
    r = pyoci("--log", log, "--log-format", "json", "delete", "--force", cid)
    assert r.returncode == 0, r.stderr
    assert log.read_text() == ""
    assert pyoci("delete", cid).returncode == 1


# ---------------------------------------------------------------------------------------
# kill, ps, update


@pytest.mark.parametrize("signals", [("USR1", "SIGUSR2", "12", "hup")])
def test_kill_signal_names_and_numbers(pyoci, new_bundle, cid, base_config, signals):
    pid = _running(pyoci, new_bundle, cid, _cgroup_config(base_config, cid,
                                                         ["sh", "-c", COUNTER]))

    def count() -> int:
        try:
            with open(f"/proc/{pid}/root/dev/shm/n") as f:
                return int(f.read() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    for n, sig in enumerate(signals, 1):
        r = pyoci("kill", cid, sig)
        assert r.returncode == 0, (sig, r.stderr)
        wait_for(lambda n=n: count() == n, what=f"signal {sig} handled")
    r = pyoci("kill", cid, "NOSUCHSIG")
    assert r.returncode != 0
    r = pyoci("kill", "--all", cid, "9")
    assert r.returncode == 0, r.stderr
    wait_status(pyoci, cid, "stopped")
    wait_for(lambda: not pid_alive(pid), what="init gone")


def test_ps_format_json(pyoci, new_bundle, cid, base_config):
    pid = _running(pyoci, new_bundle, cid, _cgroup_config(
        base_config, cid, ["sh", "-c", "sleep 1000 & sleep 1001 & wait"]))

    def pids():
        r = pyoci("ps", "--format", "json", cid)
        assert r.returncode == 0, r.stderr
        got = json.loads(r.stdout)
        assert isinstance(got, list) and all(isinstance(p, int) for p in got), r.stdout
        return got

    found = wait_for(lambda: len(pids()) == 3 and pids(), what="three processes")
    assert pid in found


def test_update_resources_from_stdin(pyoci, new_bundle, cid, base_config):
    pid = _running(pyoci, new_bundle, cid, _cgroup_config(base_config, cid, ["sleep", "1000"]))
    r = pyoci("update", "--resources", "-", cid, input=json.dumps({"pids": {"limit": 55}}))
    assert r.returncode == 0, r.stderr
    with open(f"/proc/{pid}/cgroup") as f:
        lines = f.read().splitlines()
    pids_line = [ln for ln in lines if ln.split(":")[1] in ("pids",)]
    if pids_line:  # cgroup v1 pids controller
        path = f"/sys/fs/cgroup/pids{pids_line[0].split(':', 2)[2]}/pids.max"
    else:  # cgroup v2
        path = f"/sys/fs/cgroup{[ln for ln in lines if ln.startswith('0::')][0][3:]}/pids.max"
    with open(path) as f:
        assert f.read().strip() == "55"


# ---------------------------------------------------------------------------------------
# exec, as podman exec and the shim's exec call it


@pytest.mark.parametrize("arg, wording", [
    ("/etc/passwd", 'exec: "/etc/passwd": permission denied'),
    ("no-such-command", 'exec: "no-such-command": executable file not found in $PATH'),
    ("/no/such/file", 'exec: "/no/such/file": stat /no/such/file: no such file or directory'),
])
def test_exec_failure_wording(pyoci, new_bundle, cid, base_config, tmp_path, arg, wording):
    _running(pyoci, new_bundle, cid, _cgroup_config(base_config, cid, ["sleep", "1000"]))
    log = tmp_path / "log"
    r = pyoci("--log", log, "--log-format", "json", "exec", cid, arg)
    assert r.returncode == 255, r.stderr
    record = _json_log(log)
    assert wording in record["msg"], record["msg"]


def test_exec_pid_file_is_a_bare_integer(pyoci, new_bundle, cid, base_config, tmp_path):
    _running(pyoci, new_bundle, cid, _cgroup_config(base_config, cid, ["sleep", "1000"]))
    pid_file = tmp_path / "exec.pid"
    r = pyoci("exec", "-d", "--pid-file", pid_file, cid, "sleep", "30")
    assert r.returncode == 0, r.stderr
    text = pid_file.read_text()
    assert re.fullmatch(r"[1-9][0-9]*", text), repr(text)
    assert pid_alive(int(text))


# ---------------------------------------------------------------------------------------
# features


def test_features_document(pyoci):
    """containerd reads `features` (recursive read-only mounts, idmapped mounts, ...)."""
    from pyoci.config import load_schema_validator

    r = pyoci("features")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert list(load_schema_validator("features-schema.json").iter_errors(doc)) == []
    assert "rro" in doc["mountOptions"]
    assert {"mount", "pid", "network", "user"} <= set(doc["linux"]["namespaces"])
    sec = doc["linux"]["seccomp"]
    assert sec["enabled"] is True
    assert set(sec.get("supportedFlags", [])) <= set(sec.get("knownFlags", []))
    if not UNDER_RUNC:
        from pyoci.features import features

        assert doc == features()
        assert r.stdout.startswith('{\n    "ociVersionMin"')  # runc's 4-space layout
    assert pyoci("features", "extra").returncode == 1
