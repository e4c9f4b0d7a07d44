"""The Python API the CLI is a client of: ``from pyoci import Container``.

These tests drive real containers in-process (Container.create forks the container's
init from the test process), with the same leak check as the CLI tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from lifecycle_helpers import UNDER_RUNC, pid_alive, shared_dir, state_entries, wait_for

pytestmark = pytest.mark.skipif(UNDER_RUNC, reason="pyoci's Python API")

SLEEP = ["sleep", "1000"]


def _wait_api_status(c, status: str, timeout: float = 5.0) -> dict:
    return wait_for(lambda: (s := c.state())["status"] == status and s, timeout=timeout,
                    what=f"{c.id} to be {status}")


def test_import_pyoci_is_cheap():
    code = ("import sys, pyoci; "
            "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('pyoci', 'click', 'jsonschema', 'cffi', 'prctl', 'seccomp', 'pyseccomp'))))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True)
    assert r.stdout.split() == ["pyoci"]


def test_container_is_exported_lazily():
    code = ("import sys, pyoci; assert 'pyoci.container' not in sys.modules; "
            "from pyoci import Container; import pyoci.container as pc; "
            "assert Container is pc.Container; assert 'Container' in dir(pyoci); "
            "from pyoci import ContainerNotFound, PyociError; "
            "assert issubclass(ContainerNotFound, PyociError); "
            "import click; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "ok\n"
    r = subprocess.run([sys.executable, "-c", "import pyoci; pyoci.NoSuchThing"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "AttributeError" in r.stderr


def test_api_lifecycle(root, bundle, cid, base_config, write_config):
    from pyoci import Container

    cfg = base_config(["sh", "-c", "touch /out/ran; exec sleep 1000"])
    cfg["annotations"] = {"k": "v"}
    host = shared_dir(bundle, cfg)
    write_config(bundle, cfg)

    c = Container.create(cid, bundle, root=root)
    assert isinstance(c, Container) and c.id == cid
    st = c.state()
    assert st["status"] == "created" and st["id"] == cid and st["bundle"] == bundle
    assert st["annotations"] == {"k": "v"}
    assert pid_alive(st["pid"])
    assert not os.path.exists(os.path.join(host, "ran"))
    assert os.path.isdir(os.path.join(root, cid))

    loaded = Container.load(cid, root)
    assert loaded.state() == st
    assert [s["id"] for s in Container.list(root)] == [cid]

    loaded.start()
    wait_for(lambda: os.path.exists(os.path.join(host, "ran")), what="the program to run")
    assert c.state()["status"] == "running"
    assert c.state()["pid"] == st["pid"]

    c.kill(signal.SIGKILL)
    stopped = _wait_api_status(c, "stopped")
    assert stopped["pid"] == 0
    assert Container.list(root)[0]["status"] == "stopped"
    c.delete()
    assert state_entries(root) == []
    assert Container.list(root) == []


def test_api_errors(root, bundle, cid, base_config, write_config):
    from pyoci import Container, ContainerExists, ContainerNotFound, InvalidID, PyociError

    with pytest.raises(ContainerNotFound, match="container does not exist"):
        Container.load(cid, root)
    with pytest.raises(InvalidID):
        Container.load("../x", root)
    with pytest.raises(InvalidID):
        Container.create("a/b", bundle, root=root)

    write_config(bundle, base_config(SLEEP))
    c = Container.create(cid, bundle, root=root)
    try:
        with pytest.raises(ContainerExists, match="already exists"):
            Container.create(cid, bundle, root=root)
        assert c.state()["status"] == "created"
        c.start()
        with pytest.raises(PyociError, match="cannot start an already running container"):
            c.start()
        with pytest.raises(PyociError, match="that is not stopped: running"):
            c.delete()
        assert c.state()["status"] == "running"
        c.kill(signal.SIGKILL)
        _wait_api_status(c, "stopped")
        with pytest.raises(PyociError, match="container not running"):
            c.kill(signal.SIGTERM)
    finally:
        c.delete(force=True)
    with pytest.raises(ContainerNotFound):
        c.state()
    c.delete(force=True)  # gone: no error with force
    with pytest.raises(ContainerNotFound):
        c.delete()


def test_api_failed_create_leaves_nothing(root, new_bundle, cid):
    from pyoci import Container, PyociError

    b = new_bundle(["nope"])
    with pytest.raises(PyociError, match='exec: "nope": executable file not found'):
        Container.create(cid, b, root=root)
    assert state_entries(root) == []
    with pytest.raises(PyociError):
        Container.create(cid, "/nonexistent-bundle", root=root)
    assert state_entries(root) == []


def test_api_kill_all_and_force_delete(root, bundle, cid, base_config, write_config):
    from pyoci import Container

    write_config(bundle, base_config(["sh", "-c", "sleep 1000 & sleep 1000 & wait"]))
    c = Container.create(cid, bundle, root=root)
    c.start()
    pid = c.state()["pid"]
    ns = os.readlink(f"/proc/{pid}/ns/pid")

    def in_container() -> int:
        n = 0
        for name in filter(str.isdigit, os.listdir("/proc")):
            try:
                n += os.readlink(f"/proc/{name}/ns/pid") == ns and pid_alive(int(name))
            except OSError:
                pass
        return n

    wait_for(lambda: in_container() == 3, what="both sleeps to start")
    c.kill(signal.SIGTERM, all=True)  # init (sh, PID 1) ignores it; the sleeps do not
    _wait_api_status(c, "stopped")
    assert not pid_alive(pid)
    c.delete()

    c = Container.create(cid, bundle, root=root)
    pid = c.state()["pid"]
    c.delete(force=True)  # a created container
    assert not pid_alive(pid)
    assert state_entries(root) == []


def test_api_pid_file_and_cli_interop(root, pyoci, bundle, cid, base_config, write_config,
                                      tmp_path):
    """A container made by the API is the CLI's, and the other way round."""
    from pyoci import Container

    write_config(bundle, base_config(SLEEP))
    pid_file = tmp_path / "pid"
    c = Container.create(cid, bundle, root=root, pid_file=str(pid_file))
    assert pid_file.read_text() == str(c.state()["pid"])
    r = pyoci("state", cid)
    assert json.loads(r.stdout) == c.state()
    pyoci("start", cid, check=True)
    assert c.state()["status"] == "running"

    other = cid + "-cli"
    pyoci("create", "--bundle", bundle, other, check=True)
    o = Container.load(other, root)
    assert o.state()["status"] == "created"
    o.delete(force=True)
    c.delete(force=True)
    assert state_entries(root) == []


