"""cgroups without a cgroup: path rules, runc's conversions, the devices emulator."""

from __future__ import annotations

import struct

import pytest

from pyoci import cgroups
from pyoci.cgroups import CgroupError, Hierarchy
from pyoci.cgroups.devices_bpf import compile_rules
from pyoci.cgroups.resources import (
    DeviceRules,
    blkio_to_io_weight,
    from_spec,
    shares_to_weight,
    swap_to_v2,
)


@pytest.mark.parametrize("path,cleaned", [
    ("", ""), ("a/b", "a/b"), ("../../a", "a"), ("/a/../../b/", "/b"), ("/", "/"),
    (".", ""), ("a/./b//c", "a/b/c"),
])
def test_clean_path_like_runc(path, cleaned):
    assert cgroups.clean_path(path) == cleaned


def test_inner_path_defaults_to_the_container_id():
    assert cgroups.inner_path(None, "c1") == "c1"
    assert cgroups.inner_path("", "c1") == "c1"
    assert cgroups.inner_path("/x/y", "c1") == "/x/y"


def _resolve(monkeypatch, hs, own, path, cid="c1"):
    monkeypatch.setattr(cgroups, "own_cgroups", lambda pid="self": own)
    return cgroups.resolve_dirs(path, cid, hs)


def test_resolve_v1_relative_is_below_own_cgroup_absolute_below_mount(monkeypatch):
    hs = [Hierarchy("/sys/fs/cgroup/memory", "/", 1, frozenset({"memory"})),
          Hierarchy("/sys/fs/cgroup/cpu,cpuacct", "/", 1, frozenset({"cpu", "cpuacct"}))]
    own = {"memory": "/user/me", "cpu,cpuacct": "/"}
    rel = _resolve(monkeypatch, hs, own, "p/c1")
    assert rel == {"/sys/fs/cgroup/memory": "/sys/fs/cgroup/memory/user/me/p/c1",
                   "/sys/fs/cgroup/cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct/p/c1"}
    assert _resolve(monkeypatch, hs, own, "")["/sys/fs/cgroup/memory"] == \
        "/sys/fs/cgroup/memory/user/me/c1"
    ab = _resolve(monkeypatch, hs, own, "/a/b")
    assert ab["/sys/fs/cgroup/memory"] == "/sys/fs/cgroup/memory/a/b"


def test_resolve_v2_relative_is_below_the_parent_of_own_cgroup(monkeypatch):
    hs = [Hierarchy("/sys/fs/cgroup", "/", 2, frozenset())]
    got = _resolve(monkeypatch, hs, {"": "/user.slice/session.scope"}, "p/c1")
    assert got == {"/sys/fs/cgroup": "/sys/fs/cgroup/user.slice/p/c1"}
    # mounted with a root (inside a cgroup namespace): paths are relative to it
    hs = [Hierarchy("/sys/fs/cgroup", "/ctr", 2, frozenset())]
    got = _resolve(monkeypatch, hs, {"": "/ctr/init"}, "c1")
    assert got == {"/sys/fs/cgroup": "/sys/fs/cgroup/c1"}


def test_resolve_refuses_the_root_and_the_runtimes_own_cgroup(monkeypatch):
    hs = [Hierarchy("/sys/fs/cgroup", "/", 2, frozenset())]
    with pytest.raises(CgroupError, match="root of the hierarchy"):
        _resolve(monkeypatch, hs, {"": "/a/b"}, "/")
    with pytest.raises(CgroupError, match="holds the runtime"):
        _resolve(monkeypatch, hs, {"": "/a/b"}, "/a")


def test_mode():
    v1 = Hierarchy("/sys/fs/cgroup/memory", "/", 1, frozenset({"memory"}))
    v2 = Hierarchy("/sys/fs/cgroup/unified", "/", 2, frozenset())
    assert cgroups.mode([v1, v2]) == "hybrid"
    assert cgroups.mode([v1]) == "legacy"
    assert cgroups.mode([Hierarchy("/sys/fs/cgroup", "/", 2, frozenset())]) == "unified"
    assert cgroups.mode([]) == "none"


@pytest.mark.parametrize("shares,weight", [
    (0, 0), (1, 1), (2, 1), (1024, 100), (262144, 10000), (300000, 10000), (512, 59),
    (2048, 174),
])
def test_shares_to_weight_runcs_curve(shares, weight):
    assert shares_to_weight(shares) == weight


def test_blkio_to_io_weight():
    assert blkio_to_io_weight(0) == 0
    assert blkio_to_io_weight(10) == 1
    assert blkio_to_io_weight(1000) == 10000
    assert blkio_to_io_weight(500) == 1 + 490 * 9999 // 990


@pytest.mark.parametrize("swap,memory,v2", [
    (0, -1, -1), (-1, 100, -1), (0, 100, 0), (300, 100, 200), (100, 100, 0),
])
def test_swap_to_v2(swap, memory, v2):
    assert swap_to_v2(swap, memory) == v2


