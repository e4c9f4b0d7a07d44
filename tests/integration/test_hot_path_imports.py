"""The hot paths stay lean: what `state`, `kill`, `list`, `run` and `create` import (issue 7).

Each command runs as a real process, on a real container, through the real entry point
(``pyoci.__main__.entry``, what the ``pyoci`` script and ``python -m pyoci`` run), under
``python -I -S -X importtime`` (as the front door runs Python: no site, so no .pth file's
imports) and with an atexit hook that writes ``sys.modules`` out. The
modules a command imported are those in sys.modules at its exit plus every module named
on an ``import time:`` line (which also covers the forked stage1 and init of a `run`).
A check on module sets, not on timings: the machine's load cannot make it flaky.

A module listed here is not wrong in itself; importing it on that path costs every call
(containerd and podman call `state` and `kill` many times per container). If one has to
come back, move the import to where it is needed, or change this list knowingly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import pytest

import pyoci as pyoci_package
from pyoci import code_bundle

pytestmark = pytest.mark.skipif(bool(os.environ.get("PYOCI_TEST_RUNTIME")),
                                reason="checks pyoci's own imports")

# Never imported by state, kill, start and list, without --log or --debug.
LIGHT_FORBIDDEN = ("jsonschema", "referencing", "pyoci.config", "pyoci.schema_fast",
                   "pyoci.init", "pyoci.seccomp", "pyseccomp", "seccomp", "prctl", "_prctl",
                   "ctypes", "subprocess", "logging", "difflib", "shutil")
# Never imported by run and create of a valid config (short options included), nor by
# exec. click: their plain forms are parsed by pyoci.cli_fast; ast and dis: what running
# inspect imports; subprocess: hooks import it only to run one; locale: gettext and
# subprocess; logging: the library imports it only to emit a record (pyoci.logger);
# traceback: init describes its own failure without it.
# (python-prctl's _prctl is imported, by the container's process only: it applies the
# capabilities; its prctl wrapper module by none.)
CREATE_FORBIDDEN = ("jsonschema", "referencing", "difflib", "shutil", "ast", "dis",
                    "subprocess", "locale", "logging", "traceback", "click", "prctl")
# Nor these, by run, create and exec, in any of their processes (the runtime, stage1,
# init up to its execve, exec's process): each costs every run a few ms (signal: enum,
# functools, collections; json and pathlib: re; socket: selectors, array). The C cores
# stand in: _signal, _socket (pyoci.unixsock), _json (pyoci.jsonio).
STDLIB_FORBIDDEN = (
    "signal", "enum", "functools", "collections", "operator", "re", "json", "socket",
    "selectors", "typing", "pathlib", "fnmatch", "urllib", "ipaddress", "ntpath", "datetime",
    "contextlib", "warnings", "uuid", "platform", "dataclasses", "string", "array",
    "tempfile", "random")
# Nor these, for a plain config (no seccomp profile, no LSM label, no sysctl, no terminal):
# each is imported, before fork, only by a config that asks for it (issue 7).
PLAIN_FORBIDDEN = ("pyoci.seccomp", "pyoci.seccomp_cache", "pyoci.lsm", "pyoci.procfs",
                   "pyoci.tty", "termios")
# sys.path for a probe run with -I -S: the checkout, then this interpreter's (site-packages)
PROBE_PATH = ":".join([os.path.dirname(os.path.dirname(pyoci_package.__file__)),
                       *(p for p in sys.path if p)])

PROBE = """
import sys
out = sys.argv.pop(1)
sys.path[:0] = sys.argv.pop(1).split(":")
import atexit
def dump():
    with open(out, "w") as f:
        f.write("\\n".join(sorted(sys.modules)))
    with open(out + ".bundled", "w") as f:
        f.write("\\n".join(sorted(n for n, m in list(sys.modules.items())
                                  if type(getattr(m, "__loader__", None)).__name__
                                  == "BundledLoader")))
atexit.register(dump)
sys.argv[0] = "pyoci"
from pyoci.__main__ import entry
entry()
"""


def imported(pyoci, *args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run ``pyoci --root ROOT *args`` with the probe: its result and the modules it imported."""
    res, _, modules, _ = probe(pyoci, *args)
    return res, modules


