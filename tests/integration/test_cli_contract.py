"""The command line as callers (containerd, podman, scripts) rely on it: flag forms,
--version, --log/--log-format, --root, spec, exit codes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile

import pytest
from lifecycle_helpers import (
    RFC3339,
    RUNTIME,
    UNDER_RUNC,
    assert_one_line_error,
    pid_alive,
    pyoci_only,
    state,
    state_entries,
    wait_status,
)

SLEEP = ["sleep", "1000"]


def _run_cli(*args, cwd=None) -> subprocess.CompletedProcess:
    """The runtime without the fixture's --root (for --version, spec, an explicit --root).

    Output goes through files: a created container holds the caller's stdio open, so
    reading a pipe to EOF would wait for the container.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.run([*RUNTIME, *args], stdout=out, stderr=err, timeout=60,
                           stdin=subprocess.DEVNULL, cwd=cwd)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(p.args, p.returncode, out.read().decode(),
                                           err.read().decode())


# ---------------------------------------------------------------------------------------
# flag forms


def test_flag_value_forms(pyoci, bundle, cid, base_config, write_config, tmp_path):
    write_config(bundle, base_config(SLEEP))
    log = tmp_path / "log.json"
    # every flag that takes a value, in the --flag=v form ...
    r = pyoci(f"--log={log}", "--log-format=json", "create", f"--bundle={bundle}",
              f"--pid-file={tmp_path / 'a.pid'}", "--preserve-fds=0", cid)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "a.pid").read_text() == str(state(pyoci, cid)["pid"])
    # ... and in the --flag v form
    cid2 = cid + "-2"
    r = pyoci("--log", str(log), "--log-format", "json", "create", "--bundle", bundle,
              "--pid-file", str(tmp_path / "b.pid"), "--preserve-fds", "0", cid2)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "b.pid").read_text() == str(state(pyoci, cid2)["pid"])
    assert log.exists()
    for form in (["--format=json"], ["--format", "json"], ["-f", "json"]):
        items = json.loads(pyoci("list", *form, check=True).stdout)
        assert sorted(i["id"] for i in items) == [cid, cid2]
    pyoci("delete", "--force", cid, check=True)
    pyoci("delete", "--force", cid2, check=True)


def test_root_flag_forms(bundle, cid, base_config, write_config, tmp_path, root):
    """--root=v and --root v (here without the fixture's --root) name the same root."""
    write_config(bundle, base_config(SLEEP))
    r = _run_cli(f"--root={root}", "create", "-b", bundle, cid)
    assert r.returncode == 0, r.stderr
    try:
        r = _run_cli("--root", root, "state", cid)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["status"] == "created"
        assert os.path.isdir(os.path.join(root, cid))
    finally:
        r = _run_cli("--root", root, "delete", "--force", cid)
    assert r.returncode == 0, r.stderr


# ---------------------------------------------------------------------------------------
# --version


def test_version_layout():
    r = _run_cli("--version")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert re.fullmatch(r"\S+ version \S+", lines[0]), lines
    if not UNDER_RUNC:
        from pyoci import __version__

        assert lines[0] == f"pyoci version {__version__}"
        assert "spec: 1.3.0" in lines
    assert any(re.fullmatch(r"spec: \d+\.\d+\.\d+\S*", line) for line in lines), lines
    assert re.fullmatch(r"libseccomp: \d+\.\d+\.\d+", lines[-1]), lines
    # the spec line follows the version line(s), libseccomp comes last, as runc lays them out
    spec_at = next(i for i, line in enumerate(lines) if line.startswith("spec: "))
    assert 0 < spec_at < len(lines) - 1
    assert r.stderr == ""


@pyoci_only
def test_version_short_flag():
    r = _run_cli("-v")
    assert r.returncode == 0
    assert r.stdout == _run_cli("--version").stdout


# ---------------------------------------------------------------------------------------
# --log / --log-format


def _json_records(path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f.read().splitlines() if line.strip()]


@pytest.mark.parametrize("form", ["separate", "equals"])
def test_log_json_one_error_record(pyoci, tmp_path, form):
    log = tmp_path / "runtime.log"
    opts = (["--log", str(log), "--log-format", "json"] if form == "separate"
            else [f"--log={log}", "--log-format=json"])
    r = pyoci(*opts, "state", "no-such-container")
    assert_one_line_error(r, "container does not exist")
    records = _json_records(log)
    assert len(records) == 1, records
    rec = records[0]
    assert rec["level"] == "error"
    assert "container does not exist" in rec["msg"]
    assert RFC3339.fullmatch(rec["time"]), rec
    assert {"level", "msg", "time"} <= set(rec)


