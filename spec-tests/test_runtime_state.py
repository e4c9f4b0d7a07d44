"""runtime.md, "State": the state a runtime reports for a container.

https://github.com/opencontainers/runtime-spec/blob/v1.3.0/runtime.md#state
"""

from __future__ import annotations

import json
import os

from spec_support import (
    Box,
    HookLog,
    base_config,
    create,
    delete,
    hook_for,
    kill,
    schema_errors,
    script_config,
    start,
    state,
    wait_for,
    wait_status,
    write_config,
)

SPEC_STATUSES = {"creating", "created", "running", "stopped"}


def test_state_id_is_unique_across_containers(pyoci, new_bundle, cid):
    """State: the id "MUST be unique across all containers on this host"."""
    a, b = new_bundle(["sleep", "30"]), new_bundle(["sleep", "30"])
    other = f"{cid}-2"
    create(pyoci, a, cid)
    create(pyoci, b, other)
    assert state(pyoci, cid)["id"] == cid
    assert state(pyoci, other)["id"] == other
    # a second container may not take an id in use: the first keeps it
    r = pyoci("create", "--bundle", b, cid)
    assert r.returncode != 0, "a second container was created with an id already in use"
    s = state(pyoci, cid)
    assert s["id"] == cid and os.path.samefile(s["bundle"], a)


def test_state_status_values_are_the_spec_values_in_each_phase(pyoci, bundle, cid):
    """State: additional status values "MUST be used to represent new runtime states not
    defined above": created, running and stopped are reported with the spec's values."""
    write_config(bundle, base_config(["sleep", "30"]))
    create(pyoci, bundle, cid)
    assert state(pyoci, cid)["status"] == "created"
    start(pyoci, cid)
    assert state(pyoci, cid)["status"] == "running"
    kill(pyoci, cid, "KILL")
    s = wait_status(pyoci, cid, "stopped", timeout=10)
    assert s["status"] in SPEC_STATUSES
    delete(pyoci, cid)


def test_state_pid_is_required_when_created_or_running(pyoci, bundle, cid):
    """State: pid is "REQUIRED when status is created or running on Linux", and is the
    container process (as seen by the runtime)."""
    write_config(bundle, base_config(["sleep", "30"]))
    create(pyoci, bundle, cid)
    created = state(pyoci, cid)
    assert isinstance(created.get("pid"), int) and created["pid"] > 0
    pid = created["pid"]
    # the container process lives in the container's namespaces, not the runtime's
    assert os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
    start(pyoci, cid)
    running = state(pyoci, cid)
    assert running.get("pid") == pid
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[0] == b"sleep"
    kill(pyoci, cid, "KILL")
    wait_status(pyoci, cid, "stopped")
    delete(pyoci, cid)


def test_state_bundle_is_absolute_path(pyoci, bundle, cid):
    """State: bundle (REQUIRED) "is the absolute path to the container's bundle directory",
    also when the caller named the bundle by a relative path."""
    parent, name = os.path.split(bundle)
    r = pyoci("create", "--bundle", name, cid, cwd=parent)
    assert r.returncode == 0, r.stderr
    s = state(pyoci, cid)
    assert os.path.isabs(s["bundle"])
    assert os.path.samefile(s["bundle"], bundle)
    delete_r = pyoci("delete", "--force", cid)
    assert delete_r.returncode == 0, delete_r.stderr


def test_state_json_adheres_to_state_schema(pyoci, bundle, cid):
    """State: "When serialized in JSON, the format MUST adhere to the JSON Schema
    schema/state-schema.json" (checked when created, running and stopped)."""
    cfg = base_config(["sleep", "30"])
    cfg["annotations"] = {"org.example.key": "value"}
    write_config(bundle, cfg)
    create(pyoci, bundle, cid)
    seen = [state(pyoci, cid)]
    start(pyoci, cid)
    seen.append(state(pyoci, cid))
    kill(pyoci, cid, "KILL")
    seen.append(wait_status(pyoci, cid, "stopped"))
    delete(pyoci, cid)
    for s in seen:
        assert schema_errors(s) == [], f"{s['status']}: {schema_errors(s)}"
        for key in ("ociVersion", "id", "status", "bundle"):
            assert key in s


def test_state_annotations_are_the_configured_annotations(pyoci, bundle, cid):
    """State: annotations "contains the list of annotations associated with the container"
    (absent or empty when none were configured)."""
    cfg = base_config(["true"])
    cfg["annotations"] = {"org.example.a": "1", "org.example.b": ""}
    write_config(bundle, cfg)
    create(pyoci, bundle, cid)
    assert state(pyoci, cid).get("annotations") == cfg["annotations"]
    delete_r = pyoci("delete", "--force", cid)
    assert delete_r.returncode == 0
    write_config(bundle, base_config(["true"]))
    create(pyoci, bundle, cid)
    assert state(pyoci, cid).get("annotations", {}) == {}
    assert pyoci("delete", "--force", cid).returncode == 0


def test_state_status_is_creating_while_create_runs(pyoci, bundle, cid):
    """State: status "creating: the container is being created (step 2 in the lifecycle)"
    (definition): queried while create waits on a slow createRuntime hook."""
    box = Box(bundle)
    log = HookLog(box)
    cfg = script_config("sleep 30", box)
    cfg["hooks"] = {"createRuntime": [hook_for("createRuntime", bundle, box, sleep=3)]}
    write_config(bundle, cfg)
    creating = pyoci.popen("create", "--bundle", bundle, cid)
    wait_for(lambda: log.ran("createRuntime") or creating.poll() is not None,
             "the createRuntime hook to start", 20)
    assert creating.poll() is None, "create finished before the hook could be observed"
    r = pyoci("state", cid)
    assert creating.poll() is None, "state waited for create to finish"
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["status"] == "creating"
    assert schema_errors(s) == [], schema_errors(s)
    assert creating.wait(timeout=30) == 0
    assert state(pyoci, cid)["status"] == "created"