def probe(pyoci, *args: str
          ) -> tuple[subprocess.CompletedProcess, set[str], set[str], set[str]]:
    """:func:`imported`, with the modules of the runtime process alone (its sys.modules at
    exit) apart from those of every process (the forked stage1 and init included), and
    those of the runtime it loaded from the code bundle (pyoci.code_bundle)."""
    cmd = pyoci.command(*args)  # records a create/run id for the leak check
    cli_args = cmd[cmd.index("--root"):]
    with tempfile.TemporaryDirectory() as tmp:
        dump = os.path.join(tmp, "modules")
        out, err = os.path.join(tmp, "out"), os.path.join(tmp, "err")
        with open(out, "wb") as fo, open(err, "wb") as fe:
            proc = subprocess.run([sys.executable, "-I", "-S", "-X", "importtime", "-c",
                                   PROBE, dump, PROBE_PATH, *cli_args],
                                  stdin=subprocess.DEVNULL, stdout=fo, stderr=fe,
                                  timeout=60)
        with open(out) as f:
            stdout = f.read()
        with open(err) as f:
            lines = f.read().splitlines()
        with open(dump) as f:  # missing: the atexit handlers did not run
            runtime = set(f.read().split())
        with open(dump + ".bundled") as f:
            bundled = set(f.read().split())
    stderr = "\n".join(ln for ln in lines if not ln.startswith("import time:"))
    modules = set(runtime)
    for ln in lines:
        if ln.startswith("import time:") and "imported package" not in ln:
            modules.add(ln.rsplit("|", 1)[1].strip())
    return (subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr), runtime,
            modules, bundled)


