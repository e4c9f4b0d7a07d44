"""Hooks of all six types on real containers: state on stdin, order, namespaces, timeout
and what a failure of each does.

Each hook is a shell script the test writes; it records its stdin (the state), its mount
and network namespaces and its name (appended to ``order``) in ``BUNDLE/hook-out``, which
the container sees at /hook-out (the startContainer hook runs inside the container).
"""

from __future__ import annotations

import json
import os
import stat
import time

import pytest
from container_helpers import UNDER_RUNC, wait_for

RECORD = """cat > "{out}/{name}.json"
echo "{name}" >> "{out}/order"
readlink /proc/self/ns/mnt > "{out}/{name}.mnt"
readlink /proc/self/ns/net > "{out}/{name}.net"
echo "$0 $*" > "{out}/{name}.args"
env > "{out}/{name}.env"
"""
CREATE_HOOKS = ("prestart", "createRuntime", "createContainer")
ALL_HOOKS = (*CREATE_HOOKS, "startContainer", "poststart", "poststop")


class Hooks:
    """Hook scripts and what they recorded, for one bundle."""

    def __init__(self, bundle: str) -> None:
        self.bundle = bundle
        self.out = os.path.join(bundle, "hook-out")
        os.makedirs(self.out, exist_ok=True)
        os.chmod(self.out, 0o777)

    def script(self, name: str, body: str = "", *, in_container: bool = False) -> str:
        """Write hook ``name``; its ``path`` (inside the rootfs if ``in_container``)."""
        out = "/hook-out" if in_container else self.out
        text = "#!/bin/sh\n" + RECORD.format(out=out, name=name) + body
        if in_container:
            path = f"/hook-{name}-{os.path.basename(self.bundle)}.sh"
            host = os.path.join(self.bundle, "rootfs", path.lstrip("/"))
        else:
            path = host = os.path.join(self.bundle, f"hook-{name}.sh")
        with open(host, "w") as f:
            f.write(text)
        os.chmod(host, 0o755)
        return path

    def config(self, cfg: dict, spec: dict[str, list[dict]]) -> dict:
        cfg["hooks"] = spec
        cfg["mounts"].append({"destination": "/hook-out", "type": "bind", "source": self.out,
                              "options": ["rbind", "rw"]})
        return cfg

    def order(self) -> list[str]:
        try:
            with open(os.path.join(self.out, "order")) as f:
                return f.read().split()
        except FileNotFoundError:
            return []

    def state(self, name: str) -> dict:
        with open(os.path.join(self.out, f"{name}.json")) as f:
            return json.load(f)

    def read(self, name: str, what: str) -> str:
        with open(os.path.join(self.out, f"{name}.{what}")) as f:
            return f.read().strip()

    def ran(self, name: str) -> bool:
        return os.path.exists(os.path.join(self.out, f"{name}.json"))


def standard_hooks(h: Hooks, **bodies: str) -> dict[str, list[dict]]:
    """One recording hook of every type; ``bodies`` adds shell to the named ones."""
    return {name: [{"path": h.script(name, bodies.get(name, ""),
                                     in_container=name == "startContainer")}]
            for name in ALL_HOOKS}


def container_state(pyoci, cid) -> dict:
    return json.loads(pyoci("state", cid, check=True).stdout)


def wait_stopped(pyoci, cid) -> None:
    wait_for(lambda: container_state(pyoci, cid)["status"] == "stopped", 10,
             f"{cid} to stop")


