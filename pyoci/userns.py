"""User namespaces: mapping checks, writing the maps, rootless mode, idmapped mounts.

* :func:`check` (runtime side, before anything is created): runc's rules (a user
  namespace needs mappings or a path; mappings need a user namespace), the kernel's
  (ranges inside 32 bits, no overlap, at most 340 lines), the process's uid/gid mapped,
  and for a rootless runtime only ids the user may map.
* :func:`write_id_maps` (runtime side): the maps of the process that just unshared its
  user namespace; as an unprivileged user "deny" goes to setgroups first and ranges
  beyond the user's own id go through newuidmap/newgidmap (shadow's uidmap package).
* :func:`is_rootless`, :func:`default_root`: ``--rootless auto`` as runc decides it.
* :func:`idmapped_tree` (runtime side, in the host user namespace): a detached clone of a
  mount source, idmapped with mount_setattr(MOUNT_ATTR_IDMAP) through a user namespace
  made for the mapping; init moves it into place.
"""

from __future__ import annotations

import _signal  # signal's C core: signal.py's enums import enum, functools, collections
import os

from pyoci.errors import ConfigError, PyociError

MAX_ID = 1 << 32
MAX_LINES = 340
KINDS = (("uid", "uidMappings"), ("gid", "gidMappings"))


def _check_mappings(maps: object, where: str) -> list[tuple[int, int, int]]:
    if maps is None:
        return []
    if not isinstance(maps, list):
        raise ConfigError(f"{where}: must be a list")
    if len(maps) > MAX_LINES:
        raise ConfigError(f"{where}: {len(maps)} mappings, the kernel accepts at most "
                          f"{MAX_LINES}")
    out: list[tuple[int, int, int]] = []
    for i, m in enumerate(maps):
        here = f"{where}[{i}]"
        if not isinstance(m, dict):
            raise ConfigError(f"{here}: must be an object")
        vals = []
        for key in ("containerID", "hostID", "size"):
            v = m.get(key)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < MAX_ID:
                raise ConfigError(f"{here}.{key}: must be an integer from 0 to {MAX_ID - 1}")
            vals.append(v)
        cid, hid, size = vals
        if size == 0:
            raise ConfigError(f"{here}.size: must not be 0")
        if cid + size > MAX_ID or hid + size > MAX_ID:
            raise ConfigError(f"{here}: range exceeds the 32-bit id space")
        for j, (c2, h2, s2) in enumerate(out):
            if cid < c2 + s2 and c2 < cid + size:
                raise ConfigError(f"{here}: container IDs {cid}-{cid + size - 1} overlap "
                                  f"{where}[{j}]")
            if hid < h2 + s2 and h2 < hid + size:
                raise ConfigError(f"{here}: host IDs {hid}-{hid + size - 1} overlap "
                                  f"{where}[{j}]")
        out.append((cid, hid, size))
    return out


def _mapped(maps: list[tuple[int, int, int]], cid: int) -> bool:
    return any(c <= cid < c + s for c, _, s in maps)


def check(config: dict, rootless: bool | None = None) -> None:
    """Reject user namespace settings that cannot work, with one clear line."""
    linux = config.get("linux") or {}
    namespaces = {ns.get("type"): ns for ns in linux.get("namespaces") or []}
    uid_maps = _check_mappings(linux.get("uidMappings"), "linux.uidMappings")
    gid_maps = _check_mappings(linux.get("gidMappings"), "linux.gidMappings")
    for i, m in enumerate(config.get("mounts") or []):
        _check_mappings(m.get("uidMappings"), f"mounts[{i}].uidMappings")
        _check_mappings(m.get("gidMappings"), f"mounts[{i}].gidMappings")
    if rootless is None:
        rootless = os.geteuid() != 0
    user = namespaces.get("user")
    if user is None:
        if uid_maps or gid_maps:
            raise ConfigError("user namespace mappings specified, but user namespace isn't "
                              "enabled in the config")
        if rootless:
            raise ConfigError("rootless container requires user namespaces")
        return
    if not os.path.exists("/proc/self/ns/user"):
        raise ConfigError("user namespaces aren't enabled in the kernel")
    if user.get("path"):
        return
    if not uid_maps and not gid_maps:
        raise ConfigError("user namespaces enabled, but no namespace path to join nor "
                          "mappings to apply specified")
    if rootless:
        if not uid_maps:
            raise ConfigError("rootless containers requires at least one UID mapping")
        if not gid_maps:
            raise ConfigError("rootless containers requires at least one GID mapping")
    user_cfg = (config.get("process") or {}).get("user") or {}
    uid, gid = user_cfg.get("uid", 0), user_cfg.get("gid", 0)
    if uid_maps and not _mapped(uid_maps, uid):
        raise ConfigError(f"process.user.uid {uid} is not mapped by linux.uidMappings")
    if gid_maps and not _mapped(gid_maps, gid):
        raise ConfigError(f"process.user.gid {gid} is not mapped by linux.gidMappings")
    for extra in user_cfg.get("additionalGids") or []:
        if gid_maps and not _mapped(gid_maps, extra):
            raise ConfigError(f"process.user.additionalGids: {extra} is not mapped by "
                              "linux.gidMappings")
    if os.geteuid() != 0:
        for kind, key, maps in (("uid", "uidMappings", uid_maps), ("gid", "gidMappings",
                                                                   gid_maps)):
            _check_unprivileged(kind, key, maps)


