"""config.md, "POSIX-platform Hooks": where, when and how each hook type runs.

https://github.com/opencontainers/runtime-spec/blob/v1.3.0/config.md#posix-platform-hooks

The hooks are hook-recorder.sh (see its header), which logs what it saw into the
container's box (BUNDLE/spec-out on the host, /spec-out inside).  That a failing hook
stops the container is checked in test_runtime_lifecycle.py.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest
from spec_support import (
    BOX_DEST,
    CONTAINER_NS_HOOKS,
    CREATE_HOOKS,
    HERE,
    HOOK_RECORDER,
    HOOK_TYPES,
    RUNTIME,
    START_HOOKS,
    Box,
    HookLog,
    assert_error,
    assert_no_container,
    create,
    delete,
    hook_for,
    kill,
    mark_rootfs,
    ns_of,
    output,
    parse_mountinfo,
    proc_alive,
    recorder_hook,
    schema_errors,
    script_config,
    start,
    state,
    wait_status,
    write_config,
)

NS_KINDS = ("mnt", "pid", "net", "ipc", "uts")


def drive(pyoci, bundle: str, cid: str, kind: str) -> dict:
    """Take the container through the lifecycle far enough for ``kind`` hooks to run.

    Returns the namespaces (and pid) of the container process, read after create.
    """
    create(pyoci, bundle, cid)
    pid = state(pyoci, cid)["pid"]
    seen = {k: ns_of(pid, k) for k in NS_KINDS}
    seen["pid_number"] = pid
    if kind in START_HOOKS or kind == "poststop":
        start(pyoci, cid)
    if kind == "poststop":
        kill(pyoci, cid, "KILL")
        wait_status(pyoci, cid, "stopped")
        delete(pyoci, cid)
    return seen


def hooks_config(bundle: str, box: Box, hooks: dict, script: str = "sleep 30",
                 mounts: list | None = None) -> dict:
    cfg = script_config(script, box)
    cfg["mounts"] += mounts or []
    cfg["hooks"] = hooks
    write_config(bundle, cfg)
    return cfg


SPEC_TMP = {"destination": "/spec-tmp", "type": "tmpfs", "source": "tmpfs",
            "options": ["size=1m"]}


# ---------------------------------------------------------------------------------------
# hook entries


@pytest.mark.parametrize("kind", HOOK_TYPES)
def test_hook_path_must_be_absolute(pyoci, bundle, cid, kind):
    """Hooks: "This specification extends the IEEE standard in that path MUST be absolute"
    (a relative path, even one that resolves from the runtime's working directory, is an
    invalid value: create must fail and the hook must not run)."""
    box = Box(bundle)
    log = HookLog(box)
    relative = os.path.relpath(HOOK_RECORDER, HERE.parent)  # spec-tests/hook-recorder.sh
    hook = recorder_hook(kind, box.host, path=relative)
    hooks_config(bundle, box, {kind: [hook]})
    r = pyoci("create", "--bundle", bundle, cid, cwd=str(HERE.parent))
    assert_error(r, f"create with a relative {kind} hook path")
    assert_no_container(pyoci, cid)
    assert log.order() == []


@pytest.mark.parametrize("kind", HOOK_TYPES)
def test_hook_timeout_must_be_greater_than_zero(pyoci, bundle, cid, kind):
    """Hooks: timeout "If set, timeout MUST be greater than zero" (0 is an invalid value)."""
    box = Box(bundle)
    log = HookLog(box)
    hooks_config(bundle, box, {kind: [hook_for(kind, bundle, box, timeout=0)]})
    assert_error(pyoci("create", "--bundle", bundle, cid), f"create with {kind} timeout 0")
    assert_no_container(pyoci, cid)
    assert log.order() == []


def test_hook_timeout_aborts_the_hook(pyoci, bundle, cid):
    """Hooks: timeout "is the number of seconds before aborting the hook" (definition): a
    prestart hook that outlives its timeout is aborted, and create fails."""
    box = Box(bundle)
    hooks_config(bundle, box, {"prestart": [hook_for("prestart", bundle, box, sleep=30,
                                                     timeout=1)]})
    t0 = time.monotonic()
    assert_error(pyoci("create", "--bundle", bundle, cid, timeout=25), "create, hook timed out")
    assert time.monotonic() - t0 < 20
    assert_no_container(pyoci, cid)


def _decoy(path: str) -> None:
    """A hook at ``path`` that only logs "decoy": it must never be the one that runs."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write('#!/bin/sh\ncat >/dev/null\necho decoy >>"$2/order"\n')
    os.chmod(path, 0o755)


