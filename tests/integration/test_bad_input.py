"""Bad input: one clear line on stderr, no traceback, non-zero exit, nothing left behind.

"Nothing left behind" is checked here for the state root (no container directory, nor a
hidden leftover) and, after every test, by conftest's leak check: no mount, no process,
no cgroup.
"""

from __future__ import annotations

import os
import secrets

import pytest
from lifecycle_helpers import (
    UNDER_RUNC,
    assert_one_line_error,
    pid_alive,
    pyoci_only,
    state,
    state_entries,
)

SLEEP = ["sleep", "1000"]
CREATE_OR_RUN = pytest.mark.parametrize("op", ["create", "run"])


def _fails_cleanly(pyoci, args, *fragments) -> str:
    r = pyoci(*args)
    line = assert_one_line_error(r, *fragments)
    assert r.stdout == "", r.stdout
    assert state_entries(pyoci.root) == [], "a failed create left state behind"
    return line


# ---------------------------------------------------------------------------------------
# the bundle and its config.json


@CREATE_OR_RUN
def test_missing_bundle(pyoci, cid, tmp_path, op):
    missing = str(tmp_path / "no-such-bundle")
    _fails_cleanly(pyoci, (op, "--bundle", missing, cid), "no-such-bundle")


@CREATE_OR_RUN
def test_missing_config_json(pyoci, bundle, cid, op):
    os.unlink(os.path.join(bundle, "config.json"))
    _fails_cleanly(pyoci, (op, "--bundle", bundle, cid), "config.json")


@pytest.mark.parametrize("text", ['{"ociVersion": ', "not json", "", '{"a": 1}}', "\xff\xfe"])
def test_malformed_json(pyoci, bundle, cid, text):
    with open(os.path.join(bundle, "config.json"), "w", encoding="latin-1") as f:
        f.write(text)
    _fails_cleanly(pyoci, ("create", "--bundle", bundle, cid), "config.json")


@pyoci_only
@pytest.mark.parametrize(("edit", "path"), [
    (lambda c: c["process"].__setitem__("args", "sh"), "$.process.args"),
    (lambda c: c["process"].__setitem__("cwd", 7), "$.process.cwd"),
    (lambda c: c["root"].__setitem__("path", ["rootfs"]), "$.root.path"),
    (lambda c: c["mounts"][2].pop("destination"), "$.mounts[2]"),
    (lambda c: c["linux"]["namespaces"].append({"type": "bogus"}), "$.linux.namespaces[5]"),
    (lambda c: c.pop("ociVersion"), "ociVersion"),
    (lambda c: c["process"]["user"].__setitem__("uid", -1), "$.process.user.uid"),
    # MUSTs of config.md that the schema does not express
    (lambda c: c.__setitem__("ociVersion", "1.0"), "$.ociVersion"),
    (lambda c: c.__setitem__("ociVersion", "2.0.0"), "$.ociVersion"),
    (lambda c: c["process"].__setitem__("cwd", "tmp"), "$.process.cwd"),
    (lambda c: c["process"]["user"].pop("gid"), "$.process.user"),
    (lambda c: c.__setitem__("hooks", {"prestart": [{"path": "true"}]}),
     "$.hooks.prestart[0].path"),
    (lambda c: c.__setitem__("annotations", {"": "x"}), "$.annotations"),
])
def test_schema_invalid_config_names_json_path(pyoci, bundle, cid, base_config,
                                               write_config, edit, path):
    cfg = base_config()
    edit(cfg)
    write_config(bundle, cfg)
    line = _fails_cleanly(pyoci, ("create", "--bundle", bundle, cid), path)
    assert "config.json" in line


@CREATE_OR_RUN
def test_missing_rootfs(pyoci, bundle, cid, base_config, write_config, op):
    cfg = base_config()
    cfg["root"]["path"] = "no-such-rootfs"
    write_config(bundle, cfg)
    _fails_cleanly(pyoci, (op, "--bundle", bundle, cid), "no-such-rootfs")


def test_rootfs_is_a_file(pyoci, bundle, cid, base_config, write_config):
    with open(os.path.join(bundle, "file"), "w") as f:
        f.write("x")
    cfg = base_config()
    cfg["root"]["path"] = "file"
    write_config(bundle, cfg)
    _fails_cleanly(pyoci, ("create", "--bundle", bundle, cid), "file")


