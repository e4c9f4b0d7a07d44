"""Raw Linux syscalls for pyoci, over the cffi module built from ``csrc/``.

Every other module reaches the kernel through these wrappers; they turn a
``-1`` return into :class:`OSError` carrying errno and the path involved.
"""

from __future__ import annotations

import errno
import os

from pyoci._native import ffi, lib

CLONE_NEWNS = lib.CLONE_NEWNS
CLONE_NEWUTS = lib.CLONE_NEWUTS
CLONE_NEWIPC = lib.CLONE_NEWIPC
CLONE_NEWUSER = lib.CLONE_NEWUSER
CLONE_NEWPID = lib.CLONE_NEWPID
CLONE_NEWNET = lib.CLONE_NEWNET
CLONE_NEWCGROUP = lib.CLONE_NEWCGROUP
CLONE_NEWTIME = lib.CLONE_NEWTIME

MS_RDONLY = lib.MS_RDONLY
MS_NOSUID = lib.MS_NOSUID
MS_NODEV = lib.MS_NODEV
MS_NOEXEC = lib.MS_NOEXEC
MS_SYNCHRONOUS = lib.MS_SYNCHRONOUS
MS_REMOUNT = lib.MS_REMOUNT
MS_MANDLOCK = lib.MS_MANDLOCK
MS_DIRSYNC = lib.MS_DIRSYNC
MS_NOSYMFOLLOW = lib.MS_NOSYMFOLLOW
MS_NOATIME = lib.MS_NOATIME
MS_NODIRATIME = lib.MS_NODIRATIME
MS_BIND = lib.MS_BIND
MS_MOVE = lib.MS_MOVE
MS_REC = lib.MS_REC
MS_SILENT = lib.MS_SILENT
MS_POSIXACL = lib.MS_POSIXACL
MS_UNBINDABLE = lib.MS_UNBINDABLE
MS_PRIVATE = lib.MS_PRIVATE
MS_SLAVE = lib.MS_SLAVE
MS_SHARED = lib.MS_SHARED
MS_RELATIME = lib.MS_RELATIME
MS_STRICTATIME = lib.MS_STRICTATIME
MS_LAZYTIME = lib.MS_LAZYTIME
MNT_DETACH = lib.MNT_DETACH

MOUNT_ATTR_RDONLY = lib.MOUNT_ATTR_RDONLY
MOUNT_ATTR_NOSUID = lib.MOUNT_ATTR_NOSUID
MOUNT_ATTR_NODEV = lib.MOUNT_ATTR_NODEV
MOUNT_ATTR_NOEXEC = lib.MOUNT_ATTR_NOEXEC
MOUNT_ATTR__ATIME = lib.MOUNT_ATTR__ATIME
MOUNT_ATTR_RELATIME = lib.MOUNT_ATTR_RELATIME
MOUNT_ATTR_NOATIME = lib.MOUNT_ATTR_NOATIME
MOUNT_ATTR_STRICTATIME = lib.MOUNT_ATTR_STRICTATIME
MOUNT_ATTR_NODIRATIME = lib.MOUNT_ATTR_NODIRATIME
MOUNT_ATTR_IDMAP = lib.MOUNT_ATTR_IDMAP
MOUNT_ATTR_NOSYMFOLLOW = lib.MOUNT_ATTR_NOSYMFOLLOW
AT_RECURSIVE = lib.AT_RECURSIVE
AT_EMPTY_PATH = lib.AT_EMPTY_PATH
OPEN_TREE_CLONE = lib.OPEN_TREE_CLONE
OPEN_TREE_CLOEXEC = lib.OPEN_TREE_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = lib.MOVE_MOUNT_F_EMPTY_PATH