def test_log_json_create_failure_is_one_record(pyoci, new_bundle, cid, tmp_path):
    """A failure deep in container init still makes exactly one record, and one line."""
    b = new_bundle(["nope"])
    log = tmp_path / "runtime.log"
    r = pyoci("--log", str(log), "--log-format", "json", "create", "--bundle", b, cid)
    assert_one_line_error(r, "nope")
    records = _json_records(log)
    errors = [rec for rec in records if rec["level"] in ("error", "fatal")]
    assert len(errors) == 1, records
    assert "nope" in errors[0]["msg"]
    assert state_entries(pyoci.root) == []


def test_log_file_exists_on_success(pyoci, bundle, cid, tmp_path):
    for fmt in ("json", "text"):
        log = tmp_path / f"ok-{fmt}.log"
        r = pyoci("--log", str(log), "--log-format", fmt, "list")
        assert r.returncode == 0, r.stderr
        assert log.exists(), "--log must create the file even when nothing fails"
        assert log.read_text() == ""
    # a whole successful run, too
    log = tmp_path / "run.log"
    r = pyoci("--log", str(log), "--log-format", "json", "run", "--bundle", bundle, cid)
    assert r.returncode == 0, r.stderr
    assert log.exists()
    assert [rec for rec in _json_records(log) if rec["level"] == "error"] == []


def test_log_text_format(pyoci, tmp_path):
    log = tmp_path / "runtime.log"
    r = pyoci("--log", str(log), "--log-format", "text", "kill", "no-such-container")
    assert_one_line_error(r, "container does not exist")
    lines = log.read_text().splitlines()
    assert len(lines) == 1, lines
    m = re.fullmatch(r'time="([^"]+)" level=error msg="?container does not exist"?', lines[0])
    assert m, lines[0]
    assert RFC3339.fullmatch(m.group(1))


def test_log_default_format_is_text(pyoci, tmp_path):
    log = tmp_path / "runtime.log"
    pyoci("--log", str(log), "start", "no-such-container")
    lines = log.read_text().splitlines()
    assert len(lines) == 1 and "level=error" in lines[0] and lines[0].startswith("time=")


def test_log_appends(pyoci, tmp_path):
    log = tmp_path / "runtime.log"
    log.write_text('{"level":"info","msg":"before","time":"2020-01-01T00:00:00Z"}\n')
    pyoci("--log", str(log), "--log-format", "json", "state", "missing")
    records = _json_records(log)
    assert [r["msg"] for r in records][0] == "before"
    assert len(records) == 2


def test_log_json_with_debug_is_all_json(pyoci, bundle, cid, tmp_path):
    log = tmp_path / "runtime.log"
    r = pyoci("--debug", "--log", str(log), "--log-format", "json", "run", "-b", bundle, cid)
    assert r.returncode == 0, r.stderr
    for rec in _json_records(log):  # every line parses
        assert {"level", "msg", "time"} <= set(rec)


# ---------------------------------------------------------------------------------------
# delete --force, --root


def test_delete_force_of_missing_container(pyoci):
    r = pyoci("delete", "--force", "never-existed")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""
    assert_one_line_error(pyoci("delete", "never-existed"), "container does not exist")


@pytest.mark.parametrize("kind", ["nested-missing", "relative", "with-space"])
def test_root_any_directory(kind, bundle, cid, base_config, write_config, root, tmp_path):
    # Not inside the fixture's root: that one holds container directories only.
    write_config(bundle, base_config(SLEEP))
    cwd = None
    if kind == "nested-missing":
        state_root = str(tmp_path / "a" / "b" / "c")
        arg = state_root
    elif kind == "relative":
        cwd = str(tmp_path)
        state_root = str(tmp_path / "rel")
        arg = "rel"
    else:
        state_root = str(tmp_path / "with space")
        arg = state_root
    r = _run_cli("--root", arg, "create", "--bundle", bundle, cid, cwd=cwd)
    assert r.returncode == 0, r.stderr
    try:
        assert os.path.isdir(os.path.join(state_root, cid))
        r = _run_cli("--root", state_root, "state", cid)
        assert r.returncode == 0, r.stderr
        st = json.loads(r.stdout)
        assert st["status"] == "created"
        r = _run_cli("--root", state_root, "list", "-q")
        assert r.stdout.split() == [cid]
        assert _run_cli("--root", state_root, "start", cid).returncode == 0
    finally:
        r = _run_cli("--root", state_root, "delete", "--force", cid)
    assert r.returncode == 0, r.stderr
    assert os.listdir(state_root) == []
    assert not pid_alive(st["pid"])


