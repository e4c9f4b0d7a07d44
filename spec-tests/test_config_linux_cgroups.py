"""config-linux.md, "Control groups": the MUSTs (and the SHOULDs that can be observed).

https://github.com/opencontainers/runtime-spec/blob/v1.3.0/config-linux.md#control-groups

The container's cgroup is found as a caller would: from ``/proc/<init>/cgroup`` and the
host's cgroup mounts.  Containers get a cgroupsPath under the test process's own cgroup
(relative ``pyoci-test-<hex>/<id>``, or the absolute path of the same place), removed
afterwards.  Runs on a hybrid host and in the cgroup v2 lane.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time

import pytest
from spec_support import base_config, create, start, write_config

from pyoci import cgroups

V2 = cgroups.mode() == "unified"
SLEEP = ["sleep", "1000"]


@pytest.fixture
def parent(pyoci):
    name = f"pyoci-test-{secrets.token_hex(4)}"
    made: list[str] = []
    yield name, made
    for cid in os.listdir(pyoci.root):
        pyoci("delete", "--force", cid)
    dirs = [os.path.dirname(d) for d in cgroups.resolve_dirs(f"{name}/x", "x").values()]
    for d in sorted(set(dirs + made), key=len, reverse=True):
        _rmtree(d)


def _rmtree(d: str) -> None:
    if not os.path.isdir(d):
        return
    deadline = time.monotonic() + 10
    while True:
        for pid in cgroups.cgroup_pids(d):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            cgroups.remove_dir(d, timeout=0.5)
            return
        except cgroups.CgroupError:
            if time.monotonic() > deadline:
                raise


def _cfg(args, cgroups_path: str, resources: dict | None = None) -> dict:
    cfg = base_config(args)
    cfg["linux"]["cgroupsPath"] = cgroups_path
    if resources:
        cfg["linux"]["resources"] = {**cfg["linux"]["resources"], **resources}
    return cfg


def _init_pid(pyoci, cid: str) -> int:
    return json.loads(pyoci("state", cid).stdout)["pid"]


def proc_cgroups(pid: int) -> dict[str, str]:
    """{mount point: the process's directory} as /proc/<pid>/cgroup shows it."""
    own = cgroups.own_cgroups(pid)
    return {h.mountpoint: os.path.normpath(h.mountpoint + "/" + own[h.key])
            for h in cgroups.hierarchies() if h.key in own}


def _file(pid: int, controller: str, name: str) -> str:
    for h in cgroups.hierarchies():
        if (V2 and h.version == 2) or controller in h.controllers:
            return os.path.join(proc_cgroups(pid)[h.mountpoint], name)
    pytest.skip(f"no {controller} hierarchy here")


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def test_relative_cgroups_path_is_consistent(pyoci, new_bundle, cid, parent):
    """cgroupsPath: "the runtime MUST consistently attach to the same place in the cgroups
    hierarchy given the same value of cgroupsPath"; "The cgroups will be created if they
    don't exist"."""
    name, _ = parent
    path = f"{name}/{cid}"
    b = new_bundle()
    write_config(b, _cfg(SLEEP, path))
    create(pyoci, b, cid)
    first = proc_cgroups(_init_pid(pyoci, cid))
    for mnt, d in first.items():
        assert d.endswith("/" + path), (mnt, d)
        assert os.path.isdir(d)
    assert pyoci("delete", "--force", cid).returncode == 0
    create(pyoci, b, cid)
    assert proc_cgroups(_init_pid(pyoci, cid)) == first


def test_absolute_cgroups_path_is_relative_to_the_mount_point(pyoci, bundle, cid, parent):
    """cgroupsPath: "In the case of an absolute path ... the runtime MUST take the path to be
    relative to the cgroups mount point"."""
    name, made = parent
    own = cgroups.own_cgroups()
    hs = cgroups.hierarchies()
    # the deepest own cgroup: an absolute path below it is below ours in every hierarchy
    base = max((own.get(h.key, "/") for h in hs), key=len)
    if any(not base.startswith(own.get(h.key, "/").rstrip("/") + "/")
           and base != own.get(h.key, "/") for h in hs):
        pytest.skip("no absolute path is below this process's cgroup in every hierarchy")
    if V2:
        base = os.path.dirname(base) if base != "/" else base
    path = os.path.normpath("/" + f"{base}/{name}/{cid}".lstrip("/"))
    for h in hs:
        d = os.path.normpath(f"{h.mountpoint}/{os.path.dirname(path)}")
        while not os.path.isdir(d):  # what the test makes, it removes
            made.append(d)
            d = os.path.dirname(d)
    write_config(bundle, _cfg(SLEEP, path))
    create(pyoci, bundle, cid)
    for h in hs:
        assert cgroups.own_cgroups(_init_pid(pyoci, cid))[h.key] == path, h


def test_create_in_a_non_empty_cgroup_is_an_error(pyoci, new_bundle, cid, parent):
    """"MUST generate an error if such a check fails. For example ... (for create
    operation) a non-empty cgroup"."""
    name, _ = parent
    a, b = new_bundle(), new_bundle()
    write_config(a, _cfg(SLEEP, f"{name}/{cid}"))
    create(pyoci, a, cid)
    start(pyoci, cid)
    write_config(b, _cfg(SLEEP, f"{name}/{cid}"))
    r = pyoci("create", "--bundle", b, f"{cid}-b")
    assert r.returncode != 0
    assert not os.path.exists(os.path.join(pyoci.root, f"{cid}-b"))
    assert json.loads(pyoci("state", cid).stdout)["status"] == "running"


def test_create_in_a_frozen_cgroup_is_an_error(pyoci, bundle, cid, parent):
    """"MUST generate an error if such a check fails. For example, a frozen cgroup"."""
    name, made = parent
    dirs = cgroups.resolve_dirs(f"{name}/{cid}", cid)
    if V2:
        (d,) = dirs.values()
        freeze, value = os.path.join(d, "cgroup.freeze"), "1"
    else:
        d = next((v for k, v in dirs.items() if k.endswith("/freezer")), None)
        if d is None:
            pytest.skip("no freezer hierarchy")
        freeze, value = os.path.join(d, "freezer.state"), "FROZEN"
    os.makedirs(d)
    made.append(d)
    with open(freeze, "w") as f:  # our own, new cgroup
        f.write(value)
    write_config(bundle, _cfg(SLEEP, f"{name}/{cid}"))
    r = pyoci("create", "--bundle", bundle, cid)
    assert r.returncode != 0 and "frozen" in r.stderr
    assert not os.path.exists(os.path.join(pyoci.root, cid))


@pytest.mark.parametrize("deny_first", [True, False])
def test_device_rules_apply_in_listed_order(pyoci, bundle, cid, parent, deny_first):
    """devices: "The runtime MUST apply entries in the listed order": deny-all then allow
    1:3 lets /dev/null be opened; allow 1:3 then deny-all does not."""
    name, _ = parent
    deny = {"allow": False, "access": "rwm"}
    allow = {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}
    script = "if echo x > /dev/null; then echo null=ok; else echo null=denied; fi"
    cfg = _cfg(["sh", "-c", script], f"{name}/{cid}",
               {"devices": [deny, allow] if deny_first else [allow, deny]})
    # naming /dev/null here drops runc's default rule for it
    cfg["linux"]["devices"] = [{"path": "/dev/null", "type": "c", "major": 1, "minor": 3}]
    write_config(bundle, cfg)
    r = pyoci("run", "--bundle", bundle, cid)
    assert r.returncode == 0, r.stderr
    assert ("null=ok" if deny_first else "null=denied") in r.stdout, r.stdout


def test_check_before_update_rejects_a_limit_below_usage(pyoci, bundle, cid, parent):
    """memory.checkBeforeUpdate: "If enabled (true), runtime ... MUST reject the new limit"
    lower than the current usage."""
    name, _ = parent
    hold = "awk 'BEGIN { s = \"x\"; for (i = 0; i < 23; i++) s = s s; system(\"sleep 1000\") }'"
    write_config(bundle, _cfg(["sh", "-c", hold], f"{name}/{cid}",
                              {"memory": {"limit": 256 << 20}}))
    create(pyoci, bundle, cid)
    start(pyoci, cid)
    pid = _init_pid(pyoci, cid)
    usage_file = _file(pid, "memory", "memory.current" if V2 else "memory.usage_in_bytes")
    deadline = time.monotonic() + 20
    while int(_read(usage_file)) < 4 << 20 and time.monotonic() < deadline:
        time.sleep(0.1)
    low = {"memory": {"limit": 2 << 20, "checkBeforeUpdate": True}}
    r = pyoci("update", "-r", "-", cid, input=json.dumps(low))
    assert r.returncode != 0, "a limit below the usage was accepted"
    limit = _file(pid, "memory", "memory.max" if V2 else "memory.limit_in_bytes")
    assert _read(limit) == str(256 << 20)
    assert json.loads(pyoci("state", cid).stdout)["status"] == "running"


def test_pids_limit_zero_is_a_limit(pyoci, bundle, cid, parent):
    """pids.limit: "0 is a valid limit value ... and SHOULD be treated as such": init runs
    (it needs no fork), the shell's first fork fails."""
    name, _ = parent
    write_config(bundle, _cfg(["sh", "-c", "echo before-fork; sleep 0; echo after-fork"],
                              f"{name}/{cid}", {"pids": {"limit": 0}}))
    r = pyoci("run", "--keep", "--bundle", bundle, cid)
    assert "before-fork" in r.stdout and "after-fork" not in r.stdout, r.stdout
    d = next(d for mnt, d in cgroups.resolve_dirs(f"{name}/{cid}", cid).items()
             if V2 or mnt.endswith("/pids"))
    assert _read(os.path.join(d, "pids.max")) == "0"


def test_unified_unknown_configuration_is_still_written(pyoci, bundle, cid, parent):
    """unified: "Configuration unknown to the runtime MUST still be written to the relevant
    file" (a core cgroup file pyoci knows nothing of)."""
    name, _ = parent
    if not any(h.version == 2 for h in cgroups.hierarchies()):
        pytest.skip("no cgroup v2 mount")
    write_config(bundle, _cfg(SLEEP, f"{name}/{cid}",
                              {"unified": {"cgroup.max.descendants": "3"}}))
    create(pyoci, bundle, cid)
    v2dir = next(d for mnt, d in proc_cgroups(_init_pid(pyoci, cid)).items()
                 if any(h.mountpoint == mnt and h.version == 2 for h in cgroups.hierarchies()))
    assert _read(os.path.join(v2dir, "cgroup.max.descendants")) == "3"
    delete_force(pyoci, cid)


def delete_force(pyoci, cid: str) -> None:
    assert pyoci("delete", "--force", cid).returncode == 0


@pytest.mark.skipif(not V2, reason="enabling controllers is a cgroup v2 matter")
def test_unified_needed_controllers_are_enabled(pyoci, bundle, cid, parent):
    """unified: "The OCI runtime MUST ensure that the needed cgroup controllers are
    enabled for the cgroup"."""
    name, _ = parent
    write_config(bundle, _cfg(SLEEP, f"{name}/{cid}", {"unified": {"pids.max": "9"}}))
    create(pyoci, bundle, cid)
    assert _read(_file(_init_pid(pyoci, cid), "pids", "pids.max")) == "9"
    delete_force(pyoci, cid)


def test_unified_missing_controller_is_an_error(pyoci, bundle, cid, parent):
    """unified: "The runtime MUST generate an error when the configuration refers to a
    cgroup controller that is not present or that cannot be enabled"."""
    name, _ = parent
    write_config(bundle, _cfg(["true"], f"{name}/{cid}", {"unified": {"nosuch.max": "1"}}))
    r = pyoci("run", "--bundle", bundle, cid)
    assert r.returncode != 0 and "nosuch" in r.stderr
    assert not os.path.exists(os.path.join(pyoci.root, cid))


@pytest.mark.skipif(not V2, reason="v1-to-v2 conversion happens on cgroup v2 hosts")
def test_unconvertible_v1_configuration_is_an_error(pyoci, bundle, cid, parent):
    """unified: "If the conversion is not possible the runtime MUST generate an error":
    realtime CPU limits have no cgroup v2 equivalent."""
    name, _ = parent
    write_config(bundle, _cfg(["true"], f"{name}/{cid}",
                              {"cpu": {"realtimeRuntime": 1000, "realtimePeriod": 100000}}))
    r = pyoci("run", "--bundle", bundle, cid)
    assert r.returncode != 0 and "realtime" in r.stderr
    assert not os.path.exists(os.path.join(pyoci.root, cid))


def test_cpu_burst_larger_than_quota_is_an_error(pyoci, bundle, cid, parent):
    """cpu.quota: "If specified with any (valid) positive value, it MUST be no smaller than
    burst (runtimes MAY generate an error)"."""
    name, _ = parent
    write_config(bundle, _cfg(["true"], f"{name}/{cid}",
                              {"cpu": {"quota": 10000, "burst": 20000, "period": 100000}}))
    r = pyoci("run", "--bundle", bundle, cid)
    assert r.returncode != 0 and "burst" in r.stderr