def test_all_hooks_order_state_and_namespaces(pyoci, bundle, cid, base_config, write_config):
    h = Hooks(bundle)
    cfg = h.config(base_config(["sleep", "300"]), standard_hooks(h))
    cfg["annotations"] = {"org.example.key": "value"}
    write_config(bundle, cfg)
    host_mnt = os.readlink("/proc/self/ns/mnt")

    pyoci("create", "--bundle", bundle, cid, check=True)
    assert h.order() == list(CREATE_HOOKS)
    pid = container_state(pyoci, cid)["pid"]
    container_mnt = os.readlink(f"/proc/{pid}/ns/mnt")
    container_net = os.readlink(f"/proc/{pid}/ns/net")
    for name in ("prestart", "createRuntime"):
        assert h.state(name) == {"ociVersion": cfg["ociVersion"], "id": cid,
                                 "status": "creating", "pid": pid, "bundle": bundle,
                                 "annotations": cfg["annotations"]}, name
        assert h.read(name, "mnt") == host_mnt, f"{name} not in the runtime namespace"
    cc = h.state("createContainer")
    assert (cc["id"], cc["status"], cc["bundle"]) == (cid, "creating", bundle)
    assert cc["pid"] == 1  # the pid as seen in the container's (new) PID namespace
    assert h.read("createContainer", "mnt") == container_mnt
    assert h.read("createContainer", "net") == container_net

    pyoci("start", cid, check=True)
    assert h.order() == [*CREATE_HOOKS, "startContainer", "poststart"]
    sc = h.state("startContainer")
    assert (sc["id"], sc["status"], sc["pid"]) == (cid, "created", 1)
    assert h.read("startContainer", "mnt") == container_mnt
    ps = h.state("poststart")
    assert (ps["id"], ps["status"], ps["pid"], ps["bundle"]) == (cid, "running", pid, bundle)
    assert h.read("poststart", "mnt") == host_mnt

    pyoci("kill", cid, "KILL", check=True)
    wait_stopped(pyoci, cid)
    assert not h.ran("poststop")
    pyoci("delete", cid, check=True)
    assert h.order() == list(ALL_HOOKS)
    post = h.state("poststop")
    assert (post["id"], post["status"], post["bundle"]) == (cid, "stopped", bundle)
    assert h.read("poststop", "mnt") == host_mnt


def test_start_container_path_resolves_in_the_container(pyoci, bundle, cid, base_config,
                                                        write_config):
    h = Hooks(bundle)
    path = h.script("startContainer",
                    "test -e /bin/busybox && echo in-rootfs > /hook-out/where\n",
                    in_container=True)
    assert not os.path.exists(path), "the hook path must exist only inside the rootfs"
    write_config(bundle, h.config(base_config(["true"]), {"startContainer": [{"path": path}]}))
    r = pyoci("run", "--bundle", bundle, cid)
    assert r.returncode == 0, r.stderr
    assert h.read("startContainer", "json")  # it ran
    with open(os.path.join(h.out, "where")) as f:
        assert f.read() == "in-rootfs\n"


def test_hook_args_and_env(pyoci, bundle, cid, base_config, write_config):
    h = Hooks(bundle)
    path = h.script("createRuntime")
    hook = {"path": path, "args": ["custom-argv0", "one", "two three"],
            "env": ["HOOK_VAR=hello", "PATH=/usr/bin:/bin"]}
    write_config(bundle, h.config(base_config(), {"createRuntime": [hook]}))
    pyoci("run", "--bundle", bundle, cid, check=True)
    # $0 of a script is the script's path; the extra args follow
    assert h.read("createRuntime", "args") == f"{path} one two three"
    env = dict(line.split("=", 1) for line in h.read("createRuntime", "env").splitlines())
    env.pop("PWD", None)
    assert env == {"HOOK_VAR": "hello", "PATH": "/usr/bin:/bin"}


def test_several_hooks_of_a_type_run_in_order(pyoci, bundle, cid, base_config, write_config):
    h = Hooks(bundle)
    spec = {"createRuntime": [{"path": h.script(f"cr{i}")} for i in range(3)],
            "poststart": [{"path": h.script(f"ps{i}")} for i in range(2)]}
    write_config(bundle, h.config(base_config(), spec))
    pyoci("run", "--bundle", bundle, cid, check=True)
    assert h.order() == ["cr0", "cr1", "cr2", "ps0", "ps1"]


def _assert_hook_error(stderr: str, kind: str) -> None:
    """The error names the failing hook (pyoci also names its type; runc does not)."""
    assert "hook" in stderr and "Traceback" not in stderr, stderr
    if not UNDER_RUNC:
        assert kind in stderr, stderr