RESOLVE_NO_XDEV = lib.RESOLVE_NO_XDEV
RESOLVE_NO_MAGICLINKS = lib.RESOLVE_NO_MAGICLINKS
RESOLVE_NO_SYMLINKS = lib.RESOLVE_NO_SYMLINKS
RESOLVE_BENEATH = lib.RESOLVE_BENEATH
RESOLVE_IN_ROOT = lib.RESOLVE_IN_ROOT

_NULL = ffi.NULL


def _check(ret: int, what: str, path: str | None = None) -> int:
    if ret < 0:
        err = ffi.errno
        raise OSError(err, f"{what}: {os.strerror(err)}", path)
    return ret


def _c(s: str | None):
    return _NULL if s is None else s.encode()


def unshare(flags: int) -> None:
    _check(lib.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(lib.setns(fd, nstype), "setns")


def join_namespaces(entries: list[tuple[int, int]]) -> None:
    """setns into each ``(fd, nstype)`` in order, in one C call."""
    if not entries:
        return
    fds = ffi.new("int[]", [fd for fd, _ in entries])
    types = ffi.new("int[]", [t for _, t in entries])
    failed = ffi.new("int *")
    if lib.pyoci_join_namespaces(fds, types, len(entries), failed) < 0:
        err = ffi.errno
        raise OSError(err, f"setns: {os.strerror(err)}", str(failed[0]))


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0,
          data: str | None = None) -> None:
    _check(lib.mount(_c(source), target.encode(), _c(fstype), flags, _c(data)),
           "mount", target)


def umount2(target: str, flags: int = 0) -> None:
    _check(lib.umount2(target.encode(), flags), "umount2", target)


def pivot_root(new_root: str, put_old: str) -> None:
    _check(lib.pyoci_pivot_root(new_root.encode(), put_old.encode()), "pivot_root", new_root)


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(lib.sethostname(raw, len(raw)), "sethostname")


def setdomainname(name: str) -> None:
    raw = name.encode()
    _check(lib.setdomainname(raw, len(raw)), "setdomainname")


def personality(persona: int) -> int:
    return _check(lib.personality(persona), "personality")


def openat2(dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = 0) -> int:
    return _check(lib.pyoci_openat2(dirfd, path.encode(), flags, mode, resolve), "openat2", path)


def mount_setattr(dirfd: int, path: str, flags: int, attr_set: int = 0, attr_clr: int = 0,
                  propagation: int = 0, userns_fd: int = 0) -> None:
    _check(lib.pyoci_mount_setattr(dirfd, path.encode(), flags, attr_set, attr_clr,
                                   propagation, userns_fd), "mount_setattr", path)


def open_tree(dirfd: int, path: str, flags: int) -> int:
    return _check(lib.pyoci_open_tree(dirfd, path.encode(), flags), "open_tree", path)


def move_mount(from_dirfd: int, from_path: str, to_dirfd: int, to_path: str,
               flags: int) -> None:
    _check(lib.pyoci_move_mount(from_dirfd, from_path.encode(), to_dirfd, to_path.encode(),
                                flags), "move_mount", to_path)


def join_session_keyring(name: str) -> None:
    _check(lib.pyoci_join_session_keyring(name.encode()), "keyctl(JOIN_SESSION_KEYRING)")


BPF_PROG_TYPE_CGROUP_DEVICE = lib.BPF_PROG_TYPE_CGROUP_DEVICE
BPF_CGROUP_DEVICE = lib.BPF_CGROUP_DEVICE
BPF_F_ALLOW_MULTI = lib.BPF_F_ALLOW_MULTI


