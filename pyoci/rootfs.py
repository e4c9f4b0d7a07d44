"""The container's root filesystem: mounts, pivot_root, masked and read-only paths.

Runs in the container's init, inside its new mount namespace.  Every path
inside the rootfs is resolved with openat2(RESOLVE_IN_ROOT) and then used as
``/proc/self/fd/N``, so a symlink planted in the rootfs can never redirect a
mount (or a write) to the host.
"""

from __future__ import annotations

import os
import stat

from pyoci import syscalls as sc
from pyoci.errors import PyociError
from pyoci.fileio import read_all
from pyoci.userns import is_idmapped

# option -> (clears the flag?, MS_* flag)
MOUNT_FLAGS: dict[str, tuple[bool, int]] = {
    "async": (True, sc.MS_SYNCHRONOUS), "sync": (False, sc.MS_SYNCHRONOUS),
    "atime": (True, sc.MS_NOATIME), "noatime": (False, sc.MS_NOATIME),
    "defaults": (False, 0),
    "dev": (True, sc.MS_NODEV), "nodev": (False, sc.MS_NODEV),
    "diratime": (True, sc.MS_NODIRATIME), "nodiratime": (False, sc.MS_NODIRATIME),
    "dirsync": (False, sc.MS_DIRSYNC),
    "exec": (True, sc.MS_NOEXEC), "noexec": (False, sc.MS_NOEXEC),
    "mand": (False, sc.MS_MANDLOCK), "nomand": (True, sc.MS_MANDLOCK),
    "relatime": (False, sc.MS_RELATIME), "norelatime": (True, sc.MS_RELATIME),
    "strictatime": (False, sc.MS_STRICTATIME), "nostrictatime": (True, sc.MS_STRICTATIME),
    "lazytime": (False, sc.MS_LAZYTIME), "nolazytime": (True, sc.MS_LAZYTIME),
    "suid": (True, sc.MS_NOSUID), "nosuid": (False, sc.MS_NOSUID),
    "ro": (False, sc.MS_RDONLY), "rw": (True, sc.MS_RDONLY),
    "remount": (False, sc.MS_REMOUNT),
    "bind": (False, sc.MS_BIND), "rbind": (False, sc.MS_BIND | sc.MS_REC),
    "silent": (False, sc.MS_SILENT), "loud": (True, sc.MS_SILENT),
    "symfollow": (True, sc.MS_NOSYMFOLLOW), "nosymfollow": (False, sc.MS_NOSYMFOLLOW),
    "iversion": (False, 1 << 23), "noiversion": (True, 1 << 23),
}

PROPAGATION: dict[str, int] = {
    "private": sc.MS_PRIVATE, "rprivate": sc.MS_PRIVATE | sc.MS_REC,
    "shared": sc.MS_SHARED, "rshared": sc.MS_SHARED | sc.MS_REC,
    "slave": sc.MS_SLAVE, "rslave": sc.MS_SLAVE | sc.MS_REC,
    "unbindable": sc.MS_UNBINDABLE, "runbindable": sc.MS_UNBINDABLE | sc.MS_REC,
}

