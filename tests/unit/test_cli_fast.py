"""pyoci.cli_fast, the click-free parser of plain `create`, `run`, `exec`, `pause`,
`resume` and `delete`, against the click CLI.

Where the fast parser answers, it must make the very library call click's CLI makes, with
the same exit code, stderr and --log record; where it is unsure, it must answer None (and
leave the command to click). Checked on chosen argvs and on random ones.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from pyoci import cli_fast
from pyoci.cli import cli
from pyoci.errors import InvalidID
from tests.unit.conftest import Fake


def both(fake: Fake, capsys: pytest.CaptureFixture[str], argv: list[str]
         ) -> tuple[tuple, tuple]:
    """(calls, exit code, stderr) of the fast path, then of click's, for the same argv."""
    fake.calls.clear()
    inv = cli_fast.parse(argv)
    assert inv is not None, argv
    code = cli_fast.invoke(inv)
    fast = (list(fake.calls), code, capsys.readouterr().err)
    fake.calls.clear()
    result = CliRunner().invoke(cli, argv)
    return fast, (list(fake.calls), result.exit_code, result.stderr)


PLAIN = [
    ["create", "c1"],
    ["run", "c1"],
    ["--root", "/r", "create", "--bundle", "/b", "c1"],
    ["--root=/r", "--log=/dev/null", "--log-format=json", "create", "--bundle=/b",
     "--pid-file=/p", "--console-socket=/s", "--no-pivot", "--no-new-keyring",
     "--preserve-fds=2", "c1"],
    ["--log", "/dev/null", "--log-format", "text", "--rootless", "false", "create", "-b",
     "rel/bundle", "--pid-file", "rel.pid", "c1"],
    ["create", "c1", "--bundle", "/b"],  # options after the id
    ["create", "--bundle", "/a", "--bundle", "/b", "c1"],  # the last one wins
    ["create", "--pid-file=", "--bundle=", "c1"],  # empty values
    ["run", "-d", "--keep", "--no-subreaper", "-b", "/b", "--preserve-fds", "0", "c1"],
    ["--root", "/r", "run", "--detach", "--console-socket", "/s", "c.1_x+y-z"],
    ["create", "bad/id"],  # an id the library must never see: the same error
    ["create", ".."],
    ["create", "fails"],  # a library failure: one line, exit 1
    ["run", "fails"],
    ["exec", "c1", "true"],
    ["exec", "c1", "sh", "-c", "--tty", "x"],  # after the id: the process's arguments
    ["--root", "/r", "exec", "--process", "/p.json", "--detach", "--pid-file", "rel.pid",
     "--console-socket=/s", "-t", "c1"],
    ["exec", "-p", "p.json", "-d", "-e", "A=1", "--env=B=2", "-u", "1:2", "--cwd", "/w",
     "--no-new-privs", "--ignore-paused", "--preserve-fds", "3", "c1", "ls", "-l"],
    ["exec", "c1"],  # no process: the library's error
    ["exec", "bad/id", "true"],  # exec failed: ..., 255
    ["exec", "fails", "true"],
    ["pause", "c1"],
    ["--root", "/r", "resume", "c1"],
    ["pause", "nosuch"],  # container does not exist
    ["resume", "bad/id"],
    ["delete", "c1"],
    ["--root", "/r", "delete", "--force", "c1"],
    ["delete", "c1", "-f"],
    ["delete", "-f", "-f", "c1"],
    ["delete", "nosuch"],  # container does not exist
    ["delete", "--force", "nosuch"],  # with --force: no error
    ["delete", "bad/id"],
]