@pyoci_only
def test_empty_args(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config()
    cfg["process"]["args"] = []
    write_config(bundle, cfg)
    _fails_cleanly(pyoci, ("create", "--bundle", bundle, cid), "args")


# ---------------------------------------------------------------------------------------
# failures inside container init: everything it made must be undone


@CREATE_OR_RUN
def test_executable_not_found(pyoci, new_bundle, cid, op):
    b = new_bundle(["nope"])
    _fails_cleanly(pyoci, (op, "--bundle", b, cid),
                   'exec: "nope": executable file not found in $PATH')


def test_executable_absolute_path_missing(pyoci, new_bundle, cid):
    b = new_bundle(["/no/such/program"])
    _fails_cleanly(pyoci, ("create", "--bundle", b, cid), "/no/such/program",
                   "no such file or directory")


@CREATE_OR_RUN
def test_bad_mount_source(pyoci, bundle, cid, base_config, write_config, op):
    cfg = base_config()
    os.makedirs(os.path.join(bundle, "rootfs", "mnt", "x"), exist_ok=True)
    cfg["mounts"].append({"destination": "/mnt/x", "type": "bind",
                          "source": os.path.join(bundle, "no-such-source"),
                          "options": ["rbind"]})
    write_config(bundle, cfg)
    _fails_cleanly(pyoci, (op, "--bundle", bundle, cid), "no-such-source")


def test_bad_mount_type(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config()
    cfg["mounts"].append({"destination": "/mnt", "type": "nosuchfs", "source": "none"})
    write_config(bundle, cfg)
    _fails_cleanly(pyoci, ("create", "--bundle", bundle, cid), "/mnt")


@CREATE_OR_RUN
def test_bad_rlimit_type(pyoci, bundle, cid, base_config, write_config, op):
    cfg = base_config()
    cfg["process"]["rlimits"].append({"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1})
    write_config(bundle, cfg)
    _fails_cleanly(pyoci, (op, "--bundle", bundle, cid), "RLIMIT_BOGUS")


def test_rlimit_soft_above_hard(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config()
    cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 1024}]
    write_config(bundle, cfg)
    _fails_cleanly(pyoci, ("create", "--bundle", bundle, cid), "RLIMIT_NOFILE")


@pytest.mark.parametrize("key", ["kernel.osrelease", "net.ipv4.no_such_sysctl"])
def test_unwritable_sysctl(pyoci, bundle, cid, base_config, write_config, key):
    cfg = base_config()
    cfg["linux"]["sysctl"] = {key: "1"}
    write_config(bundle, cfg)
    _fails_cleanly(pyoci, ("create", "--bundle", bundle, cid), key)


def test_bad_cwd(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config()
    cfg["process"]["cwd"] = "/bin/busybox"  # a file, not a directory
    write_config(bundle, cfg)
    _fails_cleanly(pyoci, ("create", "--bundle", bundle, cid))


def test_failing_create_runtime_hook(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config()
    cfg["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}
    write_config(bundle, cfg)
    _fails_cleanly(pyoci, ("create", "--bundle", bundle, cid), "createRuntime")


def test_terminal_without_console_socket(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config()
    cfg["process"]["terminal"] = True
    write_config(bundle, cfg)
    _fails_cleanly(pyoci, ("create", "--bundle", bundle, cid), "console socket")


def test_missing_console_socket(pyoci, bundle, cid, base_config, write_config, tmp_path):
    cfg = base_config()
    cfg["process"]["terminal"] = True
    write_config(bundle, cfg)
    sock = str(tmp_path / "no-such.sock")
    _fails_cleanly(pyoci, ("create", "--console-socket", sock, "--bundle", bundle, cid),
                   "no-such.sock")


# ---------------------------------------------------------------------------------------
# container ids


@pytest.mark.parametrize("op", ["state", "start", "delete", "pause", "resume"])
def test_unknown_id(pyoci, op):
    _fails_cleanly(pyoci, (op, "no-such-container"), "container does not exist")


def test_unknown_id_kill(pyoci):
    _fails_cleanly(pyoci, ("kill", "no-such-container"), "container does not exist")
    _fails_cleanly(pyoci, ("kill", "no-such-container", "KILL"), "container does not exist")
    _fails_cleanly(pyoci, ("kill", "--all", "no-such-container", "KILL"),
                   "container does not exist")


@CREATE_OR_RUN
def test_duplicate_id(pyoci, bundle, cid, base_config, write_config, op):
    write_config(bundle, base_config(SLEEP))
    pyoci("create", "--bundle", bundle, cid, check=True)
    first = state(pyoci, cid)
    r = pyoci(op, "--bundle", bundle, cid)
    assert_one_line_error(r, "container with given ID already exists")
    again = state(pyoci, cid)
    assert again["status"] == "created" and again["pid"] == first["pid"]
    assert pid_alive(first["pid"])
    assert state_entries(pyoci.root) == [cid]
    pyoci("delete", "--force", cid, check=True)


BAD_IDS = ["../escape", "a/b", "..", ".", "with space", "tab\tid", "semi;colon", "*",
           "a\nb"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_invalid_id_create(pyoci, bundle, bad):
    _fails_cleanly(pyoci, ("create", "--bundle", bundle, bad), "invalid container id format")


def test_empty_id(pyoci, bundle):
    for args in (("create", "--bundle", bundle, ""), ("run", "--bundle", bundle, ""),
                 ("state", ""), ("start", ""), ("delete", ""), ("kill", "", "KILL")):
        r = pyoci(*args)
        assert_one_line_error(r, "container id cannot be empty")
    assert state_entries(pyoci.root) == []


def test_invalid_id_never_touches_outside_root(pyoci, bundle):
    """`../victim` must not name a directory beside the root, for any command."""
    name = f"pyoci-victim-{secrets.token_hex(4)}"
    victim = os.path.join(os.path.dirname(pyoci.root), name)
    os.mkdir(victim)
    try:
        with open(os.path.join(victim, "state.json"), "w") as f:
            f.write("{}")
        bad = f"../{name}"
        for args in (("create", "--bundle", bundle, bad), ("run", "--bundle", bundle, bad),
                     ("state", bad), ("start", bad), ("kill", bad, "KILL"), ("delete", bad),
                     ("delete", "--force", bad)):
            r = pyoci(*args)
            assert_one_line_error(r, "invalid container id format")
        assert os.listdir(victim) == ["state.json"]
    finally:
        os.unlink(os.path.join(victim, "state.json"))
        os.rmdir(victim)


# ---------------------------------------------------------------------------------------
# signals


# ("" is no bad signal: runc takes it as the default, SIGTERM)
BAD_SIGNALS = ["FOO", "SIGFOO", "99", "65", "1.5", "SIGRTMAX+1", "RTMIN-1", "SIG", "KILL9"]


def test_bad_signal(pyoci, bundle, cid, base_config, write_config):
    write_config(bundle, base_config(SLEEP))
    pyoci("run", "-d", "--bundle", bundle, cid, check=True)
    pid = state(pyoci, cid)["pid"]
    for sig in BAD_SIGNALS:
        r = pyoci("kill", cid, sig)
        if UNDER_RUNC:
            assert r.returncode != 0, sig
        else:
            assert_one_line_error(r, "unknown signal", f'"{sig}"')
        assert pid_alive(pid), f"kill {sig!r} hurt the container"
    assert state(pyoci, cid)["status"] == "running"
    pyoci("delete", "--force", cid, check=True)


def test_bad_signal_for_unknown_container(pyoci):
    r = pyoci("kill", "no-such-container", "FOO")
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------
# a damaged state root


@pyoci_only
def test_stray_file_in_root_is_no_container(pyoci):
    stray = os.path.join(pyoci.root, "stray")
    with open(stray, "w") as f:
        f.write("not a container\n")
    try:
        for args in (("state", "stray"), ("start", "stray"), ("kill", "stray"),
                     ("delete", "stray")):
            assert_one_line_error(pyoci(*args), "container does not exist")
        assert pyoci("list", "-q", check=True).stdout == ""
        assert pyoci("delete", "--force", "stray").returncode == 0
    finally:
        os.unlink(stray)


@pyoci_only
@pytest.mark.parametrize("garbage", ["", "{", "[]", '{"id": "x"}'])
def test_corrupt_state_file(pyoci, bundle, cid, garbage):
    pyoci("run", "--keep", "--bundle", bundle, cid, check=True)
    with open(os.path.join(pyoci.root, cid, "state.json"), "w") as f:
        f.write(garbage)
    for args in (("state", cid), ("kill", cid), ("start", cid), ("delete", cid)):
        assert_one_line_error(pyoci(*args), "corrupt")
    assert pyoci("list", "-q", check=True).stdout == ""
    r = pyoci("delete", "--force", cid)
    assert r.returncode == 0, r.stderr
    assert state_entries(pyoci.root) == []


@CREATE_OR_RUN
def test_unwritable_pid_file(pyoci, bundle, cid, tmp_path, op):
    pid_file = str(tmp_path / "no-such-dir" / "pid")
    _fails_cleanly(pyoci, (op, "--pid-file", pid_file, "--bundle", bundle, cid),
                   f"cannot write pid file {pid_file}")