@pytest.mark.parametrize("kind", HOOK_TYPES)
def test_hook_path_resolves_in_the_specified_namespace(pyoci, bundle, cid, kind):
    """Hooks: "The value of path MUST resolve in the runtime namespace" (prestart,
    createRuntime, createContainer, poststart, poststop) / "in the container namespace"
    (startContainer).  The same absolute path exists on the host and in the rootfs; only
    the one in the right namespace is the recorder, the other is a decoy."""
    box = Box(bundle)
    log = HookLog(box)
    path = os.path.join(bundle, "spec-hook-path.sh")
    in_rootfs = os.path.join(bundle, "rootfs", path.lstrip("/"))
    real, fake = (in_rootfs, path) if kind == "startContainer" else (path, in_rootfs)
    os.makedirs(os.path.dirname(in_rootfs), exist_ok=True)
    shutil.copy(HOOK_RECORDER, real)
    os.chmod(real, 0o755)
    _decoy(fake)
    outdir = BOX_DEST if kind == "startContainer" else box.host
    hooks_config(bundle, box, {kind: [recorder_hook(kind, outdir, path=path)]})
    drive(pyoci, bundle, cid, kind)
    assert log.order() == [kind], f"{kind}: ran {log.order()}"


@pytest.mark.parametrize("kind", HOOK_TYPES)
def test_hook_is_executed_in_the_specified_namespace(pyoci, bundle, cid, kind):
    """Hooks: prestart, createRuntime, poststart and poststop hooks "MUST be executed in
    the runtime namespace"; createContainer and startContainer hooks "MUST be executed in
    the container namespace" (mnt, pid, net, ipc and uts compared)."""
    box = Box(bundle)
    log = HookLog(box)
    hooks_config(bundle, box, {kind: [hook_for(kind, bundle, box)]})
    container = drive(pyoci, bundle, cid, kind)
    seen = log.ns(kind)
    for k in NS_KINDS:
        want = container[k] if kind in CONTAINER_NS_HOOKS else ns_of("self", k)
        where = "container" if kind in CONTAINER_NS_HOOKS else "runtime"
        assert seen.get(k) == want, f"{kind} hook not in the {where} {k} namespace"


# ---------------------------------------------------------------------------------------
# order and input


@pytest.mark.parametrize("kind", HOOK_TYPES)
def test_hooks_are_called_in_the_listed_order(pyoci, bundle, cid, kind):
    """Hooks: "Hooks MUST be called in the listed order"."""
    box = Box(bundle)
    log = HookLog(box)
    names = [f"{kind}-3", f"{kind}-1", f"{kind}-2"]
    hooks_config(bundle, box, {kind: [hook_for(kind, bundle, box, name=n) for n in names]})
    drive(pyoci, bundle, cid, kind)
    assert log.order() == names


@pytest.mark.parametrize("kind", HOOK_TYPES)
def test_hooks_receive_the_container_state_on_stdin(pyoci, bundle, cid, kind):
    """Hooks: "The state of the container MUST be passed to hooks over stdin" (a state per
    the State section; its pid as seen from the hook's namespace)."""
    box = Box(bundle)
    log = HookLog(box)
    hooks_config(bundle, box, {kind: [hook_for(kind, bundle, box)]})
    container = drive(pyoci, bundle, cid, kind)
    raw = log.raw_state(kind)
    assert raw, f"{kind} hook got nothing on stdin"
    s = log.state(kind)
    assert schema_errors(s) == [], schema_errors(s)
    assert s["id"] == cid
    assert os.path.samefile(s["bundle"], bundle)
    if kind in CONTAINER_NS_HOOKS:
        assert s.get("pid") == 1, "pid not as seen in the container's PID namespace"
    elif kind != "poststop":
        assert s.get("pid") == container["pid_number"], "pid not as seen by the runtime"


# ---------------------------------------------------------------------------------------
# when each hook type runs


@pytest.mark.parametrize("kind", CREATE_HOOKS)
def test_hooks_called_during_create_after_environment_before_pivot_root(pyoci, bundle, cid,
                                                                         kind):
    """prestart / createRuntime / createContainer: "MUST be called as part of the create
    operation after the runtime environment has been created (according to the
    configuration in config.json) but before the pivot_root or any equivalent operation
    has been executed"."""
    box = Box(bundle)
    log = HookLog(box)
    mark_rootfs(bundle)
    hooks_config(bundle, box, {kind: [hook_for(kind, bundle, box)]}, mounts=[SPEC_TMP])
    create(pyoci, bundle, cid)
    assert log.order() == [kind], "not called as part of create"
    container_mnt = ns_of(state(pyoci, cid)["pid"], "mnt")
    rootfs = os.path.realpath(os.path.join(bundle, "rootfs"))
    if kind in CONTAINER_NS_HOOKS:
        mounts = parse_mountinfo(open(os.path.join(box.host, f"{kind}.mountinfo")).read())
        before_pivot = log.fact(kind, "rootmarker") == "no"
    else:
        assert log.fact(kind, "pidns") == container_mnt, "container namespaces not created"
        mounts = parse_mountinfo(open(os.path.join(box.host, f"{kind}.pidmountinfo")).read())
        before_pivot = log.fact(kind, "pidrootmarker") == "no"
    assert any(m["mountpoint"] == rootfs + "/spec-tmp" for m in mounts), \
        "the configured mounts were not made before the hook"
    assert before_pivot, "called after pivot_root: / was already the container's rootfs"
    start(pyoci, cid)
    assert log.order() == [kind], "called again after create"


