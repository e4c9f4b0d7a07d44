"""Capabilities, no_new_privs, seccomp (every action, operator, notify) and fd hygiene,
read from /proc/self/status inside real containers."""

from __future__ import annotations

import errno
import os

import pytest
from security_helpers import (
    NotifyListener,
    capmask,
    nothing_left,
    ok,
    one_line_error,
    run_script,
    status,
    syscall_nr,
)

STATUS = "grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status"
DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def _st(r) -> dict[str, str]:
    return status(ok(r))


# --- capabilities ----------------------------------------------------------------------


def test_default_caps_root(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config()
    st = _st(run_script(pyoci, bundle, cid, cfg, STATUS, write_config))
    want = capmask(DEFAULT_CAPS)
    assert int(st["CapBnd"], 16) == want
    assert int(st["CapEff"], 16) == want
    assert int(st["CapPrm"], 16) == want
    assert int(st["CapInh"], 16) == 0
    # ambient needs permitted and inheritable: base_config's inheritable is empty
    assert int(st["CapAmb"], 16) == 0


def test_five_sets_non_root(pyoci, bundle, cid, base_config, write_config):
    """As uid 1000 the program's caps after execve are exactly the ambient set."""
    cfg = base_config()
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    cfg["process"]["capabilities"] = {
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID"],
        "effective": ["CAP_KILL"],
        "permitted": ["CAP_CHOWN", "CAP_KILL"],
        "inheritable": ["CAP_CHOWN", "CAP_NET_RAW"],
        "ambient": ["CAP_CHOWN"],
    }
    st = _st(run_script(pyoci, bundle, cid, cfg, STATUS, write_config))
    assert int(st["CapBnd"], 16) == capmask(["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW",
                                             "CAP_SETUID"])
    assert int(st["CapInh"], 16) == capmask(["CAP_CHOWN", "CAP_NET_RAW"])
    assert int(st["CapAmb"], 16) == capmask(["CAP_CHOWN"])
    assert int(st["CapPrm"], 16) == capmask(["CAP_CHOWN"])
    assert int(st["CapEff"], 16) == capmask(["CAP_CHOWN"])


def test_no_capabilities_object_means_none(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config()
    del cfg["process"]["capabilities"]
    st = _st(run_script(pyoci, bundle, cid, cfg, STATUS, write_config))
    for key in ("CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb"):
        assert int(st[key], 16) == 0, key


def test_all_capabilities(pyoci, bundle, cid, base_config, write_config):
    """Every name the kernel knows can be granted; CAP_SYS_RESOURCE is absent from this
    host's bounding set, so the container cannot have it either."""
    from pyoci.capabilities import CAPABILITIES, own_bounding

    names = [CAPABILITIES[c] for c in sorted(own_bounding())]
    cfg = base_config()
    cfg["process"]["capabilities"] = {k: list(names) for k in
                                      ("bounding", "effective", "permitted")}
    st = _st(run_script(pyoci, bundle, cid, cfg, STATUS, write_config))
    with open("/proc/self/status") as f:
        host_bnd = int(status(f.read())["CapBnd"], 16)
    assert int(st["CapBnd"], 16) == host_bnd
    assert int(st["CapEff"], 16) == host_bnd


def test_capability_that_cannot_be_granted_is_a_warning(pyoci, bundle, cid, base_config,
                                                        write_config):
    """CAP_SYS_RESOURCE is not in this host's bounding set: asked for, it is left out
    with a warning and the container runs (runtime-spec: warn, SHOULD NOT fail)."""
    from pyoci.capabilities import own_bounding

    if 24 in own_bounding():
        pytest.skip("CAP_SYS_RESOURCE is available on this host")
    cfg = base_config()
    for name in ("bounding", "effective", "permitted"):
        cfg["process"]["capabilities"][name].append("CAP_SYS_RESOURCE")
    r = run_script(pyoci, bundle, cid, cfg, STATUS, write_config)
    st = status(ok(r))
    assert int(st["CapBnd"], 16) == capmask(DEFAULT_CAPS)
    assert int(st["CapEff"], 16) == capmask(DEFAULT_CAPS)
    assert "CAP_SYS_RESOURCE" in r.stderr and "warn" in r.stderr.lower()


def test_unknown_capability_is_an_error(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config()
    cfg["process"]["capabilities"]["effective"].append("CAP_MAKE_COFFEE")
    write_config(bundle, cfg)
    r = pyoci("run", "--bundle", bundle, cid)
    one_line_error(r, "CAP_MAKE_COFFEE", "process.capabilities.effective")
    nothing_left(pyoci.root)


def test_cap_drop_is_effective(pyoci, bundle, cid, base_config, write_config):
    """Without CAP_CHOWN root cannot chown; with it, it can."""
    script = "touch /tmp/f && chown 1:1 /tmp/f && echo chowned || echo refused"
    cfg = base_config()
    cfg["root"]["readonly"] = False
    assert "refused" in ok(run_script(pyoci, bundle, cid, cfg, script, write_config))
    cfg["process"]["capabilities"]["bounding"].append("CAP_CHOWN")
    cfg["process"]["capabilities"]["effective"].append("CAP_CHOWN")
    cfg["process"]["capabilities"]["permitted"].append("CAP_CHOWN")
    assert "chowned" in ok(run_script(pyoci, bundle, cid + "b", cfg, script, write_config))


# --- no_new_privs ----------------------------------------------------------------------


@pytest.mark.parametrize("nnp", [True, False])
def test_no_new_privileges(pyoci, bundle, cid, base_config, write_config, nnp):
    cfg = base_config()
    cfg["process"]["noNewPrivileges"] = nnp
    st = _st(run_script(pyoci, bundle, cid, cfg, STATUS, write_config))
    assert st["NoNewPrivs"] == ("1" if nnp else "0")


# --- seccomp ---------------------------------------------------------------------------


def _seccomp_cfg(base_config, rules, default="SCMP_ACT_ALLOW", **extra):
    cfg = base_config()
    cfg["linux"]["seccomp"] = {"defaultAction": default, "syscalls": rules, **extra}
    return cfg


def test_seccomp_errno_and_status(pyoci, bundle, cid, base_config, write_config):
    cfg = _seccomp_cfg(base_config, [
        {"names": ["mkdir", "mkdirat", "no_such_syscall_at_all"], "action": "SCMP_ACT_ERRNO",
         "errnoRet": errno.EADDRNOTAVAIL},
        {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"},
    ])
    out = ok(run_script(pyoci, bundle, cid, cfg,
                        STATUS + "; mkdir /dev/shm/x 2>&1; echo mkdir=$?; rmdir /dev/shm 2>&1; "
                        "echo rmdir=$?", write_config))
    st = status(out)
    assert st["Seccomp"] == "2" and st["Seccomp_filters"] == "1"
    assert os.strerror(errno.EADDRNOTAVAIL) in out and "mkdir=1" in out
    assert "Operation not permitted" in out  # errnoRet defaults to EPERM


def test_seccomp_from_the_cache_still_filters(pyoci, bundle, cid, base_config,
                                              write_config):
    """The second container of a profile gets its filter from the state root's cache
    (pyoci.seccomp_cache): it must filter exactly as the first; `list` never shows the
    cache, and a changed profile is compiled anew, not answered from it."""
    cfg = _seccomp_cfg(base_config, [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
         "errnoRet": errno.EADDRNOTAVAIL}])
    script = "mkdir /dev/shm/x 2>&1; echo mkdir=$?"
    for n in range(2):
        out = ok(run_script(pyoci, bundle, f"{cid}{n}", cfg, script, write_config))
        assert os.strerror(errno.EADDRNOTAVAIL) in out and "mkdir=1" in out
    assert os.listdir(os.path.join(pyoci.root, ".seccomp~cache"))
    assert pyoci("list", "-q").stdout == ""
    cfg["linux"]["seccomp"]["syscalls"][0]["errnoRet"] = errno.ENOTBLK
    out = ok(run_script(pyoci, bundle, f"{cid}2", cfg, script, write_config))
    assert os.strerror(errno.ENOTBLK) in out


def test_seccomp_default_errno_ret(pyoci, bundle, cid, base_config, write_config):
    """defaultErrnoRet with an allow-list: what is not listed fails with that errno."""
    from seccomp_profiles import default_profile

    cfg = base_config()
    prof = default_profile()
    prof["defaultErrnoRet"] = errno.ENOTBLK
    cfg["linux"]["seccomp"] = prof
    out = ok(run_script(pyoci, bundle, cid, cfg,
                        "hostname newname 2>&1; echo hostname=$?", write_config))
    assert os.strerror(errno.ENOTBLK) in out and "hostname=1" in out


@pytest.mark.parametrize("action,expect", [
    ("SCMP_ACT_KILL", "rc=159"),
    ("SCMP_ACT_KILL_THREAD", "rc=159"),
    ("SCMP_ACT_KILL_PROCESS", "rc=159"),
    ("SCMP_ACT_TRAP", "rc=159"),
    ("SCMP_ACT_TRACE", os.strerror(errno.ENOSYS)),  # no tracer: ENOSYS
    ("SCMP_ACT_LOG", "made"),
    ("SCMP_ACT_ALLOW", "made"),
])
def test_seccomp_actions(pyoci, bundle, cid, base_config, write_config, action, expect):
    """mkdir in a child shell: how it ends shows the action (SIGSYS: exit 159)."""
    default = "SCMP_ACT_ALLOW" if action != "SCMP_ACT_ALLOW" else "SCMP_ACT_LOG"
    cfg = _seccomp_cfg(base_config, [{"names": ["mkdir", "mkdirat"], "action": action}],
                       default=default)
    out = ok(run_script(pyoci, bundle, cid, cfg,
                        "sh -c 'mkdir /dev/shm/d && echo made' 2>&1; echo rc=$?",
                        write_config))
    assert expect in out


# kill(pid, 0) with pids that do not exist: ESRCH unless the rule matches (EBADFD).
_OPS = [
    ("SCMP_CMP_EQ", 7, 0, {7: True, 8: False}),
    ("SCMP_CMP_NE", 7, 0, {7: False, 8: True}),
    ("SCMP_CMP_LT", 7, 0, {6: True, 7: False}),
    ("SCMP_CMP_LE", 7, 0, {7: True, 8: False}),
    ("SCMP_CMP_GT", 7, 0, {7: False, 8: True}),
    ("SCMP_CMP_GE", 7, 0, {6: False, 7: True}),
    ("SCMP_CMP_MASKED_EQ", 0xF0, 0x10, {0x15: True, 0x25: False}),
]


@pytest.mark.parametrize("op,value,value2,cases", _OPS, ids=[o[0] for o in _OPS])
def test_seccomp_arg_operators(pyoci, bundle, cid, base_config, write_config, op, value,
                               value2, cases):
    cfg = _seccomp_cfg(base_config, [{
        "names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EBADFD,
        "args": [{"index": 0, "op": op, "value": value, "valueTwo": value2}]}])
    script = "; ".join(f"kill -0 {pid} 2>&1 | sed 's/^/{pid}: /'" for pid in cases)
    out = ok(run_script(pyoci, bundle, cid, cfg, script, write_config))
    for pid, matches in cases.items():
        line = next(x for x in out.splitlines() if x.startswith(f"{pid}:"))
        assert (os.strerror(errno.EBADFD) in line) == matches, (pid, line)


def test_seccomp_args_and_or(pyoci, bundle, cid, base_config, write_config):
    """Distinct indexes: one rule (AND).  A repeated index: one rule each (OR), as runc."""
    cfg = _seccomp_cfg(base_config, [
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EBADFD,
         "args": [{"index": 0, "op": "SCMP_CMP_EQ", "value": 7},
                  {"index": 1, "op": "SCMP_CMP_EQ", "value": 0}]},
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOTBLK,
         "args": [{"index": 0, "op": "SCMP_CMP_EQ", "value": 11},
                  {"index": 0, "op": "SCMP_CMP_EQ", "value": 12}]},
    ])
    script = ("for p in 7 8; do kill -0 $p 2>&1 | sed \"s/^/and-$p-0: /\"; "
              "kill -CONT $p 2>&1 | sed \"s/^/and-$p-cont: /\"; done; "
              "for p in 11 12 13; do kill -0 $p 2>&1 | sed \"s/^/or-$p: /\"; done")
    out = ok(run_script(pyoci, bundle, cid, cfg, script, write_config))
    lines = {x.split(":", 1)[0]: x for x in out.splitlines() if ":" in x}
    badfd, notblk = os.strerror(errno.EBADFD), os.strerror(errno.ENOTBLK)
    assert badfd in lines["and-7-0"]
    assert badfd not in lines["and-7-cont"] and badfd not in lines["and-8-0"]
    assert notblk in lines["or-11"] and notblk in lines["or-12"]
    assert notblk not in lines["or-13"]


@pytest.mark.parametrize("flags", [
    ["SECCOMP_FILTER_FLAG_LOG"], ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
    ["SECCOMP_FILTER_FLAG_TSYNC"], ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]])