def test_list_of_missing_root(root):
    r = _run_cli("--root", os.path.join(root, "nothing-here"), "list", "-q")
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""


# ---------------------------------------------------------------------------------------
# spec


@pyoci_only
def test_spec_writes_valid_config(tmp_path):
    from pyoci.config import load_schema_validator

    r = _run_cli("spec", cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""
    cfg = json.loads((tmp_path / "config.json").read_text())
    errors = list(load_schema_validator().iter_errors(cfg))
    assert errors == [], errors[0].message
    assert cfg["ociVersion"] == "1.3.0"
    assert cfg["root"] == {"path": "rootfs", "readonly": True}
    assert {ns["type"] for ns in cfg["linux"]["namespaces"]} >= {"pid", "mount", "network"}


@pyoci_only
def test_spec_bundle_flag_and_rootless(tmp_path):
    from pyoci.config import load_schema_validator

    d = tmp_path / "b"
    d.mkdir()
    r = _run_cli("spec", f"--bundle={d}", "--rootless")
    assert r.returncode == 0, r.stderr
    cfg = json.loads((d / "config.json").read_text())
    assert list(load_schema_validator().iter_errors(cfg)) == []
    assert "user" in {ns["type"] for ns in cfg["linux"]["namespaces"]}
    assert cfg["linux"]["uidMappings"] and cfg["linux"]["gidMappings"]


def test_spec_refuses_to_overwrite(tmp_path):
    existing = tmp_path / "config.json"
    existing.write_text("mine\n")
    r = _run_cli("spec", "--bundle", str(tmp_path))
    assert_one_line_error(r, "exists", "Remove it first")
    assert existing.read_text() == "mine\n"
    r = _run_cli("spec", cwd=str(tmp_path))
    assert_one_line_error(r, "config.json exists")
    assert existing.read_text() == "mine\n"


def test_spec_config_runs(pyoci, bundle, cid, tmp_path):
    """What `spec` writes runs a container (with a command that needs no terminal)."""
    os.unlink(os.path.join(bundle, "config.json"))
    r = _run_cli("spec", "--bundle", bundle)
    assert r.returncode == 0, r.stderr
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sh", "-c", "echo from-spec; exit 2"]
    with open(path, "w") as f:
        json.dump(cfg, f)
    r = pyoci("run", "--bundle", bundle, cid)
    assert r.returncode == 2, r.stderr
    assert r.stdout == "from-spec\n"


# ---------------------------------------------------------------------------------------
# exit codes and argument errors


@pytest.mark.parametrize("args", [["state"], ["start"], ["delete"], ["kill"],
                                  ["state", "a", "b"], ["kill", "a", "KILL", "extra"]])
def test_wrong_argument_count(pyoci, args):
    r = pyoci(*args)
    assert_one_line_error(r, f'"{args[0]}" requires')
    assert r.returncode == 1


def test_unknown_flag_is_one_line(pyoci):
    r = pyoci("state", "--no-such-flag", "x")
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert "no-such-flag" in r.stderr


def test_successful_commands_print_nothing_extra(pyoci, bundle, cid, base_config,
                                                 write_config):
    write_config(bundle, base_config(SLEEP))
    for args in (("create", "--bundle", bundle, cid), ("start", cid), ("kill", cid, "KILL")):
        r = pyoci(*args)
        assert (r.returncode, r.stdout, r.stderr) == (0, "", ""), args
    wait_status(pyoci, cid, "stopped")
    r = pyoci("delete", cid)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_global_and_create_flags_accepted(pyoci, bundle, cid, tmp_path):
    """runc's flags callers pass routinely are accepted in both forms."""
    for i, flags in enumerate((["--rootless", "false"], ["--rootless=auto"],
                               ["--debug", "--log", str(tmp_path / "d.log")])):
        name = f"{cid}-{i}"
        r = pyoci(*flags, "run", "--no-new-keyring", "--preserve-fds=0", "--bundle", bundle,
                  name)
        assert r.returncode == 0, r.stderr
        assert state_entries(pyoci.root) == []
    assert (tmp_path / "d.log").read_text().strip(), "--debug logged nothing"


def test_help_is_not_an_error(pyoci):
    for args in (("--help",), ("-h",), ("create", "--help"), ("kill", "--help")):
        r = pyoci(*args)
        assert r.returncode == 0, (args, r.stderr)
        assert r.stdout.strip()