def test_hooks_prestart_called_before_create_runtime(pyoci, bundle, cid):
    """Prestart: "The prestart hooks MUST be called before the createRuntime hooks"."""
    box = Box(bundle)
    log = HookLog(box)
    hooks_config(bundle, box, {
        "createRuntime": [hook_for("createRuntime", bundle, box)],
        "prestart": [hook_for("prestart", bundle, box)]})
    create(pyoci, bundle, cid)
    assert log.order() == ["prestart", "createRuntime"]


def test_hooks_create_container_called_after_create_runtime(pyoci, bundle, cid):
    """CreateContainer: "The createContainer hooks MUST be called after the createRuntime
    hooks"."""
    box = Box(bundle)
    log = HookLog(box)
    hooks_config(bundle, box, {
        "createContainer": [hook_for("createContainer", bundle, box)],
        "createRuntime": [hook_for("createRuntime", bundle, box)]})
    create(pyoci, bundle, cid)
    assert log.order() == ["createRuntime", "createContainer"]


def test_hooks_start_container_called_before_user_program_during_start(pyoci, bundle, cid):
    """StartContainer: "The startContainer hooks MUST be called before the user-specified
    process is executed as part of the start operation"."""
    box = Box(bundle)
    log = HookLog(box)
    hooks_config(bundle, box, {"startContainer": [hook_for("startContainer", bundle, box)]},
                 script="cat /spec-out/order")
    create(pyoci, bundle, cid)
    assert log.order() == [], "startContainer hook ran during create"
    start(pyoci, cid)
    wait_status(pyoci, cid, "stopped")
    assert output(box) == "startContainer\n", "the user program ran before the hook"
    delete(pyoci, cid)


def test_hooks_poststart_called_after_user_program_before_start_returns(pyoci, bundle, cid):
    """Poststart: "The poststart hooks MUST be called after the user-specified process is
    executed but before the start operation returns"."""
    box = Box(bundle)
    log = HookLog(box)
    cfg = script_config("sleep 30", box)
    cfg["process"]["args"] = ["sleep", "31"]
    cfg["hooks"] = {"poststart": [hook_for("poststart", bundle, box)]}
    write_config(bundle, cfg)
    create(pyoci, bundle, cid)
    assert log.order() == []
    start(pyoci, cid)
    assert log.order() == ["poststart"], "poststart had not run when start returned"
    assert log.fact("poststart", "pidcmdline") == "sleep 31", \
        "the user program was not executing when the poststart hook ran"


def test_hooks_poststop_called_after_container_deleted_before_delete_returns(pyoci, bundle,
                                                                             cid):
    """Poststop: "The poststop hooks MUST be called after the container is deleted but
    before the delete operation returns" (from the hook, the runtime no longer knows the
    container, and its process is gone)."""
    box = Box(bundle)
    log = HookLog(box)
    probe = os.path.join(bundle, "spec-poststop-probe.sh")
    runtime = " ".join(f"'{a}'" for a in RUNTIME)
    out = box.host
    with open(probe, "w") as f:
        f.write(f"""#!/bin/sh
cat >/dev/null
timeout 20 {runtime} --root '{pyoci.root}' state '{cid}' >'{out}/probe.out' 2>&1
echo $? >'{out}/probe.rc'
pid=$(cat '{out}/pid')
# gone: no such process, or only a zombie left for its parent to reap
case $(cut -d' ' -f3 "/proc/$pid/stat" 2>/dev/null) in
    ''|Z|X) echo gone ;;
    *) echo alive ;;
esac >'{out}/probe.init'
echo probe >>'{out}/order'
""")
    os.chmod(probe, 0o755)
    cfg = script_config("sleep 30", box)
    cfg["hooks"] = {"poststop": [{"path": probe, "args": ["probe"], "env": [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}]}
    write_config(bundle, cfg)
    create(pyoci, bundle, cid)
    pid = state(pyoci, cid)["pid"]
    with open(box.path("pid"), "w") as f:
        f.write(f"{pid}\n")
    start(pyoci, cid)
    kill(pyoci, cid, "KILL")
    wait_status(pyoci, cid, "stopped")
    assert log.order() == []
    delete(pyoci, cid)
    assert log.order() == ["probe"], "poststop had not run when delete returned"
    rc = box.read("probe.rc").strip()
    assert rc not in ("0", "124"), \
        f"the container still existed when poststop ran: {box.read('probe.out')}"
    assert box.read("probe.init").strip() == "gone", "the container process was alive"
    assert not proc_alive(pid)