# recursive option -> (clears the attribute?, MOUNT_ATTR_*), applied with mount_setattr
RECURSIVE_ATTRS: dict[str, tuple[bool, int]] = {
    "rro": (False, sc.MOUNT_ATTR_RDONLY), "rrw": (True, sc.MOUNT_ATTR_RDONLY),
    "rnosuid": (False, sc.MOUNT_ATTR_NOSUID), "rsuid": (True, sc.MOUNT_ATTR_NOSUID),
    "rnodev": (False, sc.MOUNT_ATTR_NODEV), "rdev": (True, sc.MOUNT_ATTR_NODEV),
    "rnoexec": (False, sc.MOUNT_ATTR_NOEXEC), "rexec": (True, sc.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (False, sc.MOUNT_ATTR_NODIRATIME),
    "rdiratime": (True, sc.MOUNT_ATTR_NODIRATIME),
    "rnosymfollow": (False, sc.MOUNT_ATTR_NOSYMFOLLOW),
    "rsymfollow": (True, sc.MOUNT_ATTR_NOSYMFOLLOW),
}
# atime modes are one field, not bits: setting one clears the others
RECURSIVE_ATIME: dict[str, int] = {
    "rrelatime": sc.MOUNT_ATTR_RELATIME, "rnorelatime": sc.MOUNT_ATTR_STRICTATIME,
    "rnoatime": sc.MOUNT_ATTR_NOATIME, "rstrictatime": sc.MOUNT_ATTR_STRICTATIME,
    "rnostrictatime": sc.MOUNT_ATTR_RELATIME, "ratime": sc.MOUNT_ATTR_RELATIME,
}

RESOLVE = sc.RESOLVE_IN_ROOT | sc.RESOLVE_NO_MAGICLINKS
# Flags that a bind mount only takes effect with on a second, remount call.
BIND_REMOUNT_FLAGS = (sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
                      | sc.MS_NOATIME | sc.MS_NODIRATIME | sc.MS_RELATIME
                      | sc.MS_STRICTATIME | sc.MS_NOSYMFOLLOW)


class MountOptions:
    """A mount's ``options`` split into mount(2) flags, propagation, attrs and data."""

    def __init__(self, options: list[str]) -> None:
        self.flags = 0
        self.propagation: list[int] = []
        self.attr_set = 0
        self.attr_clr = 0
        self.data: list[str] = []
        self.tmpcopyup = False
        self.idmap = False
        for opt in options:
            if opt in MOUNT_FLAGS:
                clear, flag = MOUNT_FLAGS[opt]
                self.flags = self.flags & ~flag if clear else self.flags | flag
            elif opt in PROPAGATION:
                self.propagation.append(PROPAGATION[opt])
            elif opt in RECURSIVE_ATTRS:
                clear, attr = RECURSIVE_ATTRS[opt]
                if clear:
                    self.attr_clr |= attr
                else:
                    self.attr_set |= attr
            elif opt in RECURSIVE_ATIME:
                self.attr_clr |= sc.MOUNT_ATTR__ATIME
                self.attr_set |= RECURSIVE_ATIME[opt]
            elif opt == "tmpcopyup":
                self.tmpcopyup = True
            elif opt in ("idmap", "ridmap"):
                self.idmap = True
            else:
                self.data.append(opt)

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & sc.MS_BIND)


def fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


class Rootfs:
    """A handle on the rootfs directory through which every inner path is resolved."""

    def __init__(self, path: str, created: list[str] | None = None) -> None:
        self.path = path
        self.fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        # Mount points made in the rootfs, in order, so a failed create can remove them.
        self.created = created if created is not None else []
        self._real = ""  # where the kernel says the rootfs is (see real_path)

    def real_path(self) -> str:
        """The rootfs directory's path as the kernel resolves it, read once."""
        if not self._real:
            self._real = os.readlink(fd_path(self.fd))
        return self._real

    def open(self, inner: str, flags: int = os.O_PATH) -> int:
        return sc.openat2(self.fd, inner, flags | os.O_CLOEXEC, 0, RESOLVE)

    def mkdir_all(self, inner: str, _links: int = 0) -> int:
        """Create ``inner`` (and its parents) inside the rootfs; an O_PATH fd on it.

        A dangling symlink on the way is followed as the kernel would inside the
        rootfs (an absolute target is relative to the rootfs): its target is created
        there, never on the host.
        """
        parts = [p for p in inner.split("/") if p and p != "."]
        fd = start = -1
        if _links == 0:
            # Usually it is there, or only its last components are missing: the walk
            # below starts at the longest prefix that opens, where it would get to anyway
            # (each of its steps opens the whole prefix from the root the same way, and a
            # prefix resolves only if every shorter one does).
            for k in range(len(parts), 0, -1):
                try:
                    fd = self.open("/" + "/".join(parts[:k]), os.O_PATH | os.O_DIRECTORY)
                except FileNotFoundError:
                    continue
                except NotADirectoryError:
                    break  # the walk names the component that is not a directory
                if k == len(parts):
                    return fd
                start = k  # parts[:k + 1] was just found missing
                break
            if not parts:
                return self.open("/", os.O_PATH | os.O_DIRECTORY)
        if fd == -1:
            fd = os.dup(self.fd)
        try:
            for i in range(max(start, 0), len(parts)):
                name = parts[i]
                prefix = "/" + "/".join(parts[: i + 1])
                nxt = -1
                if i != start:
                    try:
                        nxt = self.open(prefix, os.O_PATH | os.O_DIRECTORY)
                    except FileNotFoundError:
                        pass
                    except NotADirectoryError:
                        raise PyociError(f"mount destination {inner}: {prefix} is not a "
                                         "directory") from None
                if nxt == -1:
                    link = _readlink_at(fd, name)
                    if link is not None:
                        target = _through_link(parts, i, link, inner, _links)
                        os.close(fd)
                        fd = -1
                        return self.mkdir_all(target, _links + 1)
                    os.mkdir(name, 0o755, dir_fd=fd)
                    self.created.append(prefix)
                    nxt = self.open(prefix, os.O_PATH | os.O_DIRECTORY)
                os.close(fd)
                fd = nxt
            return fd
        except BaseException:
            if fd != -1:
                os.close(fd)
            raise

    def make_target(self, inner: str, is_file: bool, _links: int = 0) -> int:
        """Create a mount point (directory, or empty file for a file bind); O_PATH fd."""
        if not is_file:
            return self.mkdir_all(inner)
        parent, _, name = inner.rstrip("/").rpartition("/")
        pfd = self.mkdir_all(parent or "/")
        try:
            try:
                return self.open(inner)
            except FileNotFoundError:
                link = _readlink_at(pfd, name)
                if link is not None:  # a dangling symlink: create its target in the rootfs
                    parts = [p for p in inner.split("/") if p and p != "."]
                    return self.make_target(
                        _through_link(parts, len(parts) - 1, link, inner, _links), True,
                        _links + 1)
                os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC
                                 | os.O_NOFOLLOW, 0o644, dir_fd=pfd))
                self.created.append("/" + "/".join(p for p in inner.split("/") if p))
                return self.open(inner)
        finally:
            os.close(pfd)

    def close(self) -> None:
        os.close(self.fd)


