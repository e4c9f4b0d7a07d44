"""Unit tests of the security checks that run before anything is created: capability
names, seccomp compilation, user namespace mappings, LSM labels, /proc mount checks."""

from __future__ import annotations

import os
import struct

import pytest

from pyoci import capabilities, final, lsm, seccomp, userns
from pyoci.errors import ConfigError, PyociError

# --- capabilities ----------------------------------------------------------------------


def test_parse_sets_and_masks():
    caps = capabilities.parse({"bounding": ["CAP_KILL", "CAP_CHOWN"],
                               "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"],
                               "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"]})
    assert caps.bounding == {5, 0} and caps.ambient == {5}
    assert caps.words() == [1 << 5, 0, 1 << 5, 0, 1 << 5, 0]


def test_parse_missing_means_empty():
    assert capabilities.parse(None) == capabilities.CapSets()
    assert capabilities.parse({"bounding": ["CAP_KILL"]}).effective == frozenset()


def test_ambient_needs_permitted_and_inheritable():
    caps = capabilities.parse({"permitted": ["CAP_KILL"], "ambient": ["CAP_KILL"]})
    assert caps.ambient == frozenset()


@pytest.mark.parametrize("name", ["CAP_MAKE_COFFEE", "kill", "cap_kill", "", 5])
def test_unknown_capability(name):
    with pytest.raises(ConfigError, match="unknown capability"):
        capabilities.parse({"effective": [name]})


def test_names_of_a_mask():
    assert capabilities.names(0x20000420) == ["CAP_KILL", "CAP_NET_BIND_SERVICE",
                                              "CAP_AUDIT_WRITE"]


# --- seccomp ---------------------------------------------------------------------------


def _compile(**kw):
    return seccomp.compile_filter({"defaultAction": "SCMP_ACT_ALLOW", **kw})


def test_compile_basic_and_unknown_syscalls_skipped():
    f = _compile(syscalls=[{"names": ["mkdir", "no_such_call"], "action": "SCMP_ACT_ERRNO"}])
    assert f.instructions > 4 and f.skipped == ["no_such_call"] and not f.notify


def test_rule_equal_to_default_is_skipped():
    a = _compile()
    b = _compile(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_ALLOW"}])
    assert a.bpf == b.bpf


def test_notify_sets_new_listener():
    f = _compile(listenerPath="/x", syscalls=[{"names": ["mkdir"],
                                                "action": "SCMP_ACT_NOTIFY"}])
    assert f.notify and f.flags & seccomp.FLAG_NEW_LISTENER and f.listener_path == "/x"


def test_wait_killable_only_with_a_listener():
    flag = ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    assert _compile(flags=flag).flags == 0
    f = _compile(flags=flag, listenerPath="/x",
                 syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}])
    assert f.flags & seccomp.FLAG_WAIT_KILLABLE_RECV


def test_architectures_grow_the_filter():
    one = _compile(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}])
    three = _compile(architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                     syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}])
    assert three.instructions > one.instructions


@pytest.mark.parametrize("cfg,needle", [
    ({"defaultAction": "SCMP_ACT_NOTIFY"}, "default action"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1}, "errnoRet"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": -1}, "errnoRet"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]}, "errnoRet"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}, "listenerPath"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x", "syscalls": [
        {"names": ["sendmsg"], "action": "SCMP_ACT_NOTIFY"}]}, "sendmsg"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 6, "op": "SCMP_CMP_EQ", "value": 1}]}]}, "index"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "op": "SCMP_CMP_EQ", "value": -1}]}]}, "value"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "x"}]},
     "names"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_PDP11"]},
     "architecture"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]}, "flag"),
])
def test_compile_errors(cfg, needle):
    with pytest.raises(ConfigError, match=needle):
        seccomp.compile_filter(cfg)


def test_final_control_layout():
    f = _compile(syscalls=[{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}])
    ctl = final.final_control("/bin/sh", filt=f, report_fd=7, keep_fds=5,
                              caps_words=[1, 0, 2, 0, 4, 0], drop_bounding=1 << 21)
    hdr = struct.unpack_from("=IIIIIIIIiiiI6I2I", ctl)
    assert hdr[0] == 0x58454F50 and hdr[1] == 2
    assert hdr[2] == 1 | 4 and hdr[4] == f.instructions and hdr[7] == 8
    assert hdr[9] == 7 and hdr[11] == 5 and hdr[18] == 1 << 21
    body = ctl[struct.calcsize("=IIIIIIIIiiiI6I2I"):]
    assert body[:8] == b"/bin/sh\0" and body[8:] == f.bpf


def test_trampoline_is_a_static_elf_in_a_sealed_memfd():
    import fcntl

    fd = final.trampoline_fd()
    assert fd is not None
    try:
        assert os.pread(fd, 4, 0) == b"\x7fELF"
        seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
        assert seals & fcntl.F_SEAL_WRITE and seals & fcntl.F_SEAL_SEAL
        with pytest.raises(OSError):
            os.pwrite(fd, b"x", 0)
    finally:
        os.close(fd)


# --- user namespaces -------------------------------------------------------------------