def test_seccomp_flags(pyoci, bundle, cid, base_config, write_config, flags):
    cfg = _seccomp_cfg(base_config, [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}],
                       flags=flags, architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86",
                                                   "SCMP_ARCH_X32"])
    st = _st(run_script(pyoci, bundle, cid, cfg, STATUS, write_config))
    assert st["Seccomp"] == "2"


def test_seccomp_spec_allow_keeps_ssb_unmitigated(pyoci, bundle, cid, base_config,
                                                  write_config):
    """seccomp forces the speculative store bypass mitigation unless SPEC_ALLOW."""
    script = "grep Speculation_Store_Bypass /proc/self/status"
    cfg = _seccomp_cfg(base_config, [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}])
    plain = ok(run_script(pyoci, bundle, cid, cfg, script, write_config))
    cfg["linux"]["seccomp"]["flags"] = ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
    allowed = ok(run_script(pyoci, bundle, cid + "b", cfg, script, write_config))
    if "thread" not in plain:  # the CPU is not affected or prctl control is off
        pytest.skip(f"speculation control not per-thread here: {plain.strip()}")
    assert "force mitigated" in plain and "force mitigated" not in allowed


@pytest.mark.parametrize("uid", [0, 1000])
def test_seccomp_without_nnp_and_without_sys_admin(pyoci, bundle, cid, base_config,
                                                   write_config, uid):
    """Loading a filter without no_new_privs needs CAP_SYS_ADMIN: pyoci keeps it (and
    CAP_SETPCAP) until the filter is loaded, then the container has exactly its
    configured caps: the ambient set as a user, the bounding set as root."""
    cfg = _seccomp_cfg(base_config, [{"names": ["mkdir", "mkdirat"],
                                      "action": "SCMP_ACT_ERRNO"}])
    cfg["process"]["noNewPrivileges"] = False
    cfg["process"]["user"] = {"uid": uid, "gid": uid}
    cfg["process"]["capabilities"]["inheritable"] = ["CAP_KILL"]
    cfg["process"]["capabilities"]["ambient"] = ["CAP_KILL"]
    out = ok(run_script(pyoci, bundle, cid, cfg,
                        STATUS + "; mkdir /dev/shm/d 2>&1; echo rc=$?", write_config))
    st = status(out)
    assert st["NoNewPrivs"] == "0" and st["Seccomp"] == "2"
    want = ["CAP_KILL"] if uid else DEFAULT_CAPS
    assert int(st["CapEff"], 16) == capmask(want)
    assert int(st["CapBnd"], 16) == capmask(DEFAULT_CAPS)
    assert "rc=1" in out