@pytest.mark.parametrize("swap,memory,msg", [
    (300, 0, "without memory limit"), (50, 100, "should be >= memory limit"),
])
def test_swap_to_v2_errors(swap, memory, msg):
    with pytest.raises(CgroupError, match=msg):
        swap_to_v2(swap, memory)


def _res(**resources):
    return from_spec({"linux": {"resources": resources}})


def test_from_spec_maps_fields_and_appends_default_devices():
    res = _res(memory={"limit": 10, "swap": 20}, cpu={"shares": 1024, "quota": -1},
               pids={"limit": 0}, unified={"memory.high": "5"})
    assert res["memory"] == 10 and res["memory_swap"] == 20
    assert res["cpu_shares"] == 1024 and res["cpu_weight"] == 100 and res["cpu_quota"] == -1
    assert res["pids_limit"] == 0  # 0 is a limit, not "unset"
    assert res["unified"] == {"memory.high": "5"}
    assert ["c", 1, 3, "rwm", True] in res["devices"]
    # a config naming /dev/null drops runc's default rule for it
    res = from_spec({"linux": {"devices": [{"path": "/dev/null", "type": "c", "major": 1,
                                            "minor": 3}]}})
    assert ["c", 1, 3, "rwm", True] not in res["devices"]


@pytest.mark.parametrize("resources,field", [
    ({"cpu": {"quota": 10, "burst": 20}}, "cpu.burst"),
    ({"memory": {"swappiness": 101}}, "memory.swappiness"),
    ({"memory": {"limit": 100, "swap": 50}}, "memory.swap"),
    ({"cpu": {"idle": 2}}, "cpu.idle"),
    ({"unified": {"a/b": "1"}}, "unified['a/b']"),
    ({"unified": {"nodot": "1"}}, "unified['nodot']"),
    ({"devices": [{"allow": True, "access": "rwx"}]}, "devices[0].access"),
    ({"devices": [{"allow": True, "type": "p", "access": "r"}]}, "devices[0].type"),
    ({"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]}, "hugepageLimits[0].pageSize"),
])
def test_from_spec_rejects_naming_the_field(resources, field):
    with pytest.raises(CgroupError, match=r"^linux\.resources\." + field.replace("[", r"\[")
                       .replace("]", r"\]").replace(".", r"\.")):
        _res(**resources)


def test_device_rules_follow_v1_semantics():
    rules = DeviceRules.build([["a", -1, -1, "rwm", False], ["c", 1, 3, "rw", True],
                               ["c", 1, 3, "m", True], ["c", 1, 3, "w", False]])
    assert not rules.default_allow
    assert rules.sorted_exceptions() == [("c", 1, 3, "rm")]
    assert rules.v1_lines() == [("devices.deny", "a"), ("devices.allow", "c 1:3 rm")]
    rules = DeviceRules.build([["c", 1, 3, "rw", True], ["a", -1, -1, "rwm", True],
                               ["b", 8, -1, "w", False]])
    assert rules.default_allow and rules.sorted_exceptions() == [("b", 8, -1, "w")]
    assert rules.v1_lines() == [("devices.allow", "a"), ("devices.deny", "b 8:* w")]


def test_device_rules_refuse_punching_a_hole_in_a_wildcard():
    with pytest.raises(CgroupError, match=r"devices\[2\].*punch a hole"):
        DeviceRules.build([["a", -1, -1, "rwm", False], ["c", 1, -1, "rw", True],
                           ["c", 1, 5, "r", False]])


def _decode(program: bytes):
    return [struct.unpack("<BBhi", program[i:i + 8]) for i in range(0, len(program), 8)]


def test_bpf_program_shape():
    allow_list = DeviceRules.build([["a", -1, -1, "rwm", False], ["c", 1, 3, "rw", True]])
    insns = _decode(compile_rules(allow_list))
    assert insns[-1][0] == 0x95 and insns[-2] == (0xB4, 0, 0, 0)  # default: deny
    ops = {(code, regs, imm) for code, regs, _off, imm in insns}
    # type is char, all the access asked (r|w here) covered, major 1, minor 3: allow
    assert (0x55, 2, 2) in ops  # jne r2 (type) != BPF_DEVCG_DEV_CHAR
    assert (0x5D, 0x31, 0) in ops  # jne r1 (r3 & rule access) != r3
    assert (0x55, 4, 1) in ops and (0x55, 5, 3) in ops
    deny_list = DeviceRules.build([["a", -1, -1, "rwm", True], ["b", -1, -1, "w", False]])
    insns = _decode(compile_rules(deny_list))
    assert insns[-2] == (0xB4, 0, 0, 1)  # default: allow
    ops = {(code, regs, imm) for code, regs, _off, imm in insns}
    assert (0x15, 1, 0) in ops  # jeq r1 == 0: no overlap with the denied access
    # every jump lands inside the program
    for i, (code, _regs, off, _imm) in enumerate(insns):
        if code in (0x55, 0x15, 0x5D):
            assert 0 <= i + 1 + off < len(insns)