def bpf_prog_load(prog_type: int, insns: bytes, license: str = "Apache") -> int:
    """Load a BPF program (``insns``: packed struct bpf_insn); its fd.

    A verifier rejection raises OSError whose message carries the verifier log.
    """
    buf = ffi.new("char[]", insns)
    lic = ffi.new("char[]", license.encode())
    log = ffi.new("char[]", 65536)
    fd = lib.pyoci_bpf_prog_load(prog_type, buf, len(insns) // 8, lic, log, 65536)
    if fd < 0:
        err = ffi.errno
        text = ffi.string(log).decode(errors="replace").strip()
        raise OSError(err, f"bpf(BPF_PROG_LOAD): {os.strerror(err)}"
                      + (f": {text}" if text else ""))
    return fd


def bpf_prog_attach(target_fd: int, prog_fd: int, attach_type: int, flags: int = 0) -> None:
    _check(lib.pyoci_bpf_prog_attach(target_fd, prog_fd, attach_type, flags),
           "bpf(BPF_PROG_ATTACH)")


def bpf_prog_detach(target_fd: int, prog_fd: int, attach_type: int) -> None:
    _check(lib.pyoci_bpf_prog_detach(target_fd, prog_fd, attach_type), "bpf(BPF_PROG_DETACH)")


def bpf_prog_query(target_fd: int, attach_type: int) -> list[int]:
    """The ids of the programs attached to ``target_fd`` for ``attach_type``."""
    size = 64
    while True:
        ids = ffi.new("uint32_t[]", size)
        count = ffi.new("uint32_t *", size)
        if lib.pyoci_bpf_prog_query(target_fd, attach_type, ids, count) == 0:
            return [ids[i] for i in range(count[0])]
        err = ffi.errno
        if err != errno.ENOSPC or count[0] <= size:
            raise OSError(err, f"bpf(BPF_PROG_QUERY): {os.strerror(err)}")
        size = count[0]


def bpf_prog_get_fd_by_id(prog_id: int) -> int:
    return _check(lib.pyoci_bpf_prog_get_fd_by_id(prog_id), "bpf(BPF_PROG_GET_FD_BY_ID)")


# --- security: prctl, capabilities, fstatfs, seccomp(2), the new mount API for a private
# procfs, and the final exec step (csrc/pyoci_security.c, csrc/pyoci_final.c).

PR_SET_CHILD_SUBREAPER = 36
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_IS_SET = 1
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_LOWER = 3
PR_CAP_AMBIENT_CLEAR_ALL = 4

SECCOMP_SET_MODE_FILTER = 1
SECCOMP_GET_ACTION_AVAIL = 2
SECCOMP_GET_NOTIF_SIZES = 3

FSOPEN_CLOEXEC = 0x1
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
FSMOUNT_CLOEXEC = 0x1


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(lib.pyoci_prctl(option, arg2, arg3, arg4, arg5), "prctl")


def fs_magic(fd: int) -> int:
    """f_type of the filesystem under ``fd`` (fstatfs(2); os.statvfs lacks it)."""
    return _check(lib.pyoci_fs_magic(fd), "fstatfs")


def seccomp_flag_supported(flag: int) -> bool:
    """Whether the kernel knows a SECCOMP_FILTER_FLAG_* (EFAULT on a NULL filter: yes)."""
    if flag == 32:  # WAIT_KILLABLE_RECV is only accepted with NEW_LISTENER
        flag |= 8
    if lib.pyoci_seccomp(SECCOMP_SET_MODE_FILTER, flag, _NULL) < 0:
        return ffi.errno == 14  # EFAULT: the flag passed, the NULL program did not
    return True


def seccomp_action_available(action: int) -> bool:
    val = ffi.new("uint32_t *", action)
    return lib.pyoci_seccomp(SECCOMP_GET_ACTION_AVAIL, 0, val) == 0


def seccomp_load(bpf: bytes, flags: int = 0) -> int:
    """Load a BPF program (struct sock_filter array) now; the listener fd or 0."""
    buf = ffi.from_buffer(bpf)
    return _check(lib.pyoci_seccomp_load(buf, len(bpf) // 8, flags), "seccomp")


def fsopen(fsname: str, flags: int = FSOPEN_CLOEXEC) -> int:
    return _check(lib.pyoci_fsopen(fsname.encode(), flags), "fsopen", fsname)


def fsconfig(fd: int, cmd: int, key: str | None = None, value: str | None = None,
             aux: int = 0) -> None:
    _check(lib.pyoci_fsconfig(fd, cmd, _c(key), _c(value), aux), "fsconfig", key)


def fsmount(fd: int, flags: int = FSMOUNT_CLOEXEC, attr_flags: int = 0) -> int:
    return _check(lib.pyoci_fsmount(fd, flags, attr_flags), "fsmount")


def exec_image() -> bytes:
    """The freestanding trampoline binary (csrc/pyoci_exec.c) embedded in _native."""
    size = ffi.new("size_t *")
    ptr = lib.pyoci_exec_image(size)
    return bytes(ffi.buffer(ptr, size[0]))


def final_exec(ctl: bytes, argv: list[str], env: list[str]) -> None:
    """Run the final step (see csrc/pyoci_final.c) in this process; returns only on error."""
    keep = [ffi.new("char[]", a.encode()) for a in argv]
    keep_env = [ffi.new("char[]", e.encode()) for e in env]
    c_argv = ffi.new("char *[]", keep + [_NULL])
    c_env = ffi.new("char *[]", keep_env + [_NULL])
    lib.pyoci_final_exec(ffi.from_buffer(ctl), len(ctl), c_argv, c_env)
    err = ffi.errno
    raise OSError(err, f"exec: {os.strerror(err)}", argv[0] if argv else None)


# --- exec: the namespace-entry path (csrc/pyoci_helper.c, pyoci_exec_enter).

EXEC_STEP_DUMPABLE = 1
EXEC_STEP_CGROUP = 2
EXEC_STEP_SETNS = 3
EXEC_STEP_CLONE = 4
EXEC_REPORT_SIZE = 16  # struct pyoci_exec_report: pid, err, step, index (4 ints)
CLOSE_RANGE_CLOEXEC = 1 << 2


def exec_enter(namespaces: list[tuple[int, int]], cgroup_fds: list[int], report_fd: int,
               close_fds: list[int] = ()) -> int:
    """Fork the exec path: 0 in the new process (inside the container, signals blocked),
    the intermediate's pid in the caller, which reads the report from ``report_fd``.

    The intermediate closes ``close_fds``, becomes non-dumpable, joins the cgroups
    (``cgroup.procs`` fds) and the namespaces ``(fd, nstype)`` in order, then clones the
    new process as the caller's own child; see csrc/pyoci_helper.c.
    """
    fds = ffi.new("int[]", [fd for fd, _ in namespaces] or [0])
    types = ffi.new("int[]", [t for _, t in namespaces] or [0])
    cgs = ffi.new("int[]", list(cgroup_fds) or [0])
    closing = ffi.new("int[]", list(close_fds) or [0])
    return _check(lib.pyoci_exec_enter(fds, types, len(namespaces), cgs, len(cgroup_fds),
                                       closing, len(close_fds), report_fd), "fork")


def close_range_cloexec(first: int) -> None:
    """Mark every fd from ``first`` on close-on-exec (close_range(2), no /proc needed)."""
    _check(lib.pyoci_close_range(first, 0xFFFFFFFF, CLOSE_RANGE_CLOEXEC), "close_range")


def fork_into_cgroup(cgroup_fd: int) -> int:
    """os.fork() whose child starts in the cgroup v2 directory ``cgroup_fd``
    (CLONE_INTO_CGROUP: no cgroup.procs write, so no RCU grace period).  For a
    single-threaded caller; OSError where the kernel refuses the cgroup."""
    return _check(lib.pyoci_fork_into_cgroup(cgroup_fd), "clone3")


def die_on_signals(sigs: list[int]) -> None:
    """A C handler on each of ``sigs`` that exits 128+signal at once (one call; execve
    resets it).  Signals the C library reserves are skipped."""
    lib.pyoci_die_on_signals(ffi.new("int[]", sigs or [0]), len(sigs))