def test_seccomp_notify_listener(pyoci, bundle, cid, base_config, write_config):
    """The listener gets the state and the fd, and answers mkdir in the container."""
    mkdir_nrs = {syscall_nr("mkdir"), syscall_nr("mkdirat")}

    def answer(nr, args):
        if nr in mkdir_nrs:
            return 0, -errno.EXDEV, 0
        return 0, 0, 1  # SECCOMP_USER_NOTIF_FLAG_CONTINUE

    listener = NotifyListener(answer)
    try:
        cfg = _seccomp_cfg(base_config, [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
            listenerPath=listener.path, listenerMetadata="meta-data-42")
        cfg["annotations"] = {"org.example.test": "yes"}
        out = ok(run_script(pyoci, bundle, cid, cfg,
                            "mkdir /dev/shm/answered 2>&1; echo rc=$?; "
                            "ls -d /dev/shm/answered 2>&1; true", write_config))
    finally:
        listener.close()
    assert os.strerror(errno.EXDEV) in out and "rc=1" in out
    assert listener.errors == []
    assert len(listener.states) == 1
    st = listener.states[0]
    assert st["fds"] == ["seccompFd"] and st["metadata"] == "meta-data-42"
    assert st["state"]["id"] == cid and st["state"]["bundle"] == bundle
    assert st["pid"] > 1 and st["state"]["pid"] == st["pid"]
    assert st["state"]["annotations"] == {"org.example.test": "yes"}
    assert any(nr in mkdir_nrs for nr, _ in listener.seen)


def test_seccomp_notify_listener_missing(pyoci, bundle, cid, base_config, write_config):
    cfg = _seccomp_cfg(base_config, [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}],
                       listenerPath="/tmp/pyoci-no-such-listener.sock")
    write_config(bundle, cfg)
    r = pyoci("run", "--bundle", bundle, cid)
    one_line_error(r, "listenerPath", "/tmp/pyoci-no-such-listener.sock")
    nothing_left(pyoci.root)


