"""runtime.md: "Scope of a Container", "Lifecycle", "Errors" and "Warnings".

https://github.com/opencontainers/runtime-spec/blob/v1.3.0/runtime.md#lifecycle

The hook steps of the lifecycle (3, 4, 5, 7, 9, 13) are checked here for what the
lifecycle demands (invoked; a failure is an error that stops and destroys the
container); where and when each hook type runs is in test_config_hooks.py.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from spec_support import (
    CREATE_HOOKS,
    START_HOOKS,
    Box,
    HookLog,
    assert_error,
    assert_no_container,
    base_config,
    create,
    delete,
    hook_for,
    kill,
    mountinfo,
    ns_of,
    output,
    proc_alive,
    script_config,
    start,
    state,
    try_state,
    wait_for,
    wait_status,
    write_config,
)


def pids_in_mnt_ns(ns: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.readlink(f"/proc/{name}/ns/mnt") == ns:
                    found.append(int(name))
            except OSError:
                continue
    return found


def rootfs_tree(bundle: str) -> dict[str, tuple[int, int]]:
    """Every path under the rootfs with its mode and size: to see if anything changed."""
    top = os.path.join(bundle, "rootfs")
    tree = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            tree[os.path.relpath(p, top)] = (st.st_mode, st.st_size)
    return tree


# ---------------------------------------------------------------------------------------
# Scope of a Container


def test_caller_can_use_every_operation_on_the_container_it_created(pyoci, bundle, cid):
    """Scope: "The entity using a runtime to create a container MUST be able to use the
    operations defined in this specification against that same container"."""
    write_config(bundle, base_config(["sleep", "30"]))
    create(pyoci, bundle, cid)
    assert state(pyoci, cid)["status"] == "created"
    start(pyoci, cid)
    assert state(pyoci, cid)["status"] == "running"
    kill(pyoci, cid, "KILL")  # sleep as PID 1 ignores SIGTERM
    wait_status(pyoci, cid, "stopped")
    delete(pyoci, cid)
    assert try_state(pyoci, cid) is None


# ---------------------------------------------------------------------------------------
# step 2: create