def _cfg(user=True, uid=None, gid=None, process_uid=0):
    linux = {"namespaces": [{"type": "mount"}] + ([{"type": "user"}] if user else [])}
    if uid is not None:
        linux["uidMappings"] = uid
    if gid is not None:
        linux["gidMappings"] = gid
    return {"linux": linux, "process": {"user": {"uid": process_uid, "gid": 0}}}


M = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def test_valid_mappings():
    userns.check(_cfg(uid=M, gid=M), rootless=False)


@pytest.mark.parametrize("uid,needle", [
    ([{"containerID": 0, "hostID": 1, "size": 0}], "size"),
    ([{"containerID": 0, "hostID": 1, "size": 10}, {"containerID": 5, "hostID": 50,
                                                    "size": 10}], "overlap"),
    ([{"containerID": 0, "hostID": 1, "size": 10}, {"containerID": 50, "hostID": 5,
                                                    "size": 10}], "overlap"),
    ([{"containerID": 0, "hostID": 2**32 - 1, "size": 2}], "32-bit"),
    ([{"containerID": -1, "hostID": 1, "size": 1}], "containerID"),
    ([{"containerID": 1, "hostID": 1, "size": 1}], "not mapped"),
])
def test_bad_mappings(uid, needle):
    with pytest.raises(ConfigError, match=needle):
        userns.check(_cfg(uid=uid, gid=M), rootless=False)


def test_mapping_rules_of_runc():
    with pytest.raises(ConfigError, match="isn't enabled"):
        userns.check(_cfg(user=False, uid=M, gid=M), rootless=False)
    with pytest.raises(ConfigError, match="no namespace path"):
        userns.check(_cfg(), rootless=False)
    with pytest.raises(ConfigError, match="requires user namespaces"):
        userns.check(_cfg(user=False), rootless=True)
    with pytest.raises(ConfigError, match="GID mapping"):
        userns.check(_cfg(uid=M), rootless=True)


def test_rootless_setting():
    assert userns.is_rootless("true") and not userns.is_rootless("false")
    assert userns.is_rootless("auto") == (os.geteuid() != 0 or userns.in_user_namespace())


def test_make_userns_writes_the_mapping():
    fd = userns.make_userns([{"containerID": 0, "hostID": 100000, "size": 10}],
                            [{"containerID": 0, "hostID": 100000, "size": 10}])
    try:
        assert os.fstat(fd).st_ino != os.stat("/proc/self/ns/user").st_ino
    finally:
        os.close(fd)


# --- LSM, /proc mounts -------------------------------------------------------------------


def test_lsm_labels_without_the_lsm():
    if not lsm.apparmor_enabled():
        with pytest.raises(ConfigError, match="AppArmor is not enabled"):
            lsm.check({"process": {"apparmorProfile": "p"}})
    if not lsm.selinux_enabled():
        with pytest.raises(ConfigError, match="selinux is disabled"):
            lsm.check({"process": {"selinuxLabel": "l"}})
        with pytest.raises(ConfigError, match="selinux is disabled"):
            lsm.check({"linux": {"mountLabel": "l"}})
    lsm.check({"process": {}})


def test_proc_mount_checks(tmp_path):
    from pyoci import rootfs

    (tmp_path / "proc").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "sneaky").symlink_to("/proc/sys")
    root = rootfs.Rootfs(str(tmp_path))
    try:
        bind = rootfs.MountOptions(["rbind"])
        plain = rootfs.MountOptions([])
        rootfs.check_proc_mount(root, "/proc", "proc", plain, "proc", str(tmp_path))
        rootfs.check_proc_mount(root, "/elsewhere", "tmpfs", plain, "tmpfs", str(tmp_path))
        rootfs.check_proc_mount(root, "/proc/cpuinfo", "", bind, "/x", str(tmp_path))
        with pytest.raises(PyociError, match="not of type proc"):
            rootfs.check_proc_mount(root, "/proc", "tmpfs", plain, "tmpfs", str(tmp_path))
        with pytest.raises(PyociError, match="not of type proc"):
            rootfs.check_proc_mount(root, "/proc", "", bind, str(tmp_path), str(tmp_path))
        with pytest.raises(PyociError, match="inside /proc"):
            rootfs.check_proc_mount(root, "/sneaky/kernel", "tmpfs", plain, "t",
                                    str(tmp_path))
    finally:
        root.close()


def test_pyseccomp_sonames_are_find_librarys():
    """seccomp imports pyseccomp with these answers instead of ctypes.util's ldconfig run."""
    from ctypes.util import find_library

    assert seccomp.SONAMES == {name: find_library(name) for name in seccomp.SONAMES}


def test_pyseccomp_imported_without_ldconfig(tmp_path):
    """No subprocess (ldconfig) while pyseccomp loads, and ctypes.util as it was."""
    import subprocess
    import sys

    probe = ("import sys; sys.path[:0] = sys.argv[1:]; from pyoci import seccomp; "
             "seccomp._pyseccomp(); "
             "print(sorted(m for m in ('subprocess', 'shutil', 'tempfile', 'ctypes.util') "
             "if m in sys.modules), hasattr(sys.modules['ctypes'], 'util'))")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", probe, *sys.path],
                         capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.split() == ["[]", "False"]