MAX_SYMLINKS = 40


def _readlink_at(dirfd: int, name: str) -> str | None:
    """The target of ``name`` in ``dirfd`` if it is a symlink, else None."""
    try:
        return os.readlink(name, dir_fd=dirfd)
    except OSError:
        return None


def _through_link(parts: list[str], i: int, link: str, inner: str, links: int) -> str:
    """``parts`` with component ``i`` (a symlink) replaced by its target ``link``."""
    if links >= MAX_SYMLINKS:
        raise PyociError(f"mount destination {inner}: too many levels of symbolic links")
    base = "/" if link.startswith("/") else "/" + "/".join(parts[:i])
    return os.path.join(base, link, *parts[i + 1:])


def set_root_propagation(config: dict) -> None:
    """Stop mounts from leaking to the host before any is made (runc's rslave default).

    ``unbindable`` waits for :func:`finalize`: under an unbindable "/" the rootfs could
    not be bind-mounted.
    """
    prop = config.get("linux", {}).get("rootfsPropagation", "")
    flags = sc.MS_SLAVE | sc.MS_REC
    if prop in PROPAGATION and not PROPAGATION[prop] & sc.MS_UNBINDABLE:
        flags = PROPAGATION[prop]
    sc.mount(None, "/", None, flags)


def bind_rootfs(rootfs: str) -> None:
    """Make the rootfs a mount point of its own, which pivot_root requires."""
    _make_parent_private(rootfs)
    sc.mount(rootfs, rootfs, "bind", sc.MS_BIND | sc.MS_REC)


def _make_parent_private(path: str) -> None:
    """pivot_root refuses a new root whose parent mount is shared: make it private.

    Only if it is shared (as runc does): a slave parent, the usual case after the
    rslave default, must stay a slave, so that the host's later mounts under the
    rootfs still reach the container.
    """
    best, shared = "", False
    for line in _read_proc("/proc/self/mountinfo").split("\n"):
        if not line:
            continue
        fields = line.split(" ", 5)  # ... mount point, then options, tags, "-", ...
        mnt = _unescape_mountinfo(fields[4]) if "\\" in fields[4] else fields[4]
        if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
            best = mnt  # the longest match; the last mounted one of equals
            rest = fields[5].split()
            shared = any(o.startswith("shared:") for o in rest[1:rest.index("-")])
    if best and shared:
        sc.mount(None, best, None, sc.MS_PRIVATE)


def _read_proc(path: str) -> str:
    return os.fsdecode(read_all(path))


def _unescape_mountinfo(field: str) -> str:
    return (field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")
            .replace("\\134", "\\"))