@pytest.mark.parametrize("argv", PLAIN, ids=" ".join)
def test_same_call_code_and_error_as_click(fake: Fake, capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           argv: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    fake.run_code = 3
    fake.existing["c1"] = {}
    fast, slow = both(fake, capsys, argv)
    assert fast == slow


@pytest.mark.parametrize("argv", [
    [], ["create"], ["create", "a", "b"], ["state", "c1"], ["--help"], ["create", "--help"],
    ["create", "-h", "c1"], ["-v"], ["--version"], ["--debug", "create", "c1"],
    ["--systemd-cgroup", "create", "c1"], ["create", "--bundle"], ["create", "c1", "-b"],
    ["create", "-bX", "c1"], ["create", "-b=X", "c1"], ["create", "--no-pivot=1", "c1"],
    ["create", "--preserve-fds", "x", "c1"], ["create", "--preserve-fds", "-1", "c1"],
    ["create", "--preserve-fds", "\u0663", "c1"], ["create", "--preserve-fds", " 1", "c1"],
    ["create", "--detach", "c1"], ["create", "--", "c1"], ["create", "-", "c1"],
    ["--log-format", "xml", "create", "c1"], ["--rootless", "yes", "create", "c1"],
    ["--root", "/r", "--bogus", "create", "c1"], ["create", "--pid-file", "-x", "c1"],
    ["run", "--root", "/r", "c1"], ["--root"], ["create", "--bundle", "--keep", "c1"],
    ["exec"], ["exec", "--cap", "CAP_KILL", "c1", "true"], ["exec", "-g", "1", "c1", "true"],
    ["exec", "--", "c1", "true"], ["exec", "--cgroup", "x", "c1", "true"],
    ["exec", "-e", "--tty", "c1", "true"], ["exec", "--keep", "c1", "true"],
    ["pause"], ["pause", "a", "b"], ["resume", "--force", "c1"], ["pause", "-h", "c1"],
    ["delete"], ["delete", "a", "b"], ["delete", "--all", "c1"], ["delete", "-fh", "c1"],
    ["delete", "--force=1", "c1"],
])
def test_left_to_click(argv: list[str]) -> None:
    assert cli_fast.parse(argv) is None


def test_unprivileged_default_root_left_to_click(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert cli_fast.parse(["create", "c1"]) is None
    assert cli_fast.parse(["--root", "/r", "create", "c1"]) is not None


@pytest.mark.parametrize("command", ["create", "run"])
def test_log_record_as_click(fake: Fake, capsys: pytest.CaptureFixture[str], tmp_path: Path,
                             command: str) -> None:
    records = []
    for n in range(2):
        log = tmp_path / f"log{n}.json"
        argv = ["--log", str(log), "--log-format", "json", command, "fails"]
        if n == 0:
            assert cli_fast.main(argv) == 1
        else:
            assert CliRunner().invoke(cli, argv).exit_code == 1
        records.append(log.read_text().split('"time"')[0])
    assert records[0] == records[1] == f'{{"level":"error","msg":"{command} failed: see above",'


def test_log_file_created_on_success(fake: Fake, tmp_path: Path) -> None:
    log = tmp_path / "log"
    assert cli_fast.main(["--log", str(log), "create", "c1"]) == 0
    assert log.read_text() == ""


TOKENS = ["create", "run", "exec", "c1", "c2", "--root", "/r", "--log", "--log-format", "json",
          "--rootless", "true", "--bundle", "-b", "/b", "rel", "--pid-file", "--console-socket",
          "--no-pivot", "--no-new-keyring", "--preserve-fds", "2", "-d", "--detach", "--keep",
          "--no-subreaper", "--bundle=/x", "--preserve-fds=1", "--root=/q", "-h", "", "bad/id",
          "--debug", "state", "-t", "--tty", "-e", "A=1", "--cwd", "-p", "--process",
          "--ignore-paused", "delete", "--force", "-f"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=9))
def test_random_argv_fast_or_left_to_click(argv: list[str]) -> None:
    inv = cli_fast.parse(argv)
    if inv is None:
        return
    # whatever it accepted, click accepts and parses to the same values
    calls = []

    def record(cid: str, bundle: str, root: str, **kw: object) -> int:
        calls.append((cid, bundle, root, kw))
        return 0

    def record_exec(cid: str, root: str, args: list[str], **kw: object) -> int:
        calls.append((cid, root, args, kw))
        return 0

    def record_delete(cid: str, root: str, force: bool) -> None:
        calls.append((cid, root, force))

    from unittest import mock

    with mock.patch("pyoci.container.Container.create", record), \
            mock.patch("pyoci.container.Container.run", record), \
            mock.patch("pyoci.container.exec.exec_process", record_exec), \
            mock.patch("pyoci.cli.delete_container", record_delete), \
            mock.patch("pyoci.cli.apply_globals", lambda obj: None):  # no --log file
        result = CliRunner().invoke(cli, argv)
    opts = dict(inv.options)
    if inv.command == "delete":
        expected = (inv.args[0], inv.obj.root, opts["force"])
        fails = 1
    elif inv.command == "exec":
        pid_file = opts.pop("pid_file")
        opts["pid_file"] = os.path.abspath(pid_file) if pid_file else None  # type: ignore[arg-type]
        expected: tuple = (inv.args[0], inv.obj.root, inv.args[1:], opts)
        fails = 255
    else:
        bundle = os.path.abspath(opts.pop("bundle"))  # type: ignore[call-overload]
        run_opts = {k: opts.pop(k) for k in ("detach", "keep", "no_subreaper") if k in opts}
        from pyoci.cli_common import create_options

        expected = (inv.args[0], bundle, inv.obj.root, {**run_opts, **create_options(**opts)})
        fails = 1
    from pyoci.validate import check_container_id

    try:
        check_container_id(inv.args[0])
    except InvalidID:
        assert result.exit_code == fails and calls == []
    else:
        assert result.exit_code == 0, result.output
        assert calls == [expected]