def _check_unprivileged(kind: str, key: str, maps: list[tuple[int, int, int]]) -> None:
    """An unprivileged user maps its own id, and with new{u,g}idmap its subordinate ids."""
    own = os.geteuid() if kind == "uid" else os.getegid()
    if not maps or _own_only(maps, own):
        return
    import shutil  # here: every create (and, unprivileged, every command) imports userns

    if shutil.which(f"new{kind}map") is None:
        raise ConfigError(f"linux.{key}: an unprivileged user can only map its own {kind} "
                          f"({own}) without new{kind}map (the uidmap package)")
    allowed = [(own, 1), *_subordinate_ids(kind)]
    for i, (_, hid, size) in enumerate(maps):
        if not any(start <= hid and hid + size <= start + count for start, count in allowed):
            raise ConfigError(f"linux.{key}[{i}]: host {kind}s {hid}-{hid + size - 1} cannot "
                              f"be mapped by {kind} {own}: only its own and its "
                              f"/etc/sub{kind} ranges")


def _subordinate_ids(kind: str) -> list[tuple[int, int]]:
    """The user's ranges in /etc/subuid or /etc/subgid (by name or by number)."""
    import pwd

    uid = os.geteuid()
    names = {str(uid)}
    try:
        names.add(pwd.getpwuid(uid).pw_name)
    except KeyError:
        pass
    out = []
    try:
        with open(f"/etc/sub{kind}") as f:
            for line in f:
                fields = line.strip().split(":")
                if len(fields) == 3 and fields[0] in names:
                    try:
                        out.append((int(fields[1]), int(fields[2])))
                    except ValueError:
                        continue
    except OSError:
        pass
    return out


def _own_only(maps: list[tuple[int, int, int]], own: int) -> bool:
    return len(maps) == 1 and maps[0][1] == own and maps[0][2] == 1


def _lines(maps: list[dict]) -> str:
    return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in maps)


def write_id_maps(pid: int, config: dict) -> None:
    """Write /proc/<pid>/{uid,gid}_map for a process that just unshared CLONE_NEWUSER."""
    linux = config.get("linux") or {}
    privileged = os.geteuid() == 0
    for kind, key in KINDS:
        maps = linux.get(key) or []
        if not maps:
            continue
        own = os.geteuid() if kind == "uid" else os.getegid()
        tuples = [(m["containerID"], m["hostID"], m["size"]) for m in maps]
        try:
            if privileged or _own_only(tuples, own):
                if kind == "gid" and not privileged:
                    _write_proc(pid, "setgroups", "deny")
                _write_proc(pid, f"{kind}_map", _lines(maps))
            else:
                _newidmap(kind, pid, tuples)
        except OSError as e:
            raise PyociError(f"linux.{key}: cannot write {kind}_map: {e.strerror}") from None


def _write_proc(pid: int, name: str, data: str) -> None:
    fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, data.encode())
    finally:
        os.close(fd)


def _newidmap(kind: str, pid: int, maps: list[tuple[int, int, int]]) -> None:
    import shutil  # runtime side only (never in init, after pivot_root)
    import subprocess

    tool = shutil.which(f"new{kind}map")
    if tool is None:
        raise PyociError(f"new{kind}map not found: it is needed to map more than your own "
                         f"{kind} (install the uidmap package)")
    args = [tool, str(pid)] + [str(v) for m in maps for v in m]
    res = subprocess.run(args, capture_output=True, text=True)
    if res.returncode != 0:
        msg = (res.stderr.strip().splitlines() or ["failed"])[-1]
        raise PyociError(f"new{kind}map: {msg}")


# ---------------------------------------------------------------------------------------
# rootless


def in_user_namespace() -> bool:
    """Whether this process runs in a user namespace other than the initial one."""
    try:
        with open("/proc/self/uid_map") as f:
            return f.read().split() != ["0", "0", "4294967295"]
    except OSError:
        return False


ROOTLESS = "auto"  # the --rootless global option (set by the CLI)


def is_rootless(setting: str | None = None) -> bool:
    """``--rootless``: true, false, or auto (non-root, or root of a user namespace that
    does not map the whole id space, as runc decides)."""
    setting = setting or ROOTLESS
    if setting == "true":
        return True
    if setting == "false":
        return False
    return os.geteuid() != 0 or in_user_namespace()