def mount_all(root: Rootfs, config: dict, bundle: str, cgroup_paths: dict[str, str],
              trees: dict[int, int] | None = None) -> None:
    """Every mount of the config; ``trees`` are the idmapped sources the runtime prepared
    (mount index -> detached mount fd, see pyoci.userns.idmapped_tree)."""
    labelled = (config.get("linux") or {}).get("mountLabel")
    if labelled:
        from pyoci.lsm import with_mount_label
    for i, m in enumerate(config.get("mounts", [])):
        mount_one(root, with_mount_label(config, m) if labelled else m, bundle, cgroup_paths,
                  (trees or {}).get(i))


def mount_one(root: Rootfs, m: dict, bundle: str, cgroup_paths: dict[str, str],
              tree_fd: int | None = None) -> None:
    dest = m["destination"]
    opts = MountOptions(m.get("options", []))
    fstype = m.get("type") or ""
    source = m.get("source")
    if fstype == "bind":
        opts.flags |= sc.MS_BIND
    check_proc_mount(root, dest, fstype, opts, source or "", bundle)
    if is_idmapped(m):
        if tree_fd is None or not opts.is_bind:
            raise PyociError(f"mount {dest}: idmapped mounts must be bind mounts")
        try:
            _mount_tree(root, dest, tree_fd, opts)
        except OSError as e:
            raise PyociError(f"mount {source} to {dest}: {e.strerror}") from None
        return
    try:
        if opts.is_bind:
            _mount_bind(root, dest, source or "", opts, bundle)
        elif fstype == "cgroup":
            _mount_cgroup(root, dest, opts, cgroup_paths)
        else:
            try:
                _mount_fs(root, dest, source, fstype, opts)
            except PermissionError:
                host = USERNS_BIND_FALLBACK.get(fstype)
                if host is None or not os.path.isdir(host) or not in_user_namespace():
                    raise
                # A user namespace may mount sysfs only with a network namespace of its
                # own, mqueue only with an IPC one: without, bind the host's (as runc).
                # Recursive (submounts are locked to it), its flags on every submount.
                opts.flags |= sc.MS_BIND | sc.MS_REC
                opts.attr_set |= sum(attr for flag, attr in FLAG_ATTRS if opts.flags & flag)
                _mount_bind(root, dest, host, opts, bundle)
    except OSError as e:
        raise PyociError(f"mount {source or fstype} to {dest}: {e.strerror}") from None


USERNS_BIND_FALLBACK = {"sysfs": "/sys", "mqueue": "/dev/mqueue"}
FLAG_ATTRS = ((sc.MS_RDONLY, sc.MOUNT_ATTR_RDONLY), (sc.MS_NOSUID, sc.MOUNT_ATTR_NOSUID),
              (sc.MS_NODEV, sc.MOUNT_ATTR_NODEV), (sc.MS_NOEXEC, sc.MOUNT_ATTR_NOEXEC))


def in_user_namespace() -> bool:
    """Is this process in a user namespace other than the initial one?"""
    try:
        with open("/proc/self/uid_map") as f:
            return f.read().split() != ["0", "0", "4294967295"]
    except OSError:
        return False


# Mounts below /proc that runc allows (lxcfs emulates these files); anything else there
# could hide or redirect what the runtime writes to procfs (CVE-2019-19921).
PROC_MOUNT_ALLOWED = ("/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat",
                      "/proc/swaps", "/proc/uptime", "/proc/loadavg", "/proc/slabinfo",
                      "/proc/sys/kernel/ns_last_pid", "/proc/sys/crypto/fips_enabled")
PROC_SUPER_MAGIC = 0x9FA0


def resolved_destination(root: Rootfs, dest: str, _links: int = 0) -> str:
    """Where ``dest`` really is in the rootfs: its longest existing prefix resolved (with
    the rootfs as root, symlinks followed), a dangling symlink after it followed as
    mkdir_all would, then the rest as written."""
    parts = [p for p in dest.split("/") if p and p != "."]
    base = root.real_path()
    for i in range(len(parts), -1, -1):
        try:
            fd = root.open("/" + "/".join(parts[:i]))
        except OSError:
            continue
        try:
            real = os.readlink(fd_path(fd))
            link = _readlink_at(fd, parts[i]) if i < len(parts) else None
        finally:
            os.close(fd)
        if link is not None:
            return resolved_destination(root, _through_link(parts, i, link, dest, _links),
                                        _links + 1)
        if real == base:
            inner = "/"
        elif real.startswith(base + "/"):
            inner = real[len(base):]  # what relpath would say, without its normalising
        else:
            rel = os.path.relpath(real, base)
            inner = "/" if rel == "." else "/" + rel
        return os.path.normpath(os.path.join(inner, *parts[i:]))
    return os.path.normpath("/" + "/".join(parts))