BAD_SECCOMP = [
    ({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"}, "default action"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}, "listenerPath"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x", "syscalls": [
        {"names": ["sendmsg"], "action": "SCMP_ACT_NOTIFY"}]}, "sendmsg"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 6, "op": "SCMP_CMP_EQ", "value": 1}]}]}, "index"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": [], "action": "SCMP_ACT_ERRNO"}]}, "names"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]}, "errnoRet"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["kill"], "action": "SCMP_ACT_BOGUS"}]}, "SCMP_ACT_BOGUS"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "op": "SCMP_CMP_BOGUS", "value": 1}]}]}, "SCMP_CMP_BOGUS"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]},
     "SCMP_ARCH_Z80"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]},
     "SECCOMP_FILTER_FLAG_BOGUS"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 5}, "defaultErrnoRet"),
]


@pytest.mark.parametrize("seccomp,needle", BAD_SECCOMP, ids=[n for _, n in BAD_SECCOMP])
def test_malformed_seccomp_is_one_line_error(pyoci, bundle, cid, base_config, write_config,
                                             seccomp, needle):
    cfg = base_config()
    cfg["linux"]["seccomp"] = seccomp
    write_config(bundle, cfg)
    r = pyoci("run", "--bundle", bundle, cid)
    one_line_error(r, needle)
    nothing_left(pyoci.root)


