"""The cgroup v2 device filter itself, without a container: a BPF_PROG_TYPE_CGROUP_DEVICE
program attached to a fresh cgroup (under this process's own, in the cgroup2 mount: on
a hybrid host, the v2 hierarchy beside the v1 controllers) decides a child's opens."""

from __future__ import annotations

import os
import secrets

import pytest
from cgroup_support import remove_parent

from pyoci import cgroups
from pyoci.cgroups.devices_bpf import apply_rules


def _v2_mount() -> str | None:
    return next((h.mountpoint for h in cgroups.hierarchies() if h.version == 2), None)


@pytest.fixture
def v2_cgroup():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    mnt = _v2_mount()
    if mnt is None:
        pytest.skip("no cgroup2 mount")
    name = f"pyoci-test-{secrets.token_hex(4)}"
    d = cgroups.resolve_dirs(f"{name}/dev", "dev")[mnt]
    os.makedirs(d)
    try:
        yield d
    finally:
        remove_parent(name)


def _opens_in(cgroup_dir: str, attempts: list[tuple[str, int]]) -> list[str]:
    """Fork a child into the cgroup; what each open gives it."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            with open(os.path.join(cgroup_dir, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
            out = []
            for path, flags in attempts:
                try:
                    os.close(os.open(path, flags))
                    out.append("ok")
                except OSError as e:
                    out.append(e.strerror or "error")
            os.write(w, "\n".join(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 4096):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return data.decode().split("\n")


def test_allow_list_program(v2_cgroup):
    apply_rules(v2_cgroup, [["a", -1, -1, "rwm", False], ["c", 1, 5, "r", True]])
    got = _opens_in(v2_cgroup, [("/dev/zero", os.O_RDONLY), ("/dev/zero", os.O_WRONLY),
                                ("/dev/null", os.O_RDONLY)])
    assert got == ["ok", "Operation not permitted", "Operation not permitted"]


def test_deny_list_program_denies_any_overlap(v2_cgroup):
    apply_rules(v2_cgroup, [["a", -1, -1, "rwm", True], ["c", 1, 5, "r", False]])
    got = _opens_in(v2_cgroup, [("/dev/zero", os.O_WRONLY), ("/dev/zero", os.O_RDWR),
                                ("/dev/null", os.O_RDWR)])
    assert got == ["ok", "Operation not permitted", "ok"]


def test_a_new_program_replaces_the_old(v2_cgroup):
    from pyoci import syscalls as sc

    apply_rules(v2_cgroup, [["a", -1, -1, "rwm", False]])
    apply_rules(v2_cgroup, [["a", -1, -1, "rwm", True]])
    fd = os.open(v2_cgroup, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert len(sc.bpf_prog_query(fd, sc.BPF_CGROUP_DEVICE)) == 1
    finally:
        os.close(fd)
    assert _opens_in(v2_cgroup, [("/dev/null", os.O_RDONLY)]) == ["ok"]