def check_proc_mount(root: Rootfs, dest: str, fstype: str, opts: MountOptions, source: str,
                     bundle: str) -> None:
    """runc's checkProcMount: /proc itself takes only procfs; below it, only a few files."""
    real = resolved_destination(root, dest)
    if real == "/proc":
        if opts.is_bind:
            from pyoci import procfs

            src = source if os.path.isabs(source) else os.path.join(bundle, source)
            try:
                fd = os.open(src, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                fd = -1
            try:
                if fd >= 0 and procfs.fs_magic(fd) == PROC_SUPER_MAGIC:
                    return
            finally:
                if fd >= 0:
                    os.close(fd)
        elif fstype == "proc":
            return
        raise PyociError(f"mount {dest}: {real!r} cannot be mounted because it is not of "
                         "type proc")
    if real.startswith("/proc/") and real not in PROC_MOUNT_ALLOWED:
        raise PyociError(f"mount {dest}: {real!r} cannot be mounted because it is inside "
                         "/proc")


MOVE_MOUNT_T_EMPTY_PATH = 0x40


def _mount_tree(root: Rootfs, dest: str, tree_fd: int, opts: MountOptions) -> None:
    """Move a detached (idmapped) mount into place, then apply the remaining options."""
    st = os.fstat(tree_fd)
    fd = root.make_target(dest, is_file=not stat.S_ISDIR(st.st_mode))
    try:
        sc.move_mount(tree_fd, "", fd, "", sc.MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)
    finally:
        os.close(fd)
    extra = opts.flags & BIND_REMOUNT_FLAGS
    if extra:
        remount(root, dest, sc.MS_BIND | extra)
    _apply_after(root, dest, opts)


def _apply_after(root: Rootfs, dest: str, opts: MountOptions) -> None:
    """Propagation and recursive attributes, on the mount now at ``dest``."""
    if not (opts.propagation or opts.attr_set or opts.attr_clr):
        return
    fd = root.open(dest)
    try:
        for prop in opts.propagation:
            sc.mount(None, fd_path(fd), None, prop)
        if opts.attr_set or opts.attr_clr:
            sc.mount_setattr(fd, "", sc.AT_EMPTY_PATH | sc.AT_RECURSIVE,
                             opts.attr_set, opts.attr_clr)
    finally:
        os.close(fd)


def _mount_bind(root: Rootfs, dest: str, source: str, opts: MountOptions, bundle: str) -> None:
    src = source if os.path.isabs(source) else os.path.join(bundle, source)
    try:
        st = os.stat(src)
    except FileNotFoundError:
        raise PyociError(f"mount {dest}: source {src} does not exist") from None
    fd = root.make_target(dest, is_file=not stat.S_ISDIR(st.st_mode))
    try:
        sc.mount(src, fd_path(fd), None, opts.flags & (sc.MS_BIND | sc.MS_REC))
    finally:
        os.close(fd)
    extra = opts.flags & BIND_REMOUNT_FLAGS
    if extra:
        remount(root, dest, sc.MS_BIND | extra)
    _apply_after(root, dest, opts)


def remount(root: Rootfs, dest: str, flags: int) -> None:
    """Remount the mount on top of ``dest``, keeping flags the kernel locked."""
    fd = root.open(dest)
    try:
        _remount_fd(fd, flags)
    finally:
        os.close(fd)


def _remount_fd(fd: int, flags: int) -> None:
    """Remount the mount ``fd`` is on (see remount)."""
    try:
        sc.mount(None, fd_path(fd), None, flags | sc.MS_REMOUNT)
    except PermissionError:
        # In a user namespace, flags inherited from the source mount are locked.
        locked = _statvfs_flags(fd)
        sc.mount(None, fd_path(fd), None, flags | locked | sc.MS_REMOUNT)


def _statvfs_flags(fd: int) -> int:
    st = os.statvfs(fd_path(fd))
    table = {os.ST_RDONLY: sc.MS_RDONLY, os.ST_NOSUID: sc.MS_NOSUID,
             os.ST_NODEV: sc.MS_NODEV, os.ST_NOEXEC: sc.MS_NOEXEC,
             os.ST_NOATIME: sc.MS_NOATIME, os.ST_NODIRATIME: sc.MS_NODIRATIME,
             os.ST_RELATIME: sc.MS_RELATIME}
    return sum(flag for bit, flag in table.items() if st.f_flag & bit)


def _mount_fs(root: Rootfs, dest: str, source: str | None, fstype: str,
              opts: MountOptions) -> None:
    fd = root.mkdir_all(dest)
    try:
        sc.mount(source or fstype, fd_path(fd), fstype or None, opts.flags,
                 ",".join(opts.data) or None)
        if opts.tmpcopyup:
            _copy_up(root, dest, fd)
    finally:
        os.close(fd)
    _apply_after(root, dest, opts)


def _copy_up(root: Rootfs, dest: str, below_fd: int) -> None:
    """tmpcopyup: fill the new tmpfs with what the directory under it held."""
    import shutil  # in init, before pivot_root: only a tmpcopyup mount needs it

    top = root.open(dest, os.O_PATH | os.O_DIRECTORY)
    try:
        shutil.copytree(fd_path(below_fd), fd_path(top), symlinks=True, dirs_exist_ok=True)
    finally:
        os.close(top)


def _mount_cgroup(root: Rootfs, dest: str, opts: MountOptions,
                  cgroup_paths: dict[str, str]) -> None:
    """Show the container its own cgroups: each hierarchy's directory bound in.

    ``cgroup_paths`` maps a host mount point of a hierarchy to the container's
    directory in it.  On a pure v2 host the container's directory is bound
    directly at ``dest``; on v1 and hybrid hosts a tmpfs holds one bind per
    hierarchy, named as on the host.
    """
    readonly = sc.MS_RDONLY if opts.flags & sc.MS_RDONLY else 0
    bind_flags = sc.MS_BIND | readonly | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC
    if list(cgroup_paths) == ["/sys/fs/cgroup"]:
        fd = root.mkdir_all(dest)
        try:
            sc.mount(cgroup_paths["/sys/fs/cgroup"], fd_path(fd), None, sc.MS_BIND)
        finally:
            os.close(fd)
        remount(root, dest, bind_flags)
        return
    fd = root.mkdir_all(dest)
    try:
        sc.mount("tmpfs", fd_path(fd), "tmpfs", sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC,
                 "mode=755")
    finally:
        os.close(fd)
    # The tmpfs is new, and only this mount namespace sees it: its directories are made
    # and opened in it directly, not resolved from the rootfs (nor recorded: they are
    # not the rootfs's, and go with the tmpfs).
    top = root.open(dest, os.O_PATH | os.O_DIRECTORY)
    try:
        for host_mount, own_dir in cgroup_paths.items():
            _bind_in(top, os.path.basename(host_mount), own_dir, bind_flags)
    finally:
        os.close(top)
    if readonly:
        remount(root, dest, sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC | sc.MS_RDONLY)


def _bind_in(top: int, name: str, source: str, flags: int) -> None:
    """Bind ``source`` on the directory ``name`` (made if missing) of ``top``, and
    remount it with ``flags``."""
    try:
        os.mkdir(name, 0o755, dir_fd=top)
    except FileExistsError:
        pass  # two hierarchies of one name: the last one shows
    fd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=top)
    try:
        sc.mount(source, fd_path(fd), None, sc.MS_BIND)
    finally:
        os.close(fd)
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=top)  # the bind
    try:
        _remount_fd(fd, flags)
    finally:
        os.close(fd)