def offending(modules: set[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(m for m in modules
                  if any(m == name or m.startswith(name + ".") for name in forbidden))


@pytest.mark.parametrize("command", ["state", "kill", "list", "start"])
def test_state_kill_list_start_stay_light(pyoci, new_bundle, cid, command):
    bundle = new_bundle(["sleep", "100"])
    if command == "start":
        pyoci("create", "--bundle", bundle, cid, check=True)
    else:
        pyoci("run", "--detach", "--bundle", bundle, cid, check=True)
    try:
        args = {"state": ("state", cid), "kill": ("kill", cid, "KILL"), "list": ("list",),
                "start": ("start", cid)}
        res, modules = imported(pyoci, *args[command])
        assert res.returncode == 0, res.stderr
        if command == "state":
            assert json.loads(res.stdout)["status"] == "running"
        if command == "list":
            assert cid in res.stdout
        if command == "start":
            assert json.loads(pyoci("state", cid, check=True).stdout)["status"] == "running"
        assert {"pyoci.cli", "pyoci.state", "pyoci.container.container"} <= modules
        assert offending(modules, LIGHT_FORBIDDEN) == []
    finally:
        pyoci("delete", "--force", cid, check=True)


def test_run_of_a_valid_config_skips_jsonschema(pyoci, bundle, cid):
    res, modules = imported(pyoci, "run", "-b", bundle, cid)
    assert res.returncode == 0, res.stderr
    # it did the work: the fast schema check, create, init, delete
    assert {"pyoci.schema_fast", "pyoci.container.create", "pyoci.init",
            "pyoci.container.delete"} <= modules
    assert offending(modules, CREATE_FORBIDDEN + STDLIB_FORBIDDEN + PLAIN_FORBIDDEN) == []
    assert pyoci("state", cid).returncode != 0  # deleted


def test_delete_of_a_created_container_skips_click(pyoci, bundle, cid):
    """The front door leaves `delete` of a created container to Python: parsed by
    cli_fast, without click (or anything else `state` and `kill` never import)."""
    pyoci("create", "--bundle", bundle, cid, check=True)
    res, modules = imported(pyoci, "delete", "--force", cid)
    assert res.returncode == 0, res.stderr
    assert {"pyoci.cli_fast", "pyoci.container.delete"} <= modules
    assert offending(modules, LIGHT_FORBIDDEN + ("click",)) == []
    assert pyoci("state", cid).returncode != 0  # deleted


# The container side: imported by the runtime's forked child (stage1, whence init), never
# by the runtime itself (pyoci.container.create.become_stage1).
CONTAINER_SIDE = ("pyoci.init", "pyoci.rootfs", "pyoci.devices", "_prctl")


def test_run_leaves_the_container_side_to_its_children(pyoci, bundle, cid):
    res, runtime, modules, _ = probe(pyoci, "run", "-b", bundle, cid)
    assert res.returncode == 0, res.stderr
    assert offending(modules, CONTAINER_SIDE) == sorted(CONTAINER_SIDE)  # the children's
    assert offending(runtime, CONTAINER_SIDE) == []
    assert {"pyoci.container.create", "pyoci.container.delete"} <= runtime


def test_run_takes_pyoci_from_the_code_bundle(pyoci, bundle, cid):
    """Every pyoci module a `run` imports comes from the bundle (built here, as .ci/setup
    and .ci/test build it), but code_bundle itself, the package it is in and the
    compiled cffi module."""
    code_bundle.build(os.path.dirname(pyoci_package.__file__))
    res, runtime, _, bundled = probe(pyoci, "run", "-b", bundle, cid)
    assert res.returncode == 0, res.stderr
    ours = {m for m in runtime if m == "pyoci" or m.startswith("pyoci.")}
    assert ours - bundled == {"pyoci", "pyoci.__main__", "pyoci.code_bundle",
                              "pyoci._native", "pyoci._native.lib"}
    assert "pyoci.container.create" in bundled


def test_create_of_a_valid_config_skips_jsonschema(pyoci, bundle, cid):
    res, modules = imported(pyoci, "create", "--bundle", bundle, cid)
    try:
        assert res.returncode == 0, res.stderr
        assert {"pyoci.schema_fast", "pyoci.config"} <= modules
        assert offending(modules, CREATE_FORBIDDEN + STDLIB_FORBIDDEN + PLAIN_FORBIDDEN) == []
    finally:
        pyoci("delete", "--force", cid, check=True)


def test_exec_stays_light(pyoci, new_bundle, cid):
    pyoci("run", "--detach", "--bundle", new_bundle(["sleep", "100"]), cid, check=True)
    try:
        res, modules = imported(pyoci, "exec", cid, "true")
        assert res.returncode == 0, res.stderr
        assert {"pyoci.container.exec", "pyoci.exec_init"} <= modules
        assert offending(modules, CREATE_FORBIDDEN + STDLIB_FORBIDDEN + PLAIN_FORBIDDEN
                         + ("pyoci.config",)) == []
    finally:
        pyoci("delete", "--force", cid, check=True)


# The library called directly (no CLI): not even click, nor inspect.
LIB_FORBIDDEN = CREATE_FORBIDDEN + STDLIB_FORBIDDEN + PLAIN_FORBIDDEN + ("inspect", "click")

# Called as the front door calls Python (-I -S), on the library directly (not the CLI).
LIB_PROBE = """
import sys
out, path, op, root, cid = sys.argv[1:6]
sys.path[:0] = path.split(":")
import atexit
def dump():
    with open(out, "w") as f:
        f.write("\\n".join(sorted(sys.modules)))
atexit.register(dump)
from pyoci.container import Container
options = dict(pid_file=None, console_socket=None, no_pivot=False, no_new_keyring=False,
               preserve_fds=0)
if op == "run":
    sys.exit(Container.run(cid, sys.argv[6], root, detach=False, keep=False,
                           no_subreaper=False, **options))
if op == "create":
    Container.create(cid, sys.argv[6], root, **options)
    sys.exit(0)
sys.exit(Container.load(cid, root).exec(sys.argv[6:]))
"""


def library_imports(op: str, root: str, cid: str, *args: str) -> tuple[int, set[str]]:
    """Run the library's ``op`` (run, create, exec) as a process of its own: its exit
    status and every module it and its forked children imported."""
    with tempfile.TemporaryDirectory() as tmp:
        dump, err = os.path.join(tmp, "modules"), os.path.join(tmp, "err")
        with open(err, "wb") as fe:  # a file: a created container's init holds it open
            proc = subprocess.run([sys.executable, "-I", "-S", "-X", "importtime", "-c",
                                   LIB_PROBE, dump, PROBE_PATH, op, root, cid, *args],
                                  stdin=subprocess.DEVNULL, stdout=fe, stderr=fe, timeout=60)
        with open(err) as f:
            lines = f.read().splitlines()
        with open(dump) as f:
            modules = set(f.read().split())
    for ln in lines:
        if ln.startswith("import time:") and "imported package" not in ln:
            modules.add(ln.rsplit("|", 1)[1].strip())
    errors = [ln for ln in lines if not ln.startswith("import time:")]
    assert proc.returncode == 0, "\n".join(errors)
    return proc.returncode, modules


def test_library_run_create_and_exec_stay_lean(pyoci, new_bundle, cid):
    """run (foreground, to the container's exit and delete), create, and exec into a
    running container: none imports a module of LIB_FORBIDDEN, in any of its processes."""
    _, modules = library_imports("run", pyoci.root, cid, new_bundle(["true"]))
    assert {"pyoci.init", "pyoci.container.delete", "pyoci.schema_fast"} <= modules
    assert offending(modules, LIB_FORBIDDEN) == []
    assert pyoci("state", cid).returncode != 0  # deleted

    pyoci.command("create", cid)  # for the leak check
    _, modules = library_imports("create", pyoci.root, cid, new_bundle(["sleep", "100"]))
    try:
        assert offending(modules, LIB_FORBIDDEN) == []
        pyoci("start", cid, check=True)
        _, modules = library_imports("exec", pyoci.root, cid, "true")
        assert {"pyoci.container.exec", "pyoci.exec_init"} <= modules
        assert offending(modules, LIB_FORBIDDEN) == []
    finally:
        pyoci("delete", "--force", cid, check=True)


def test_inspect_is_deferred_not_lost(tmp_path):
    """The deferred inspect runs on first use: click's help output (cleandoc) still works."""
    code = ("import sys; sys.argv = ['pyoci', 'run', '--help']\n"
            "from pyoci.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "import inspect\n"
            "print(inspect.cleandoc('  a\\n    b'), 'ast' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "--no-subreaper" in out.stdout
    assert out.stdout.rstrip().endswith("a\nb True")


def test_option_help_needs_no_cleandoc():
    """Options keep their help as written (no inspect.cleandoc): it must already be clean."""
    import inspect

    from pyoci.cli import cli

    ctx = cli.make_context("pyoci", ["state", "x"], resilient_parsing=True)
    commands = [cli] + [cli.get_command(ctx, name) for name in cli.list_commands(ctx)]
    helps = [p.help for c in commands for p in c.get_params(ctx) if getattr(p, "help", None)]
    assert len(helps) > 70
    assert [h for h in helps if inspect.cleandoc(h) != h] == []


def test_an_invalid_config_is_still_worded_by_jsonschema(pyoci, new_bundle, cid,
                                                         base_config):
    """The fast path buys nothing with correctness: a bad config's error names the field."""
    cfg = base_config(["true"])
    cfg["process"]["user"]["uid"] = "zero"
    res, modules = imported(pyoci, "run", "--bundle", new_bundle(config=cfg), cid)
    assert res.returncode == 1
    assert "$.process.user.uid" in res.stderr.splitlines()[-1]
    assert "jsonschema" in modules


LOGS_A_WARNING = """
import sys, types
class Container:
    @classmethod
    def load(cls, cid, root):
        return cls()
    def start(self):
        import logging  # the way library modules log: a logging of their own
        logging.getLogger("pyoci").warning("cannot remove a cgroup")
mod = types.ModuleType("pyoci.container")
mod.Container = Container
sys.modules["pyoci.container"] = mod
sys.argv = ["pyoci", "--root", sys.argv[1], "start", "c1"]
from pyoci.__main__ import entry
entry()
"""


def test_a_record_still_finds_the_handler(tmp_path):
    """Without --log, logging is set up when library code imports it: same stderr line."""
    out = subprocess.run([sys.executable, "-c", LOGS_A_WARNING, str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stderr.startswith('time="'), out.stderr
    assert out.stderr.rstrip().endswith('level=warning msg="cannot remove a cgroup"')
