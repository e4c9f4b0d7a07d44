"""The C front door (csrc/pyoci_main.c, the installed `pyoci`) against the Python CLI.

The front door does the happy path of `state`, `kill`, `start`, `delete` and `list` itself and
execs the Python CLI for everything else. Each test runs the same command through the
installed executable and through ``python -m pyoci`` on real containers and compares
stdout, stderr and the exit code byte for byte; `kill`/`start`/`delete` change the
container, so those run on two containers made alike (ids replaced before comparing).
One test checks, with strace, that the native paths never start an interpreter.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

INSTALLED = os.path.join(os.path.dirname(sys.executable), "pyoci")  # as conftest's RUNTIME
PYTHON_RUNTIME = [sys.executable, "-m", "pyoci"]

pytestmark = pytest.mark.skipif(bool(os.environ.get("PYOCI_TEST_RUNTIME")),
                                reason="compares pyoci's two entry points")

SLEEP = ["sleep", "1000"]


@pytest.fixture(autouse=True)
def _installed():
    with open(INSTALLED, "rb") as f:
        assert f.read(4) == b"\x7fELF", f"{INSTALLED} is not the C front door"


def run(cmd: list[str], cwd: str | None = None) -> tuple[int, bytes, bytes]:
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=60, cwd=cwd)
    return p.returncode, p.stdout, p.stderr


def both(root: str, *args: str, cwd: str | None = None) -> tuple[tuple, tuple]:
    """The same command through the executable and through python -m pyoci."""
    return (run([INSTALLED, "--root", root, *args], cwd),
            run([*PYTHON_RUNTIME, "--root", root, *args], cwd))


def same(root: str, *args: str) -> tuple[int, bytes, bytes]:
    native, python = both(root, *args)
    assert native == python, (args, native, python)
    return native


def twin(pyoci, a: str, b: str, *args: str) -> tuple[int, bytes, bytes]:
    """``args`` (with {id}) on container a through the executable and on b through Python:
    the same result, ids aside."""
    native = run([INSTALLED, "--root", pyoci.root, *[x.format(id=a) for x in args]])
    python = run([*PYTHON_RUNTIME, "--root", pyoci.root, *[x.format(id=b) for x in args]])
    python = (python[0], python[1].replace(b.encode(), a.encode()),
              python[2].replace(b.encode(), a.encode()))
    assert native == python, (args, native, python)
    return native


def status(pyoci, cid: str) -> str:
    return json.loads(pyoci("state", cid, check=True).stdout)["status"]


def wait_status(pyoci, cid: str, want: str) -> None:
    deadline = time.monotonic() + 10
    while status(pyoci, cid) != want:
        assert time.monotonic() < deadline, f"{cid} never became {want}"
        time.sleep(0.05)


def create(pyoci, bundle: str, cid: str) -> None:
    pyoci("create", "--bundle", bundle, cid, check=True)


def test_state_in_every_status(pyoci, new_bundle, cid):
    bundle = new_bundle(SLEEP)
    create(pyoci, bundle, cid)
    assert b'"status": "created"' in same(pyoci.root, "state", cid)[1]
    pyoci("start", cid, check=True)
    assert b'"status": "running"' in same(pyoci.root, "state", cid)[1]
    pyoci("pause", cid, check=True)
    assert b'"status": "paused"' in same(pyoci.root, "state", cid)[1]
    pyoci("resume", cid, check=True)
    pyoci("kill", cid, "KILL", check=True)
    wait_status(pyoci, cid, "stopped")
    code, out, _ = same(pyoci.root, "state", cid)
    assert code == 0 and b'"pid": 0' in out
    pyoci("delete", cid, check=True)


def test_state_annotations(pyoci, new_bundle, cid, base_config):
    cfg = base_config(SLEEP)
    cfg["annotations"] = {"org.example.text": "caf\u00e9 \u65e5\u672c \U0001f600 \"q\" \\ \t/",
                          "org.example.empty": "", "a": "b"}
    create(pyoci, new_bundle(config=cfg), cid)
    code, out, _ = same(pyoci.root, "state", cid)
    assert code == 0 and json.loads(out)["annotations"] == cfg["annotations"]
    pyoci("delete", "--force", cid, check=True)


def test_state_errors_and_options(pyoci, bundle, cid, tmp_path):
    create(pyoci, bundle, cid)
    root = pyoci.root
    for args in (["state"], ["state", cid, cid], ["state", "no-such"], ["state", "a/b"],
                 ["state", "--bogus", cid], ["state", "-h"], ["--bogus", "state", cid],
                 ["--rootless", "maybe", "state", cid], ["--log-format", "yaml", "state", cid],
                 ["--systemd-cgroup", "--rootless=true", "state", cid], ["nope", cid],
                 ["state", "", ], ["state", "..", ], ["--", "state", cid], ["list"]):
        same(root, *args)
    # --root=DIR, and a --root given twice (the last one counts)
    native = run([INSTALLED, f"--root={root}", "state", cid])
    assert native == run([*PYTHON_RUNTIME, f"--root={root}", "state", cid])
    assert native[0] == 0
    native = run([INSTALLED, "--root", "/nonexistent", "--root", root, "state", cid])
    assert native == run([*PYTHON_RUNTIME, "--root", "/nonexistent", "--root", root,
                          "state", cid])
    # --log: the file is made (as runc does) and stays empty on success
    logs = [tmp_path / "native.log", tmp_path / "python.log"]
    native = run([INSTALLED, "--root", root, "--log", str(logs[0]), "--log-format", "json",
                  "state", cid])
    python = run([*PYTHON_RUNTIME, "--root", root, "--log", str(logs[1]), "--log-format",
                  "json", "state", cid])
    assert native == python and native[0] == 0
    assert logs[0].read_bytes() == logs[1].read_bytes() == b""
    # a root given relatively
    native, python = both(os.path.relpath(root, "/tmp"), "state", cid, cwd="/tmp")
    assert native == python and native[0] == 0
    pyoci("delete", cid, check=True)


def test_state_corrupt(pyoci, bundle, cid):
    create(pyoci, bundle, cid)
    path = os.path.join(pyoci.root, cid, "state.json")
    with open(path, "rb") as f:
        good = f.read()
    for bad in (b"", b"{", b"[]", good + b"x", good.replace(b'"pid"', b'"pid_"'),
                good.replace(b'"bundle": "', b'"bundle": "\\u0041')):
        with open(path, "wb") as f:
            f.write(bad)
        same(pyoci.root, "state", cid)
    with open(path, "wb") as f:
        f.write(good)
    pyoci("delete", "--force", cid, check=True)


def test_kill_signal_spellings(pyoci, new_bundle, cid):
    # the container's init is PID 1 of its namespace, with no handlers: it ignores these
    create(pyoci, new_bundle(SLEEP), cid)
    pyoci("start", cid, check=True)
    for sig in ("", "USR1", "SIGUSR1", "usr1", "SigUsr1", "10", " 10 ", "0", "RTMIN+3",
                "sigrtmax-2", "SIGRTMIN", "WINCH", "CHLD", "CLD",
                "\u017figusr1"):  # str.upper() makes it SIGUSR1: left to Python
        assert same(pyoci.root, "kill", cid, sig) == (0, b"", b""), sig
    for sig in ("FOO", "SIG", "65", "1000", "RTMIN+31", "RTMAX-40", "RTMIN+", "-9",
                "9x", " ", "SIGUSR1 x"):
        code, _, err = same(pyoci.root, "kill", cid, sig)
        assert code != 0 and err, sig
    for args in (["kill"], ["kill", cid, "USR1", "x"], ["kill", "--all", cid, "USR1"],
                 ["kill", "-a", cid, "USR1"], ["kill", "no-such", "USR1"],
                 ["kill", "no-such", "FOO"]):
        same(pyoci.root, *args)
    assert status(pyoci, cid) == "running"
    assert run([INSTALLED, "--root", pyoci.root, "kill", cid, "9"]) == (0, b"", b"")
    wait_status(pyoci, cid, "stopped")
    code, _, err = same(pyoci.root, "kill", cid, "KILL")
    assert code == 1 and err == b"container not running\n"
    pyoci("delete", cid, check=True)


def test_kill_created_and_paused(pyoci, new_bundle, cid):
    a, b = cid, f"{cid}-b"
    bundle = new_bundle(SLEEP)
    for c in (a, b):
        create(pyoci, bundle, c)
    assert twin(pyoci, a, b, "kill", "{id}", "KILL") == (0, b"", b"")
    for c in (a, b):
        wait_status(pyoci, c, "stopped")
        pyoci("delete", c, check=True)
    for c in (a, b):
        create(pyoci, bundle, c)
        pyoci("start", c, check=True)
        pyoci("pause", c, check=True)
    assert twin(pyoci, a, b, "kill", "{id}", "TERM") == (0, b"", b"")
    for c in (a, b):
        pyoci("delete", "--force", c, check=True)


def test_start(pyoci, new_bundle, cid):
    a, b = cid, f"{cid}-b"
    bundle = new_bundle(SLEEP)
    for c in (a, b):
        create(pyoci, bundle, c)
    assert twin(pyoci, a, b, "start", "{id}") == (0, b"", b"")
    for c in (a, b):
        assert status(pyoci, c) == "running"
    code, _, err = twin(pyoci, a, b, "start", "{id}")
    assert code == 1 and err == b"cannot start an already running container\n"
    for c in (a, b):
        pyoci("kill", c, "KILL", check=True)
        wait_status(pyoci, c, "stopped")
    code, _, err = twin(pyoci, a, b, "start", "{id}")
    assert code == 1 and err == b"cannot start a container that has stopped\n"
    for c in (a, b):
        pyoci("delete", c, check=True)
    same(pyoci.root, "start", "no-such")


def test_start_poststart_hook(pyoci, new_bundle, cid, tmp_path, base_config):
    a, b = cid, f"{cid}-b"
    marks = {}
    for c in (a, b):
        marks[c] = tmp_path / f"{c}.mark"
        cfg = base_config(SLEEP)
        cfg["hooks"] = {"poststart": [{"path": "/bin/sh",
                                       "args": ["sh", "-c", f"cat > {marks[c]}"]}]}
        create(pyoci, new_bundle(config=cfg), c)
    assert twin(pyoci, a, b, "start", "{id}") == (0, b"", b"")
    for c in (a, b):
        assert json.loads(marks[c].read_text())["status"] == "running"
        pyoci("delete", "--force", c, check=True)


@pytest.mark.parametrize("case", ["not-executable", "directory"])
def test_start_exec_fails(pyoci, new_bundle, cid, case):
    a, b = cid, f"{cid}-b"
    bundle = new_bundle(["/target"])
    target = os.path.join(bundle, "rootfs", "target")
    if case == "directory":
        os.mkdir(target)
    else:
        with open(target, "w") as f:
            f.write("#!/bin/sh\n")
        os.chmod(target, 0o644)
    for c in (a, b):
        create(pyoci, bundle, c)
    code, _, err = twin(pyoci, a, b, "start", "{id}")
    assert code == 1 and err.count(b"\n") == 1, err
    for c in (a, b):
        assert status(pyoci, c) == "stopped"
        pyoci("delete", c, check=True)


def test_exec_target_missing(pyoci, new_bundle, cid):
    """A program that is not there fails create already (exec: ... stat ...)."""
    a, b = cid, f"{cid}-b"
    bundle = new_bundle(["/missing"])
    code, _, err = twin(pyoci, a, b, "create", "--bundle", bundle, "{id}")
    assert code == 1 and b"/missing" in err
    assert os.listdir(pyoci.root) == []


def test_native_paths_start_no_interpreter(pyoci, new_bundle, cid, tmp_path):
    """state, kill, start, delete and list through the executable: one execve (itself), no
    Python."""
    if shutil.which("strace") is None:
        pytest.skip("strace not installed")
    create(pyoci, new_bundle(SLEEP), cid)

    def execs(*args: str) -> list[str]:
        trace = tmp_path / "trace"
        p = subprocess.run(["strace", "-f", "-qq", "-e", "trace=execve", "-o", str(trace),
                            INSTALLED, "--root", pyoci.root, *args],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        assert p.returncode == 0, p
        return [line for line in trace.read_text().splitlines() if "execve(" in line]

    for args in (["state", cid], ["start", cid], ["state", cid], ["kill", cid, "USR1"],
                 ["kill", cid, "SIGUSR2"], ["kill", cid]):
        calls = execs(*args)
        assert len(calls) == 1 and INSTALLED in calls[0], (args, calls)
    for args in (["list"], ["list", "-q"], ["list", "--format", "json"],
                 ["list", "--format=table"]):
        calls = execs(*args)
        assert len(calls) == 1 and INSTALLED in calls[0], (args, calls)
    calls = execs("list", "-qf", "json")  # and the fallback does exec the interpreter
    assert len(calls) == 2 and sys.executable in calls[1], calls
    assert len(execs("kill", cid, "KILL")) == 1
    wait_status(pyoci, cid, "stopped")
    calls = execs("delete", "--force", cid)
    assert len(calls) == 1 and not os.path.exists(os.path.join(pyoci.root, cid)), calls
    create(pyoci, new_bundle(SLEEP), cid)  # a running one: killed, natively
    assert len(execs("start", cid)) == 1
    calls = execs("delete", "--force", cid)
    assert len(calls) == 1 and not os.path.exists(os.path.join(pyoci.root, cid)), calls


LIST_FORMS = ([], ["-q"], ["--quiet"], ["--format", "json"], ["-f", "json"], ["--format=table"],
              ["-f", "table", "-q"], ["-qf", "json"], ["-fjson"], ["-f=json"], ["-f", "yaml"],
              ["-q", "-q"], ["--format", "json", "-f", "table"], ["extra"], ["--bogus"],
              ["-h"], ["--format"])


def same_lists(root: str) -> list[tuple[int, bytes, bytes]]:
    """`list` in every form, through the executable and through Python: the same."""
    return [same(root, "list", *form) for form in LIST_FORMS]


def test_list(pyoci, new_bundle, cid, tmp_path):
    root = pyoci.root
    assert same_lists(root)[0] == (0, b"ID          PID         STATUS      BUNDLE      "
                                      b"CREATED     OWNER\n", b"")
    assert same(root, "list", "-f", "json") == (0, b"null\n", b"")
    for missing in (str(tmp_path / "nope"), str(tmp_path / "nope" / "deeper")):
        same_lists(missing)
    stray = tmp_path / "a-file"
    stray.write_text("")
    same_lists(str(stray))  # not a directory: Python's error

    bundle = new_bundle(SLEEP)
    ids = [f"{cid}-{n}" for n in ("created", "running", "paused", "stopped")]
    for c in ids:
        create(pyoci, bundle, c)
    for c in ids[1:]:
        pyoci("start", c, check=True)
    pyoci("pause", ids[2], check=True)
    pyoci("kill", ids[3], "KILL", check=True)
    wait_status(pyoci, ids[3], "stopped")
    # strangers in the root: a file, directories being deleted or without a state.json,
    # and a valid dot-name (listed by Python, with the stored id)
    with open(os.path.join(root, ids[3], "state.json"), "rb") as f:
        stopped_state = f.read()
    (tmp_path / "x").mkdir()
    extra = {"stray-file": None, f".{cid}~deleted~1": b"{}", "no-state": b"",
             ".dot": stopped_state, "Upper": stopped_state, "_under": stopped_state}
    for name, text in extra.items():
        path = os.path.join(root, name)
        if text is None:
            open(path, "w").close()
            continue
        os.mkdir(path)
        if text:
            with open(os.path.join(path, "state.json"), "wb") as f:
                f.write(text)
    try:
        results = same_lists(root)
        code, out, _ = results[0]
        lines = out.decode().splitlines()
        assert code == 0 and len(lines) == 8, out
        assert [line.split()[2] for line in lines[1:]] == [
            "stopped", "stopped", "stopped", "created", "paused", "running", "stopped"]
        assert lines[7].split()[1] == "0" and lines[6].split()[1] != "0"
        assert same(root, "list", "-q")[1].decode().split() == [ids[3]] * 3 + sorted(ids)
        items = json.loads(same(root, "list", "-f", "json")[1])
        assert [i["status"] for i in items] == [line.split()[2] for line in lines[1:]]
        assert all(i["owner"] == "root" for i in items)

        # fallbacks: a bundle that is not plain ASCII (code points, not bytes, are
        # counted), escapes; a state.json our reader does not take (Python skips it)
        state_path = os.path.join(root, "Upper", "state.json")
        for bundle_path in ("/tmp/caf\u00e9 \u65e5", '/tmp/"q"\\', "/tmp/tab\there"):
            stored = json.loads(stopped_state)
            stored["bundle"] = bundle_path
            with open(state_path, "w") as f:
                f.write(json.dumps(stored))
            out = same_lists(root)[0][1]
            assert bundle_path.encode() in out, out
        for bad in (b"", b"{", b"[]", stopped_state.replace(b'"pid"', b'"pid_"')):
            with open(state_path, "wb") as f:
                f.write(bad)
            assert b"Upper" not in same(root, "list", "-q")[1]
            same_lists(root)
    finally:
        for name in extra:
            path = os.path.join(root, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
    for c in ids:
        pyoci("delete", "--force", c, check=True)


def cgroup_dirs_of(root: str, cid: str) -> list[str]:
    with open(os.path.join(root, cid, "state.json")) as f:
        info = json.load(f).get("cgroup") or {}
    if info.get("version") == 2:
        return [info["path"]]
    return [d for _ctrls, d in info.get("paths", {}).values()]


def test_delete(pyoci, new_bundle, cid):
    a, b = cid, f"{cid}-b"
    bundle = new_bundle(SLEEP)
    for c in (a, b):
        create(pyoci, bundle, c)
    # created, running: Python's (a created container is killed; a running one refused)
    code, _, err = twin(pyoci, a, b, "delete", "{id}")
    assert code == 0 and err == b""
    for c in (a, b):
        create(pyoci, bundle, c)
        pyoci("start", c, check=True)
    code, _, err = twin(pyoci, a, b, "delete", "{id}")
    assert code == 1 and b"not stopped: running" in err
    dirs = cgroup_dirs_of(pyoci.root, a)
    assert dirs and all(os.path.isdir(d) for d in dirs)
    for c in (a, b):
        pyoci("kill", c, "KILL", check=True)
        wait_status(pyoci, c, "stopped")
    assert twin(pyoci, a, b, "delete", "{id}") == (0, b"", b"")
    assert os.listdir(pyoci.root) == []
    assert not any(os.path.exists(d) for d in dirs)
    for c in (a, b):  # --force, and -f, of a stopped container: a plain delete
        create(pyoci, bundle, c)
        pyoci("kill", c, "KILL", check=True)
        wait_status(pyoci, c, "stopped")
    assert twin(pyoci, a, b, "delete", "--force", "{id}") == (0, b"", b"")
    for c in (a, b):
        create(pyoci, bundle, c)
        pyoci("kill", c, "KILL", check=True)
        wait_status(pyoci, c, "stopped")
    assert twin(pyoci, a, b, "delete", "{id}", "-f") == (0, b"", b"")
    assert os.listdir(pyoci.root) == []
    code, _, err = twin(pyoci, a, b, "delete", "{id}")
    assert code == 1 and err == b"container does not exist\n"
    assert same(pyoci.root, "delete", "--force", a) == (0, b"", b"")


def host_pids_of(pyoci, cid: str) -> set[int]:
    """The host PIDs of every process in a container (its cgroup's cgroup.procs)."""
    pids: set[int] = set()
    for d in cgroup_dirs_of(pyoci.root, cid):
        with open(os.path.join(d, "cgroup.procs")) as f:
            pids |= {int(line) for line in f if line.strip()}
    return pids


def test_delete_force_of_a_running_container(pyoci, new_bundle, cid):
    """Every process of the container (init and one exec'd) killed and waited for, the
    cgroups and the state gone: the same through the executable (natively: see
    test_native_paths_start_no_interpreter) and through Python."""
    a, b = cid, f"{cid}-b"
    bundle = new_bundle(SLEEP)
    pids, dirs = {}, {}
    for c in (a, b):
        create(pyoci, bundle, c)
        pyoci("start", c, check=True)
        pyoci("exec", "--detach", c, "sleep", "999", check=True)
        dirs[c] = cgroup_dirs_of(pyoci.root, c)
        deadline = time.monotonic() + 10
        while len(host_pids_of(pyoci, c)) < 2:  # the exec'd process is in its cgroup
            assert time.monotonic() < deadline, "the exec'd process never showed"
            time.sleep(0.05)
        pids[c] = host_pids_of(pyoci, c)
    assert twin(pyoci, a, b, "delete", "--force", "{id}") == (0, b"", b"")
    for c in (a, b):
        for pid in pids[c]:  # reaped or a zombie of its reaper: gone either way
            try:
                with open(f"/proc/{pid}/stat") as f:
                    assert f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"), pid
            except FileNotFoundError:
                pass
        assert dirs[c] and not any(os.path.exists(d) for d in dirs[c])
    assert os.listdir(pyoci.root) == []


def test_delete_poststop_hook(pyoci, new_bundle, cid, tmp_path, base_config):
    a, b = cid, f"{cid}-b"
    marks = {}
    for c in (a, b):
        marks[c] = tmp_path / f"{c}.mark"
        cfg = base_config()
        cfg["hooks"] = {"poststop": [{"path": "/bin/sh",
                                      "args": ["sh", "-c", f"cat > {marks[c]}"]}]}
        create(pyoci, new_bundle(config=cfg), c)
        pyoci("start", c, check=True)
        wait_status(pyoci, c, "stopped")
    assert twin(pyoci, a, b, "delete", "{id}") == (0, b"", b"")
    for c in (a, b):
        assert json.loads(marks[c].read_text())["status"] == "stopped"
    assert os.listdir(pyoci.root) == []