def test_create_builds_the_environment_the_config_specifies(pyoci, bundle, cid):
    """Lifecycle 2: "The container's runtime environment MUST be created according to the
    configuration in config.json": its namespaces, hostname and mounts exist at create."""
    cfg = base_config(["sleep", "30"])
    cfg["hostname"] = "spec-env-host"
    cfg["mounts"].append({"destination": "/spec-tmp", "type": "tmpfs", "source": "tmpfs",
                          "options": ["size=1m"]})
    write_config(bundle, cfg)
    create(pyoci, bundle, cid)
    pid = state(pyoci, cid)["pid"]
    for kind in ("pid", "net", "ipc", "uts", "mnt"):  # configured: new namespaces
        assert ns_of(pid, kind) != ns_of("self", kind), f"no new {kind} namespace"
    assert ns_of(pid, "cgroup") == ns_of("self", "cgroup"), "cgroup namespace not inherited"
    host = subprocess.run(["nsenter", "-t", str(pid), "-u", "hostname"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert host == "spec-env-host"
    mounts = {m["mountpoint"]: m for m in mountinfo(pid)}
    for dest, fstype in (("/proc", "proc"), ("/dev", "tmpfs"), ("/sys", "sysfs"),
                         ("/spec-tmp", "tmpfs")):
        assert dest in mounts and mounts[dest]["fstype"] == fstype, f"{dest} not mounted"


def test_create_errors_when_it_cannot_create_the_environment(pyoci, bundle, cid):
    """Lifecycle 2: "If the runtime is unable to create the environment specified in the
    config.json, it MUST generate an error" (here: a namespace path that does not exist)."""
    cfg = base_config(["true"])
    cfg["linux"]["namespaces"] = [
        {"type": "network", "path": "/nonexistent/spec-tests/netns"} if ns["type"] == "network"
        else ns for ns in cfg["linux"]["namespaces"]]
    write_config(bundle, cfg)
    assert_error(pyoci("create", "--bundle", bundle, cid), "create with a missing netns path")
    assert_no_container(pyoci, cid)


def test_create_does_not_run_the_user_program(pyoci, bundle, cid):
    """Lifecycle 2: "the user-specified program (from process) MUST NOT be run at this
    time" (it runs at start)."""
    box = Box(bundle)
    write_config(bundle, script_config("touch /spec-out/user-ran; sleep 30", box))
    create(pyoci, bundle, cid)
    pid = state(pyoci, cid)["pid"]
    assert not box.exists("user-ran"), "the user program ran during create"
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert b"user-ran" not in f.read()
    start(pyoci, cid)
    box.wait("user-ran")


def test_config_updates_after_create_do_not_affect_the_container(pyoci, bundle, cid):
    """Lifecycle 2: "Any updates to config.json after this step MUST NOT affect the
    container"."""
    box = Box(bundle)
    write_config(bundle, script_config("echo original; hostname", box,
                                       {**base_config(), "hostname": "spec-before"}))
    create(pyoci, bundle, cid)
    write_config(bundle, script_config("echo changed; hostname", box,
                                       {**base_config(), "hostname": "spec-after"}))
    start(pyoci, cid)
    wait_status(pyoci, cid, "stopped")
    assert output(box).split() == ["original", "spec-before"]
    delete(pyoci, cid)


# ---------------------------------------------------------------------------------------
# steps 3-5, 7, 9: hooks are invoked; a failing one stops and destroys the container


@pytest.mark.parametrize("kind", CREATE_HOOKS + START_HOOKS)
def test_lifecycle_hooks_are_invoked(pyoci, bundle, cid, kind):
    """Lifecycle 3, 4, 5, 7, 9: the prestart, createRuntime, createContainer,
    startContainer and poststart hooks "MUST be invoked by the runtime"."""
    box = Box(bundle)
    log = HookLog(box)
    cfg = script_config("sleep 30", box)
    cfg["hooks"] = {kind: [hook_for(kind, bundle, box)]}
    write_config(bundle, cfg)
    create(pyoci, bundle, cid)
    if kind in START_HOOKS:
        assert not log.ran(kind), f"{kind} hook ran during create"
        start(pyoci, cid)
    assert log.ran(kind), f"{kind} hook was not invoked"
    assert log.order().count(kind) == 1


def _container_mnt_ns(log: HookLog, kind: str) -> str:
    if kind in ("createContainer", "startContainer"):
        return log.ns(kind)["mnt"]
    ns = log.fact(kind, "pidns")
    assert ns, f"{kind} hook could not see the container process"
    return ns


@pytest.mark.parametrize("kind", CREATE_HOOKS)
def test_create_hook_failure_is_an_error_and_destroys_the_container(pyoci, bundle, cid, kind):
    """Lifecycle 3, 4, 5: "If any prestart / createRuntime / createContainer hook fails, the
    runtime MUST generate an error, stop the container, and continue the lifecycle at
    step 12" (destroy, then the poststop hooks of step 13)."""
    box = Box(bundle)
    log = HookLog(box)
    cfg = script_config("touch /spec-out/user-ran; sleep 30", box)
    cfg["hooks"] = {kind: [hook_for(kind, bundle, box, exit_code=1)],
                    "poststop": [hook_for("poststop", bundle, box)]}
    write_config(bundle, cfg)
    assert_error(pyoci("create", "--bundle", bundle, cid), f"create with a failing {kind} hook")
    assert log.ran(kind)
    ns = _container_mnt_ns(log, kind)
    wait_for(lambda: not pids_in_mnt_ns(ns), "the container's processes to be gone")
    assert_no_container(pyoci, cid)
    assert not box.exists("user-ran")
    assert log.ran("poststop"), "the lifecycle did not continue to the poststop hooks"


@pytest.mark.parametrize("kind", START_HOOKS)
def test_start_hook_failure_is_an_error_and_destroys_the_container(pyoci, bundle, cid, kind):
    """Lifecycle 7, 9: "If any startContainer / poststart hook fails, the runtime MUST
    generate an error, stop the container, and continue the lifecycle at step 12"
    (destroy, then the poststop hooks of step 13)."""
    box = Box(bundle)
    log = HookLog(box)
    cfg = script_config("touch /spec-out/user-ran; sleep 30", box)
    cfg["hooks"] = {kind: [hook_for(kind, bundle, box, exit_code=1)],
                    "poststop": [hook_for("poststop", bundle, box)]}
    write_config(bundle, cfg)
    create(pyoci, bundle, cid)
    pid = state(pyoci, cid)["pid"]
    ns = ns_of(pid, "mnt")
    assert_error(pyoci("start", cid), f"start with a failing {kind} hook")
    assert log.ran(kind)
    wait_for(lambda: not pids_in_mnt_ns(ns), "the container's processes to be gone")
    if kind == "startContainer":
        assert not box.exists("user-ran"), "the user program ran after startContainer failed"
    s = try_state(pyoci, cid)
    assert s is None or s["status"] == "stopped"
    assert log.ran("poststop"), "the lifecycle did not continue to step 12/13 (poststop)"


# ---------------------------------------------------------------------------------------
# step 8: the user program


def test_lifecycle_runs_the_user_program_at_start(pyoci, bundle, cid):
    """Lifecycle 8: "The runtime MUST run the user-specified program, as specified by
    process" (after the startContainer hooks, before the poststart hooks)."""
    box = Box(bundle)
    log = HookLog(box)
    cfg = script_config("echo started; cat /spec-out/order", box)
    cfg["hooks"] = {"startContainer": [hook_for("startContainer", bundle, box)]}
    write_config(bundle, cfg)
    create(pyoci, bundle, cid)
    start(pyoci, cid)
    wait_status(pyoci, cid, "stopped")
    assert output(box).split() == ["started", "startContainer"]
    assert log.order() == ["startContainer"]
    delete(pyoci, cid)


# ---------------------------------------------------------------------------------------
# steps 12-13: destroy, poststop


def test_delete_destroys_the_container_by_undoing_create(pyoci, bundle, cid):
    """Lifecycle 12: "The container MUST be destroyed by undoing the steps performed during
    create phase": its processes, namespaces, mounts and state are gone."""
    cfg = base_config(["sh", "-c", "sleep 30 & sleep 30"])
    cfg["mounts"].append({"destination": "/spec-tmp", "type": "tmpfs", "source": "tmpfs"})
    write_config(bundle, cfg)
    create(pyoci, bundle, cid)
    pid = state(pyoci, cid)["pid"]
    mnt_ns = ns_of(pid, "mnt")
    start(pyoci, cid)
    kill(pyoci, cid, "KILL")
    wait_status(pyoci, cid, "stopped")
    delete(pyoci, cid)
    assert_no_container(pyoci, cid)
    wait_for(lambda: not pids_in_mnt_ns(mnt_ns), "every container process to be gone")
    assert not proc_alive(pid)
    assert not [m for m in mountinfo() if bundle in m["mountpoint"]], "host mounts left"


def test_poststop_hooks_are_invoked_on_delete(pyoci, bundle, cid):
    """Lifecycle 13: "The poststop hooks MUST be invoked by the runtime"."""
    box = Box(bundle)
    log = HookLog(box)
    cfg = script_config("true", box)
    cfg["hooks"] = {"poststop": [hook_for("poststop", bundle, box)]}
    write_config(bundle, cfg)
    create(pyoci, bundle, cid)
    start(pyoci, cid)
    wait_status(pyoci, cid, "stopped")
    assert not log.ran("poststop")
    delete(pyoci, cid)
    assert log.order() == ["poststop"]


def test_poststop_hook_failure_only_warns_and_the_lifecycle_continues(pyoci, bundle, cid):
    """Lifecycle 13: "If any poststop hook fails, the runtime MUST log a warning, but the
    remaining hooks and lifecycle continue as if the hook had succeeded"."""
    box = Box(bundle)
    log = HookLog(box)
    cfg = script_config("true", box)
    cfg["hooks"] = {"poststop": [hook_for("poststop", bundle, box, name="first", exit_code=1),
                                 hook_for("poststop", bundle, box, name="second")]}
    write_config(bundle, cfg)
    create(pyoci, bundle, cid)
    start(pyoci, cid)
    wait_status(pyoci, cid, "stopped")
    r = pyoci("delete", cid)
    assert r.returncode == 0, f"delete failed because a poststop hook failed: {r.stderr}"
    assert log.order() == ["first", "second"]
    assert_no_container(pyoci, cid)


# ---------------------------------------------------------------------------------------
# Errors and Warnings


def test_failed_create_leaves_the_environment_as_if_never_attempted(pyoci, bundle, cid):
    """Errors: "generating an error MUST leave the state of the environment as if the
    operation were never attempted": no container, state, process, mount, or new file in
    the bundle after create fails half-way through its mounts."""
    cfg = base_config(["true"])
    cfg["mounts"] += [
        {"destination": "/spec-new/a", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/spec-new/b", "type": "nosuchfs-spec", "source": "none"},
    ]
    write_config(bundle, cfg)
    before_tree = rootfs_tree(bundle)
    before_entries = sorted(os.listdir(bundle))
    host_mounts = len(mountinfo())
    assert_error(pyoci("create", "--bundle", bundle, cid), "create with an unknown fs type")
    assert_no_container(pyoci, cid)
    assert sorted(os.listdir(pyoci.root)) == []
    assert sorted(os.listdir(bundle)) == before_entries
    assert len(mountinfo()) == host_mounts
    assert rootfs_tree(bundle) == before_tree, "create left changes in the rootfs"


def test_warning_does_not_change_the_flow_of_the_operation(pyoci, bundle, cid):
    """Warnings: "logging a warning does not change the flow of the operation; it MUST
    continue as if the warning had not been logged" (a failing poststop hook is a
    warning: delete still deletes the container and reports success)."""
    box = Box(bundle)
    cfg = script_config("true", box)
    cfg["hooks"] = {"poststop": [hook_for("poststop", bundle, box, exit_code=3)]}
    write_config(bundle, cfg)
    create(pyoci, bundle, cid)
    start(pyoci, cid)
    wait_status(pyoci, cid, "stopped")
    r = pyoci("delete", cid)
    assert r.returncode == 0, r.stderr
    assert_no_container(pyoci, cid)
    # the id is free again, as after any delete
    write_config(bundle, base_config(["true"]))
    create(pyoci, bundle, cid)
    assert pyoci("delete", "--force", cid).returncode == 0