def own_cgroup_dirs() -> dict[str, str]:
    """Host mount point of each cgroup hierarchy -> this process's directory in it."""
    mine: dict[str, str] = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            hid, controllers, path = line.rstrip("\n").split(":", 2)
            mine["2" if hid == "0" else controllers] = path
    dirs: dict[str, str] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            fstype, super_opts = fields[sep + 1], fields[sep + 3].split(",")
            mnt_root, mountpoint = fields[3], fields[4]
            if fstype == "cgroup2":
                key = "2"
            elif fstype == "cgroup":
                key = ",".join(o for o in super_opts if o not in ("rw", "ro")
                               and not o.startswith(("release_agent", "clone_children"))
                               and o not in ("noprefix", "xattr", "nsdelegate"))
            else:
                continue
            if key not in mine or mountpoint in dirs:
                continue
            rel = os.path.relpath(mine[key], mnt_root) if mnt_root != "/" else mine[key]
            dirs[mountpoint] = os.path.normpath(mountpoint + "/" + rel.lstrip("/"))
    return dirs


def pivot(rootfs: str, no_pivot: bool) -> None:
    """Make ``rootfs`` the root, and detach the host's tree from this namespace."""
    if no_pivot:
        os.chdir(rootfs)
        sc.mount(rootfs, "/", None, sc.MS_MOVE)
        os.chroot(".")
        os.chdir("/")
        return
    old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    new = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fchdir(new)
        sc.pivot_root(".", ".")
        os.fchdir(old)
        sc.mount(None, ".", None, sc.MS_SLAVE | sc.MS_REC)
        sc.umount2(".", sc.MNT_DETACH)
        os.chdir("/")
    finally:
        os.close(old)
        os.close(new)