def default_root(system_root: str = "/run/pyoci") -> str:
    """The state root when ``--root`` is not given: $XDG_RUNTIME_DIR/pyoci for a user."""
    if os.geteuid() != 0:
        xdg = os.environ.get("XDG_RUNTIME_DIR")
        if xdg:
            return os.path.join(xdg, "pyoci")
        return f"/tmp/pyoci-{os.geteuid()}"
    return system_root


# ---------------------------------------------------------------------------------------
# idmapped mounts


def mount_mappings(mount: dict, config: dict) -> tuple[list[dict], list[dict]]:
    """The mappings an idmap/ridmap mount uses: its own, else the container's."""
    linux = config.get("linux") or {}
    uid = mount.get("uidMappings") or linux.get("uidMappings") or []
    gid = mount.get("gidMappings") or linux.get("gidMappings") or []
    return uid, gid


def make_userns(uid_maps: list[dict], gid_maps: list[dict]) -> int:
    """An fd on a new user namespace with these mappings (held by no process)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(w)
            from pyoci import syscalls as sc

            sc.unshare(sc.CLONE_NEWUSER)
            os.read(r, 1)  # parked until the parent has what it needs
        finally:
            os._exit(0)
    os.close(r)
    try:
        try:
            # a child with its own user namespace: /proc/<pid>/ns/user differs from ours
            own = os.stat("/proc/self/ns/user").st_ino
            for _ in range(2000):
                if os.stat(f"/proc/{pid}/ns/user").st_ino != own:
                    break
                os.sched_yield()
            if gid_maps and os.geteuid() != 0:
                _write_proc(pid, "setgroups", "deny")
            if uid_maps:
                _write_proc(pid, "uid_map", _lines(uid_maps))
            if gid_maps:
                _write_proc(pid, "gid_map", _lines(gid_maps))
            return os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise PyociError(f"idmapped mount: cannot set up its user namespace: "
                             f"{e.strerror}") from None
    finally:
        os.close(w)
        try:
            os.kill(pid, _signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)


def is_idmapped(m: dict) -> bool:
    """Whether a mount of config.json asks for an idmapped mount."""
    opts = m.get("options") or []
    return "idmap" in opts or "ridmap" in opts or bool(m.get("uidMappings")
                                                         or m.get("gidMappings"))


def idmapped_trees(config: dict, bundle: str) -> dict[int, int]:
    """The idmapped source of every mount that asks for one: mount index -> tree fd.

    ``rbind`` clones the submounts too; ``ridmap`` idmaps them as well (``idmap`` only
    the top mount), as runc does.  The caller closes the fds.
    """
    trees: dict[int, int] = {}
    try:
        for i, m in enumerate(config.get("mounts") or []):
            if not is_idmapped(m):
                continue
            opts = m.get("options") or []
            if m.get("type") != "bind" and "bind" not in opts and "rbind" not in opts:
                raise ConfigError(f"mounts[{i}]: idmapped mounts must be bind mounts")
            src = m.get("source") or ""
            src = src if os.path.isabs(src) else os.path.join(bundle, src)
            uid_maps, gid_maps = mount_mappings(m, config)
            trees[i] = idmapped_tree(src, uid_maps, gid_maps, "rbind" in opts,
                                     "ridmap" in opts)
    except BaseException:
        for fd in trees.values():
            os.close(fd)
        raise
    return trees


def idmapped_tree(source: str, uid_maps: list[dict], gid_maps: list[dict],
                  recursive: bool, recursive_attr: bool = False) -> int:
    """A detached, idmapped clone of ``source`` (an open_tree fd) for init to move."""
    from pyoci import syscalls as sc

    if not uid_maps or not gid_maps:
        raise ConfigError(f"idmapped mount of {source}: uidMappings and gidMappings are "
                          "needed (on the mount or the container)")
    userns_fd = make_userns(uid_maps, gid_maps)
    try:
        flags = sc.OPEN_TREE_CLONE | sc.OPEN_TREE_CLOEXEC
        if recursive:
            flags |= sc.AT_RECURSIVE
        try:
            tree = sc.open_tree(-100, source, flags)
        except OSError as e:
            raise PyociError(f"idmapped mount of {source}: {e.strerror}") from None
        try:
            sc.mount_setattr(tree, "", sc.AT_EMPTY_PATH
                             | (sc.AT_RECURSIVE if recursive and recursive_attr else 0),
                             attr_set=sc.MOUNT_ATTR_IDMAP, userns_fd=userns_fd)
        except OSError as e:
            os.close(tree)
            raise PyociError(f"idmapped mount of {source}: {e.strerror} (does its "
                             "filesystem support idmapped mounts?)") from None
        return tree
    finally:
        os.close(userns_fd)