def test_state_never_half_deleted(root, bundle, cid, base_config, write_config):
    """Readers racing a delete see the whole container or none of it: never "creating"."""
    from pyoci import Container, ContainerNotFound

    write_config(bundle, base_config(SLEEP))
    for round_ in range(5):
        name = f"{cid}-{round_}"
        c = Container.create(name, bundle, root=root)
        c.start()
        # Clutter slows a non-atomic removal down enough for the readers to catch it.
        for i in range(300):
            with open(os.path.join(root, name, f"clutter-{i}"), "w") as f:
                f.write("x")
        seen: list[str] = []
        errors: list[BaseException] = []
        go = threading.Event()

        def reader(name=name, seen=seen, errors=errors, go=go):
            go.wait()
            while True:
                try:
                    seen.append(Container(name, root).state()["status"])
                    seen.extend(s["status"] for s in Container.list(root))
                except ContainerNotFound:
                    return
                except BaseException as e:  # noqa: BLE001 - reported below
                    errors.append(e)
                    return

        threads = [threading.Thread(target=reader) for _ in range(4)]
        for t in threads:
            t.start()
        go.set()
        time.sleep(0.01)
        c.delete(force=True)
        for t in threads:
            t.join(10)
        assert errors == []
        assert set(seen) <= {"running", "stopped"}, seen
    assert state_entries(root) == []


def test_api_create_from_a_thread(root, bundle, cid, base_config, write_config):
    """A library caller's worker thread can create (signal handling stays the caller's)."""
    import signal as sig

    from pyoci import Container

    write_config(bundle, base_config(SLEEP))
    before = {s: sig.getsignal(s) for s in (sig.SIGTERM, sig.SIGHUP, sig.SIGINT)}
    out: list = []
    t = threading.Thread(target=lambda: out.append(Container.create(cid, bundle, root=root)))
    t.start()
    t.join(30)
    assert out and out[0].state()["status"] == "created"
    assert {s: sig.getsignal(s) for s in before} == before
    out[0].delete(force=True)
    assert state_entries(root) == []