def make_cwd(cwd: str) -> None:
    """Create ``process.cwd`` if missing (after pivot_root, so inside the rootfs)."""
    root = Rootfs("/")
    try:
        os.close(root.mkdir_all(cwd))
    except PyociError as e:
        raise PyociError(f"process.cwd {cwd}: {e}") from None
    except OSError as e:
        raise PyociError(f"process.cwd {cwd}: {e.strerror}") from None
    finally:
        root.close()


def finalize(config: dict) -> None:
    """After pivot_root: masked and read-only paths, read-only root, propagation."""
    linux = config.get("linux", {})
    root = Rootfs("/")
    try:
        for path in linux.get("maskedPaths", []):
            mask_path(root, path)
        for path in linux.get("readonlyPaths", []):
            readonly_path(root, path)
        if config.get("root", {}).get("readonly"):
            remount(root, "/", sc.MS_BIND | sc.MS_RDONLY)
    finally:
        root.close()
    prop = linux.get("rootfsPropagation")
    if prop:
        sc.mount(None, "/", None, PROPAGATION[prop])


def _open_dev_null() -> int:
    """/dev/null of the container, refused unless it really is the null device."""
    fd = os.open("/dev/null", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
        os.close(fd)
        raise PyociError("/dev/null in the container is not the null device")
    return fd


def mask_path(root: Rootfs, path: str) -> None:
    try:
        fd = root.open(path, os.O_PATH | os.O_NOFOLLOW)
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            sc.mount("tmpfs", fd_path(fd), "tmpfs", sc.MS_RDONLY, None)
        else:
            null = _open_dev_null()
            try:
                sc.mount(fd_path(null), fd_path(fd), None, sc.MS_BIND)
            finally:
                os.close(null)
    finally:
        os.close(fd)


def readonly_path(root: Rootfs, path: str) -> None:
    try:
        fd = root.open(path, os.O_PATH | os.O_NOFOLLOW)
    except (FileNotFoundError, NotADirectoryError):
        return
    try:
        sc.mount(fd_path(fd), fd_path(fd), None, sc.MS_BIND | sc.MS_REC)
    finally:
        os.close(fd)
    remount(root, path, sc.MS_BIND | sc.MS_RDONLY | sc.MS_NOSUID | sc.MS_NODEV | sc.MS_NOEXEC)


def remove_created(rootfs: str, created: list[str]) -> None:
    """Undo the mount points a failed create made, newest first; only empty ones go.

    Runs in the runtime, where nothing is mounted on them; each is resolved inside
    the rootfs, so a path swapped for a symlink meanwhile cannot reach the host.
    """
    root = Rootfs(rootfs)
    try:
        for inner in reversed(created):
            parent, _, name = inner.rpartition("/")
            try:
                pfd = root.open(parent or "/", os.O_PATH | os.O_DIRECTORY)
            except OSError:
                continue
            try:
                st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    os.rmdir(name, dir_fd=pfd)
                elif stat.S_ISREG(st.st_mode) and st.st_size == 0:
                    os.unlink(name, dir_fd=pfd)
            except OSError:
                pass  # not empty, or gone: leave it
            finally:
                os.close(pfd)
    finally:
        root.close()