def test_filter_is_loaded_after_the_runtime_is_done(pyoci, bundle, cid, base_config,
                                                    write_config):
    """A filter that denies what Python and the runtime need (openat, mmap, write to
    the fifo...) still lets the container start: only the program runs under it."""
    cfg = _seccomp_cfg(base_config, [
        {"names": ["openat", "open", "mmap", "munmap", "fstat", "newfstatat", "statx",
                   "getdents64", "mount", "pivot_root", "socket", "sendto", "recvfrom",
                   "clone", "wait4", "prctl", "capset"],
         "action": "SCMP_ACT_ERRNO"}])
    cfg["process"]["args"] = ["/bin/busybox", "echo", "started under the filter"]
    write_config(bundle, cfg)
    r = pyoci("run", "--bundle", bundle, cid)
    assert "started under the filter" in ok(r)


# --- fds and the exec ------------------------------------------------------------------


def test_no_fd_leaks_into_the_container(pyoci, bundle, cid, base_config, write_config):
    script = "for f in /proc/self/fd/*; do echo \"$f -> $(readlink $f)\"; done"
    out = ok(run_script(pyoci, bundle, cid, base_config(), script, write_config))
    fds = sorted(int(line.split()[0].rsplit("/", 1)[1]) for line in out.splitlines()
                 if line.startswith("/proc/self/fd/"))
    # 0-2, and the directory the shell's glob itself had open (gone when readlink ran)
    assert fds[:3] == [0, 1, 2] and len(fds) <= 4, out


def test_exe_is_the_program_not_the_runtime(pyoci, bundle, cid, base_config, write_config):
    """/proc/1/exe in the container names its program; the trampoline is a sealed memfd
    gone by then, and the host's interpreter never appears."""
    out = ok(run_script(pyoci, bundle, cid, base_config(),
                        "readlink /proc/1/exe; readlink /proc/self/exe", write_config))
    assert "python" not in out and "memfd" not in out
    assert out.split() == ["/bin/busybox", "/bin/busybox"]
