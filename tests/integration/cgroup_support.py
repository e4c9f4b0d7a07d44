"""Helpers for the cgroup tests, on a hybrid host and in the cgroup-v2 lane alike.

Containers get ``linux.cgroupsPath = "<parent>/<cid>"`` with ``<parent>`` a fresh
``pyoci-test-<hex>`` (the ``cgparent`` fixture): a relative path, so their cgroups are
under the test process's own cgroup in every v1 hierarchy (and under its parent on
pure v2, as runc reads relative paths).  Teardown force-deletes the test's containers,
then removes ``<parent>`` everywhere, also when the test failed.  Nothing here writes
to a cgroup file the test did not create.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time

import pytest

from pyoci import cgroups

MODE = cgroups.mode()
V2 = MODE == "unified"


@pytest.fixture(name="cgparent")
def cgparent_fixture(pyoci):
    """A fresh relative cgroup parent name; removed (with what is left in it) afterwards."""
    name = f"pyoci-test-{secrets.token_hex(4)}"
    yield name
    for cid in os.listdir(pyoci.root):
        pyoci("delete", "--force", cid)
    remove_parent(name)


def parent_dirs(name: str) -> list[str]:
    probe = cgroups.resolve_dirs(f"{name}/probe", "probe")
    return [os.path.dirname(d) for d in probe.values()]


def remove_parent(name: str) -> None:
    for d in parent_dirs(name):
        if not os.path.isdir(d):
            continue
        deadline = time.monotonic() + 10
        while True:
            pids = cgroups.cgroup_pids(d)
            for pid in pids:  # only ever processes in the test's own cgroup
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                cgroups.remove_dir(d, timeout=0.5)
                break
            except cgroups.CgroupError:
                if time.monotonic() > deadline:
                    raise


def config(base_config, args: list[str], resources: dict | None = None,
           parent: str | None = None, cid: str | None = None, **linux) -> dict:
    """``base_config(args)`` with ``resources`` merged in and cgroupsPath ``parent/cid``."""
    cfg = base_config(args)
    if resources:
        cfg["linux"]["resources"] = {**cfg["linux"]["resources"], **resources}
    if parent is not None:
        cfg["linux"]["cgroupsPath"] = f"{parent}/{cid}"
    cfg["linux"].update(linux)
    return cfg


def stored(pyoci, cid: str) -> dict:
    with open(os.path.join(pyoci.root, cid, "state.json")) as f:
        return json.load(f)


def manager(pyoci, cid: str):
    return cgroups.load_manager(stored(pyoci, cid))


def cgfile(pyoci, cid: str, controller: str, name: str) -> str:
    """The path of a control file of the container's cgroup."""
    m = manager(pyoci, cid)
    if m.version == 2:
        return os.path.join(m.path, name)
    d = m.dir_of(controller)
    if d is None:
        d = m.unified.path
    return os.path.join(d, name)


def read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def leaf_dirs(parent: str, cid: str) -> list[str]:
    return list(cgroups.resolve_dirs(f"{parent}/{cid}", cid).values())


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def one_line_error(r, *fragments: str) -> str:
    assert r.returncode != 0, f"expected a failure, got exit 0: {r.stdout}"
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got: {r.stderr!r}"
    for frag in fragments:
        assert frag in lines[0], f"{frag!r} not in {lines[0]!r}"
    return lines[0]
