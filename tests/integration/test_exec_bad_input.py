"""Bad input to ``exec``: one clear line, exit 255 (runc's code for its own failures), no
process left in the container, no pid file, and the container unharmed."""

from __future__ import annotations

import json
import os

import pytest
from exec_support import (
    SLEEPER,
    UNDER_RUNC,
    one_line_error,
    pids_in_pidns,
    pyoci_only,
    start_container,
)

RUNC_WORDING = [
    # (argv after "exec", what the one line must say)
    (["{cid}", "nope"], 'exec: "nope": executable file not found in $PATH'),
    (["{cid}", "/nope"], 'exec: "/nope": stat /nope: no such file or directory'),
    (["{cid}"], "process args cannot be empty"),
    (["--cwd", "/nonexistent", "{cid}", "true"],
     'chdir to cwd ("/nonexistent") set in config.json failed: no such file or directory'),
    (["--cwd", "relative", "{cid}", "true"], "Cwd must be an absolute path"),
    (["--cgroup", "a:b:c", "{cid}", "true"], "invalid --cgroup argument: a:b:c"),
    (["--cgroup", "x", "--cgroup", "y", "{cid}", "true"], "missing <controller>: prefix"),
    (["--process-label", "system_u:system_r:container_t:s0", "{cid}", "true"],
     "selinux label is specified in config, but selinux is disabled or not supported"),
    (["-g", "-5", "{cid}", "true"], "additional-gids must be a positive number -5"),
]

PYOCI_WORDING = [
    (["-u", "nosuchuser", "{cid}", "true"],
     "unable to find user nosuchuser: no matching entries in passwd file"),
    (["-u", "0:nosuchgroup", "{cid}", "true"],
     "unable to find group nosuchgroup: no matching entries in group file"),
    (["-u", "1000:", "{cid}", "true"], "invalid --user"),
    (["--cap", "CAP_NO_SUCH_THING", "{cid}", "true"], "CAP_NO_SUCH_THING"),
    (["--cgroup", "no-such-sub-cgroup", "{cid}", "true"], "cannot join sub-cgroup"),
    (["--cgroup", "../../escape", "{cid}", "true"], "outside the container's cgroup"),
    (["--preserve-fds", "40", "{cid}", "true"], "--preserve-fds: fd"),
    (["-t", "-d", "{cid}", "true"], "cannot allocate tty"),
]


@pytest.fixture
def running(pyoci, bundle, cid, base_config, write_config):
    st = start_container(pyoci, bundle, cid, base_config(SLEEPER), write_config)
    try:
        yield st
    finally:
        pyoci("delete", "--force", cid)


def _unharmed(pyoci, st, root, pid_file=None) -> None:
    assert pids_in_pidns(st["pid"]) == {st["pid"]}, "a process was left in the container"
    assert sorted(os.listdir(root)) == [st["id"]]
    if pid_file is not None:
        assert not os.path.exists(pid_file), "a pid file was written for a failed exec"
    r = pyoci("exec", st["id"], "echo", "still-fine")
    assert (r.returncode, r.stdout) == (0, "still-fine\n"), r.stderr


@pytest.mark.parametrize("argv,needle", RUNC_WORDING, ids=[" ".join(a) for a, _ in RUNC_WORDING])
def test_runc_wording(pyoci, running, root, tmp_path, argv, needle):
    pid_file = tmp_path / "pid"
    argv = [a.format(cid=running["id"]) for a in argv]
    r = pyoci("exec", "--pid-file", pid_file, *argv)
    one_line_error(r, "exec failed: ", needle)
    _unharmed(pyoci, running, root, pid_file)


@pyoci_only
@pytest.mark.parametrize("argv,needle", PYOCI_WORDING, ids=[" ".join(a) for a, _ in PYOCI_WORDING])
def test_pyoci_wording(pyoci, running, root, tmp_path, argv, needle):
    pid_file = tmp_path / "pid"
    argv = [a.format(cid=running["id"]) for a in argv]
    r = pyoci("exec", "--pid-file", pid_file, *argv)
    one_line_error(r, "exec failed: ", needle)
    _unharmed(pyoci, running, root, pid_file)


def test_unknown_container(pyoci, root):
    one_line_error(pyoci("exec", "no-such-container", "true"),
                   "exec failed: container does not exist")
    assert os.listdir(root) == []


@pytest.mark.parametrize("content,needle", [
    ("{bad", "invalid JSON"),
    ('{"cwd": "/", "args": "true"}', "args"),
    ('{"cwd": "/", "args": ["true"], "user": {"uid": "root"}}', "uid"),
    ('{"args": ["true"]}', "cwd"),
    ('{"cwd": "/", "args": []}', "args"),
    ("[1, 2]", "process"),
    ("null", "process"),
], ids=["syntax", "args-type", "uid-type", "no-cwd", "empty-args", "not-object", "null"])
def test_malformed_process_json(pyoci, running, root, tmp_path, content, needle):
    process_file = tmp_path / "process.json"
    process_file.write_text(content)
    pid_file = tmp_path / "pid"
    r = pyoci("exec", "--pid-file", pid_file, "--process", process_file, running["id"])
    line = one_line_error(r, "exec failed: ")
    if not UNDER_RUNC:  # runc words these as Go's JSON decoder does
        assert needle.lower() in line.lower(), line
    _unharmed(pyoci, running, root, pid_file)


def test_missing_process_json(pyoci, running, root, tmp_path):
    r = pyoci("exec", "--process", tmp_path / "nope.json", running["id"])
    one_line_error(r, "exec failed: ", "no such file or directory")
    _unharmed(pyoci, running, root)


def test_process_json_runs(pyoci, running, tmp_path):
    """The good case, for contrast: the file is the whole process (-e etc. ignored)."""
    proc = {"cwd": "/tmp", "args": ["sh", "-c", "echo $A $(pwd) $(id -u)"],
            "env": ["A=from-file", "PATH=/bin"], "user": {"uid": 1000, "gid": 1000}}
    (tmp_path / "p.json").write_text(json.dumps(proc))
    r = pyoci("exec", "-e", "A=from-flag", "--process", tmp_path / "p.json", running["id"])
    assert (r.returncode, r.stdout) == (0, "from-file /tmp 1000\n"), r.stderr


@pyoci_only
def test_unmapped_user_in_a_user_namespace(pyoci, bundle, cid, base_config, write_config,
                                           root):
    from container_helpers import chown_bundle_for_userns, userns_config

    cfg = userns_config(base_config(SLEEPER), size=65536)
    chown_bundle_for_userns(bundle)
    st = start_container(pyoci, bundle, cid, cfg, write_config)
    try:
        r = pyoci("exec", "-u", "70000", cid, "true")
        one_line_error(r, "exec failed: ", "70000", "not mapped")
        _unharmed(pyoci, st, root)
    finally:
        pyoci("delete", "--force", cid)