def _assert_nothing_left(pyoci, root, cid, h: Hooks) -> None:
    assert os.listdir(root) == [], "state left behind"
    assert pyoci("state", cid).returncode != 0


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_hook_timeout_kills_the_hook_and_fails_create(pyoci, bundle, cid, root, base_config,
                                                      write_config, kind):
    h = Hooks(bundle)
    hang = h.script(kind, f'echo $$ > "{h.out}/{kind}.pid"\nexec sleep 60\n')
    spec = {kind: [{"path": hang, "timeout": 1}], "poststop": [{"path": h.script("poststop")}]}
    write_config(bundle, h.config(base_config(), spec))
    started = time.monotonic()
    r = pyoci("create", "--bundle", bundle, cid, timeout=30)
    assert r.returncode != 0
    assert time.monotonic() - started < 20
    _assert_hook_error(r.stderr, kind)
    hook_pid = int(h.read(kind, "pid"))
    if kind != "createContainer":  # that one's pid is in the container's PID namespace
        assert not _alive(hook_pid), "the hanging hook was not killed"
    _assert_nothing_left(pyoci, root, cid, h)
    assert h.ran("poststop"), "poststop hooks must run when create fails"
    assert h.state("poststop")["status"] == "stopped"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_fails_create(pyoci, bundle, cid, root, base_config, write_config,
                                          kind):
    h = Hooks(bundle)
    spec = standard_hooks(h, **{kind: "echo hook-says-no >&2; exit 3\n"})
    cfg = h.config(base_config(["sleep", "300"]), spec)
    write_config(bundle, cfg)
    r = pyoci("create", "--bundle", bundle, cid)
    assert r.returncode != 0
    _assert_hook_error(r.stderr, kind)
    _assert_nothing_left(pyoci, root, cid, h)
    # the hooks after the failing one did not run; poststop did
    assert h.order() == [*CREATE_HOOKS[:CREATE_HOOKS.index(kind) + 1], "poststop"]


def test_failing_start_container_hook_fails_start_and_stops(pyoci, bundle, cid, base_config,
                                                            write_config):
    h = Hooks(bundle)
    spec = standard_hooks(h, startContainer="exit 1\n")
    write_config(bundle, h.config(base_config(["sleep", "300"]), spec))
    pyoci("create", "--bundle", bundle, cid, check=True)
    pid = container_state(pyoci, cid)["pid"]
    r = pyoci("start", cid)
    assert r.returncode != 0
    _assert_hook_error(r.stderr, "startContainer")
    wait_for(lambda: not _alive(pid), 10, "the container process to be stopped")
    assert container_state(pyoci, cid)["status"] == "stopped"
    assert "poststart" not in h.order()
    pyoci("delete", cid, check=True)
    assert h.order()[-1] == "poststop"


def test_failing_poststart_hook_fails_start_and_stops(pyoci, bundle, cid, base_config,
                                                      write_config):
    h = Hooks(bundle)
    spec = standard_hooks(h, poststart="exit 1\n")
    write_config(bundle, h.config(base_config(["sleep", "300"]), spec))
    pyoci("create", "--bundle", bundle, cid, check=True)
    pid = container_state(pyoci, cid)["pid"]
    r = pyoci("start", cid)
    assert r.returncode != 0
    _assert_hook_error(r.stderr, "poststart")
    wait_for(lambda: not _alive(pid), 10, "the container process to be stopped")
    assert container_state(pyoci, cid)["status"] == "stopped"
    pyoci("delete", cid, check=True)
    assert h.order() == list(ALL_HOOKS)


def test_failing_poststop_hook_is_only_a_warning(pyoci, bundle, cid, root, base_config,
                                                 write_config):
    h = Hooks(bundle)
    spec = {"poststop": [{"path": h.script("bad", "exit 7\n")},
                         {"path": h.script("after")}]}
    write_config(bundle, h.config(base_config(["true"]), spec))
    pyoci("create", "--bundle", bundle, cid, check=True)
    pyoci("start", cid, check=True)
    wait_stopped(pyoci, cid)
    r = pyoci("delete", cid)
    assert r.returncode == 0, r.stderr
    _assert_hook_error(r.stderr, "poststop")  # a warning
    assert h.order() == ["bad", "after"], "the remaining poststop hooks must still run"
    assert os.listdir(root) == []


def test_hook_not_executable_fails_create(pyoci, bundle, cid, root, base_config, write_config):
    h = Hooks(bundle)
    path = h.script("createRuntime")
    os.chmod(path, stat.S_IRUSR)
    write_config(bundle, h.config(base_config(), {"createRuntime": [{"path": path}]}))
    r = pyoci("create", "--bundle", bundle, cid)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    _assert_nothing_left(pyoci, root, cid, h)


def test_run_runs_poststop_on_exit(pyoci, bundle, cid, base_config, write_config):
    """``run`` (without --keep) deletes the container once it exits: poststop runs."""
    h = Hooks(bundle)
    write_config(bundle, h.config(base_config(["true"]),
                                  {"poststop": [{"path": h.script("poststop")}]}))
    pyoci("run", "--bundle", bundle, cid, check=True)
    assert h.state("poststop")["status"] == "stopped"
