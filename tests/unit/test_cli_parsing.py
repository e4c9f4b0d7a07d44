"""The CLI's parsing and output, against a fake pyoci.container: no containers are run."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from pyoci.cli import cli, format_table
from pyoci.errors import ContainerNotFound, PyociError
from tests.unit.conftest import Fake

TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def state_of(cid: str, pid: int = 42, status: str = "running") -> dict[str, Any]:
    return {"ociVersion": "1.3.0", "id": cid, "pid": pid, "status": status,
            "bundle": f"/b/{cid}", "rootfs": f"/b/{cid}/rootfs",
            "created": "2026-01-02T03:04:05.123456789Z", "owner": ""}


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def assert_one_line_error(result: Result, text: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr == text + "\n"
    assert result.stdout == ""


def test_create_flags_both_forms(fake: Fake, tmp_path: Path) -> None:
    result = invoke("--root=/r", "create", "--bundle=/bun", "--pid-file=/p", "--console-socket",
                    "/s", "--no-pivot", "--no-new-keyring", "--preserve-fds=2", "c1")
    assert result.exit_code == 0, result.output
    assert fake.calls == [("create", "c1", "/bun", "/r", {
        "pid_file": "/p", "console_socket": "/s", "no_pivot": True, "no_new_keyring": True,
        "preserve_fds": 2})]


def test_create_defaults_make_paths_absolute(fake: Fake, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("--root", "rel", "create", "-b", "bun", "--pid-file", "p.pid", "c1")
    assert result.exit_code == 0, result.output
    assert fake.calls == [("create", "c1", str(tmp_path / "bun"), str(tmp_path / "rel"), {
        "pid_file": str(tmp_path / "p.pid"), "console_socket": None, "no_pivot": False,
        "no_new_keyring": False, "preserve_fds": 0})]


def test_default_root_and_bundle(fake: Fake, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert invoke("create", "c1").exit_code == 0
    assert fake.calls[0][2:4] == (str(tmp_path), "/run/pyoci")


def test_preserve_fds_must_be_int(fake: Fake) -> None:
    result = invoke("create", "--preserve-fds", "x", "c1")
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1
    assert fake.calls == []


@pytest.mark.parametrize("cmd", ["create", "start", "state", "delete", "run"])
def test_exactly_one_id(fake: Fake, cmd: str) -> None:
    assert_one_line_error(invoke(cmd), f'pyoci: "{cmd}" requires exactly 1 argument(s)')
    assert_one_line_error(invoke(cmd, "a", "b"), f'pyoci: "{cmd}" requires exactly 1 argument(s)')
    assert fake.calls == []


def test_kill_arg_counts(fake: Fake) -> None:
    assert_one_line_error(invoke("kill"), 'pyoci: "kill" requires a minimum of 1 argument(s)')
    assert_one_line_error(invoke("kill", "a", "KILL", "x"),
                          'pyoci: "kill" requires a maximum of 2 argument(s)')


@pytest.mark.parametrize("cmd", ["list", "spec"])
def test_no_args_commands(fake: Fake, cmd: str) -> None:
    assert_one_line_error(invoke(cmd, "x"), f'pyoci: "{cmd}" requires exactly 0 argument(s)')


@pytest.mark.parametrize("cmd", ["create", "start", "state", "delete", "run", "kill"])
def test_invalid_id_checked_before_library(fake: Fake, cmd: str) -> None:
    assert_one_line_error(invoke(cmd, "../x"), "invalid container id format: ../x")
    assert fake.calls == []


def test_usage_errors_are_one_line_exit_1(fake: Fake) -> None:
    for args in (["--bogus"], ["state", "--bogus", "x"], ["--log-format=xml", "list"],
                 ["--rootless=maybe", "list"], ["nosuch"], ["list", "--format", "yaml"]):
        result = invoke(*args)
        assert result.exit_code == 1, args
        assert len(result.stderr.splitlines()) == 1, (args, result.stderr)


def test_global_options_stored(fake: Fake) -> None:
    seen: dict[str, Any] = {}

    def load(cid: str, root: str) -> Any:
        import click

        seen.update(vars(click.get_current_context().obj))
        raise ContainerNotFound(cid)

    sys.modules["pyoci.container"].Container.load = staticmethod(load)  # type: ignore[attr-defined]
    invoke("--systemd-cgroup", "--rootless=true", "--root=/x", "state", "c")
    assert seen["systemd_cgroup"] is True
    assert seen["rootless"] == "true"
    assert seen["root"] == "/x"


def test_state_prints_indented_json(fake: Fake) -> None:
    fake.existing["c1"] = state_of("c1")
    result = invoke("state", "c1")
    assert result.exit_code == 0
    assert result.stdout == json.dumps(state_of("c1"), indent=2) + "\n"


def test_missing_container_error(fake: Fake) -> None:
    assert_one_line_error(invoke("state", "nope"), "container does not exist")
    assert_one_line_error(invoke("delete", "nope"), "container does not exist")


def test_delete_force_missing_is_silent(fake: Fake) -> None:
    result = invoke("delete", "--force", "nope")
    assert (result.exit_code, result.output) == (0, "")
    result = invoke("delete", "-f", "nope")
    assert (result.exit_code, result.output) == (0, "")


def test_delete_force_other_errors_still_fail(fake: Fake) -> None:
    fake.raise_on_load = PyociError("boom")
    assert_one_line_error(invoke("delete", "-f", "c1"), "boom")


def test_delete_existing(fake: Fake) -> None:
    fake.existing["c1"] = state_of("c1")
    assert invoke("delete", "-f", "c1").exit_code == 0
    assert fake.calls[-1] == ("delete", "c1", True)


def test_start(fake: Fake) -> None:
    fake.existing["c1"] = state_of("c1")
    assert invoke("start", "c1").exit_code == 0
    assert fake.calls[-1] == ("start", "c1")


@pytest.mark.parametrize(
    ("args", "sig", "all_"),
    [([], signal.SIGTERM, False), (["KILL"], signal.SIGKILL, False),
     (["9"], 9, False), (["--all", "SIGRTMIN+3"], signal.SIGRTMIN + 3, True),
     (["-a"], signal.SIGTERM, True)],
)
def test_kill(fake: Fake, args: list[str], sig: int, all_: bool) -> None:
    fake.existing["c1"] = state_of("c1")
    opts = [a for a in args if a.startswith("-")]
    rest = [a for a in args if not a.startswith("-")]
    result = invoke("kill", *opts, "c1", *rest)
    assert result.exit_code == 0, result.output
    assert fake.calls[-1] == ("kill", "c1", sig, all_)


def test_kill_unknown_signal(fake: Fake) -> None:
    fake.existing["c1"] = state_of("c1")
    assert_one_line_error(invoke("kill", "c1", "FOO"), 'unknown signal "FOO"')


def test_run_exit_code_and_flags(fake: Fake) -> None:
    fake.run_code = 7
    result = invoke("run", "-d", "--keep", "--bundle=/b", "--preserve-fds", "1", "c1")
    assert result.exit_code == 7
    assert fake.calls == [("run", "c1", "/b", "/run/pyoci", {
        "detach": True, "keep": True, "no_subreaper": False, "pid_file": None,
        "console_socket": None, "no_pivot": False, "no_new_keyring": False,
        "preserve_fds": 1})]


def test_list_json_empty_is_null(fake: Fake) -> None:
    result = invoke("list", "--format=json")
    assert (result.exit_code, result.stdout) == (0, "null\n")


def test_list_json(fake: Fake) -> None:
    fake.existing = {"a": state_of("a"), "b": state_of("b", 0, "stopped")}
    result = invoke("list", "-f", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == [state_of("a"), state_of("b", 0, "stopped")]
    assert result.stdout.count("\n") == 1


def test_list_quiet(fake: Fake) -> None:
    fake.existing = {"a": state_of("a"), "b": state_of("b")}
    assert invoke("list", "-q").stdout == "a\nb\n"


def test_list_table(fake: Fake) -> None:
    fake.existing = {"a": state_of("a")}
    result = invoke("list")
    assert result.exit_code == 0
    assert result.stdout == (
        "ID          PID         STATUS      BUNDLE      CREATED                          OWNER\n"
        "a           42          running     /b/a        2026-01-02T03:04:05.123456789Z   \n"
    )


def test_list_table_empty_is_header_only(fake: Fake) -> None:
    assert invoke("list").stdout == (
        "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n")


def test_format_table_tabwriter_widths() -> None:
    rows = [["ID", "X"], ["a-very-long-container-id", "y"]]
    assert format_table(rows) == "ID" + " " * 25 + "X\na-very-long-container-id   y\n"


def test_unexpected_exception_is_one_line(fake: Fake) -> None:
    fake.raise_on_load = PermissionError(13, "Permission denied", "/run/pyoci/c1")
    result = invoke("state", "c1")
    assert result.exit_code == 1
    assert result.stderr == "[Errno 13] Permission denied: '/run/pyoci/c1'\n"
    assert "Traceback" not in result.output


def test_debug_shows_traceback(fake: Fake) -> None:
    fake.raise_on_load = RuntimeError("multi\nline")
    result = invoke("--debug", "state", "c1")
    assert result.exit_code == 1
    assert "Traceback" in result.stderr
    assert result.stderr.endswith("multi line\n")


def test_log_file_created_even_on_success(fake: Fake, tmp_path: Path) -> None:
    log = tmp_path / "log.json"
    result = invoke("--log", str(log), "--log-format", "json", "list")
    assert result.exit_code == 0
    assert log.read_text() == ""


def test_log_json_error_record(fake: Fake, tmp_path: Path) -> None:
    log = tmp_path / "log.json"
    log.write_text("")
    result = invoke(f"--log={log}", "--log-format=json", "state", "c1")
    assert_one_line_error(result, "container does not exist")
    content = log.read_text()
    assert re.fullmatch(
        r'\{"level":"error","msg":"container does not exist","time":"' + TIME + r'"\}\n', content)
    json.loads(content)  # podman parses the whole file as one object


def test_log_text_error_record(fake: Fake, tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    result = invoke("--log", str(log), "kill", "c1", "KILL")
    assert result.exit_code == 1
    assert re.fullmatch(
        r'time="' + TIME + r'" level=error msg="container does not exist"\n', log.read_text())


def test_log_records_usage_errors_too(fake: Fake, tmp_path: Path) -> None:
    log = tmp_path / "log.json"
    invoke("--log", str(log), "--log-format", "json", "state")
    record = json.loads(log.read_text())
    assert record["msg"] == 'pyoci: "state" requires exactly 1 argument(s)'


def test_log_appends(fake: Fake, tmp_path: Path) -> None:
    log = tmp_path / "log.json"
    log.write_text("old\n")
    invoke("--log", str(log), "--log-format", "json", "state", "c1")
    assert log.read_text().startswith("old\n{")


def test_library_warnings_go_to_log(fake: Fake, tmp_path: Path) -> None:
    import logging

    def load(cid: str, root: str) -> Any:
        logging.getLogger("pyoci.hooks").warning("poststart hook failed")
        raise ContainerNotFound(cid)

    sys.modules["pyoci.container"].Container.load = staticmethod(load)  # type: ignore[attr-defined]
    log = tmp_path / "log.json"
    invoke("--log", str(log), "--log-format", "json", "state", "c1")
    levels = [json.loads(line)["level"] for line in log.read_text().splitlines()]
    assert levels == ["warning", "error"]


def test_log_file_unopenable(fake: Fake, tmp_path: Path) -> None:
    result = invoke("--log", str(tmp_path / "no" / "dir" / "log"), "list")
    assert result.exit_code == 1
    assert len(result.stderr.splitlines()) == 1


def test_spec_writes_config(fake: Fake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyoci.spec

    seen: list[bool] = []

    def default_spec(rootless: bool = False) -> dict[str, Any]:
        seen.append(rootless)
        return {"ociVersion": "1.3.0", "process": {"args": ["sh"]}}

    monkeypatch.setattr(pyoci.spec, "default_spec", default_spec)
    result = invoke("spec", "--bundle", str(tmp_path), "--rootless")
    assert result.exit_code == 0, result.output
    assert seen == [True]
    assert (tmp_path / "config.json").read_text() == (
        '{\n\t"ociVersion": "1.3.0",\n\t"process": {\n\t\t"args": [\n\t\t\t"sh"\n\t\t]\n\t}\n}')
    assert_one_line_error(invoke("spec", f"--bundle={tmp_path}"),
                          f"File {tmp_path}/config.json exists. Remove it first")
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(invoke("spec"), "File config.json exists. Remove it first")


def test_version() -> None:
    for flag in ("--version", "-v"):
        result = invoke(flag)
        assert result.exit_code == 0
        lines = result.stdout.splitlines()
        assert lines[0] == "pyoci version 0.1.0"
        assert re.fullmatch(r"spec: \d+\.\d+\.\d+", lines[1])
        assert re.fullmatch(r"python: \d+\.\d+\.\d+", lines[2])


def test_help_and_bare_invocation() -> None:
    assert invoke("--help").exit_code == 0
    result = invoke()
    assert result.exit_code == 0
    assert "Usage:" in result.stdout


HOT_PATH_PROBE = """
import sys, types
from pyoci.errors import ContainerNotFound
class Container:
    @classmethod
    def load(cls, cid, root):
        raise ContainerNotFound(cid)
mod = types.ModuleType("pyoci.container")
mod.Container = Container
sys.modules["pyoci.container"] = mod
sys.argv = ["pyoci", "--root", sys.argv[1], sys.argv[2], "c1"]
try:
    from pyoci.cli import main
    main()
except SystemExit:
    pass
heavy = [m for m in ("jsonschema", "pyoci.config", "pyoci.spec", "seccomp", "pyseccomp",
                     "ctypes", "importlib.metadata") if m in sys.modules]
print(",".join(heavy))
"""


@pytest.mark.parametrize("cmd", ["state", "kill", "start", "delete"])
def test_hot_path_imports_stay_light(cmd: str, tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", HOT_PATH_PROBE, str(tmp_path), cmd],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert out.stdout.strip() == "", out.stdout


def test_python_dash_m(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "pyoci", "state"], capture_output=True, text=True)
    assert out.returncode == 1
    assert out.stderr == 'pyoci: "state" requires exactly 1 argument(s)\n'
