"""Control groups: which hierarchies the host has, where a container's cgroup is, and
the small interface the rest of pyoci uses.

Hosts come in three layouts (``mode()``): ``unified`` (cgroup v2 only, at
/sys/fs/cgroup), ``hybrid`` (v1 controllers, plus a cgroup2 mount that may hold a
few controllers) and ``legacy`` (v1 only).  v2 hosts are driven by
:mod:`pyoci.cgroups.v2`; hybrid and legacy ones by :mod:`pyoci.cgroups.v1`, which
uses each controller where it is mounted (on a hybrid host that includes the v2
mount, for ``unified`` keys and the controllers it holds).

``linux.cgroupsPath`` is read as runc reads it without systemd: absolute paths are
taken from each hierarchy's mount point; relative ones (and the default, the
container id) from the runtime's own cgroup in each v1 hierarchy, and from the
*parent* of its own cgroup on v2 (whose own cgroup holds processes, so it can't
delegate controllers to a child).

What is stored in state.json (``Manager.to_state()``) is all that ``state``,
``kill``, ``pause`` and ``delete`` need: this module imports nothing but the
standard library and pyoci.errors, and the backends are imported on use.
"""

from __future__ import annotations

import _signal  # signal's C core: signal.py's enums import enum, functools, collections
import os
import time

from pyoci.errors import PyociError

MOUNT_ROOT = "/sys/fs/cgroup"


class CgroupError(PyociError):
    """A cgroup could not be made, set or removed; the message names the field or path."""


class Hierarchy:
    """One mounted cgroup hierarchy: where, which root, which controllers."""

    def __init__(self, mountpoint: str, root: str, version: int,
                 controllers: frozenset[str]) -> None:
        self.mountpoint = mountpoint
        self.root = root
        self.version = version
        self.controllers = controllers

    @property
    def key(self) -> str:
        """The hierarchy's name in /proc/<pid>/cgroup: "" for v2, "cpu,cpuacct" for v1."""
        return "" if self.version == 2 else ",".join(sorted(self.controllers))

    def __repr__(self) -> str:
        return f"Hierarchy({self.mountpoint!r}, v{self.version}, {sorted(self.controllers)})"


_V1_IGNORED_OPTS = ("rw", "ro", "noprefix", "clone_children", "xattr", "nsdelegate",
                    "cpuset_v2_mode", "memory_recursiveprot", "favordynmods")


def hierarchies() -> list[Hierarchy]:
    """The cgroup hierarchies mounted in this mount namespace, first mount of each."""
    found: dict[str, Hierarchy] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            fstype = fields[sep + 1]
            if fstype not in ("cgroup", "cgroup2"):
                continue
            root, mountpoint = _unescape(fields[3]), _unescape(fields[4])
            if fstype == "cgroup2":
                h = Hierarchy(mountpoint, root, 2, frozenset())
            else:
                opts = [o for o in fields[sep + 3].split(",")
                        if o not in _V1_IGNORED_OPTS and "=" not in o or o.startswith("name=")]
                h = Hierarchy(mountpoint, root, 1, frozenset(opts))
            found.setdefault(h.key, h)
    return list(found.values())


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n") \
        .replace("\\134", "\\")


def own_cgroups(pid: int | str = "self") -> dict[str, str]:
    """``/proc/<pid>/cgroup`` as {hierarchy key: path}; v2 is the key ""."""
    own: dict[str, str] = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _hid, controllers, path = line.rstrip("\n").split(":", 2)
            own[",".join(sorted(controllers.split(","))) if controllers else ""] = path
    return own


def mode(hs: list[Hierarchy] | None = None) -> str:
    """``unified``, ``hybrid``, ``legacy``, or ``none`` when no cgroup is mounted."""
    hs = hierarchies() if hs is None else hs
    v1 = any(h.version == 1 for h in hs)
    v2 = any(h.version == 2 for h in hs)
    if v2 and not v1:
        return "unified"
    if v1:
        return "hybrid" if v2 else "legacy"
    return "none"


def v2_controllers(path: str) -> set[str]:
    """The controllers a v2 cgroup can use (its cgroup.controllers)."""
    try:
        with open(os.path.join(path, "cgroup.controllers")) as f:
            return set(f.read().split())
    except OSError:
        return set()


def clean_path(path: str) -> str:
    """runc's CleanPath: lexically clean; a relative path can't climb above its base."""
    if not path:
        return ""
    if path.startswith("/"):
        return os.path.normpath("/" + path.lstrip("/"))
    cleaned = os.path.relpath(os.path.normpath("/" + path), "/")
    return "" if cleaned == "." else cleaned


def inner_path(cgroups_path: str | None, container_id: str) -> str:
    """The cgroup path a config asks for; the container id when it names none."""
    return clean_path(cgroups_path or "") or clean_path(container_id)


def _join(base: str, rel: str) -> str:
    return os.path.normpath(base + "/" + rel.lstrip("/"))


def own_dir(h: Hierarchy, own: dict[str, str]) -> str:
    """This process's directory in hierarchy ``h`` (as runc's GetOwnCgroupPath)."""
    path = own.get(h.key)
    if path is None:
        return h.mountpoint
    rel = os.path.relpath(path, h.root) if h.root != "/" else path
    if rel.startswith(".."):
        rel = "/"
    return _join(h.mountpoint, rel)


def resolve_dirs(cgroups_path: str | None, container_id: str,
                 hs: list[Hierarchy] | None = None) -> dict[str, str]:
    """{hierarchy mount point: the container's directory in it}.

    Refuses a path that is a hierarchy's root or that holds pyoci itself: deleting
    the container would kill every process there.
    """
    hs = hierarchies() if hs is None else hs
    inner = inner_path(cgroups_path, container_id)
    own = own_cgroups()
    unified = mode(hs) == "unified"
    dirs: dict[str, str] = {}
    for h in hs:
        mine = own_dir(h, own)
        if inner.startswith("/"):
            d = _join(h.mountpoint, inner)
        elif h.version == 2 and unified:
            base = os.path.dirname(mine) if mine != h.mountpoint else mine
            d = _join(base, inner)
        else:
            d = _join(mine, inner)
        what = f"linux.cgroupsPath: {cgroups_path!r} resolves to {d}"
        if d == h.mountpoint:
            raise CgroupError(f"{what}, the root of the hierarchy: refusing to use it")
        if mine == d or mine.startswith(d + "/"):
            raise CgroupError(f"{what}, which holds the runtime itself: refusing to use it")
        dirs[h.mountpoint] = d
    return dirs


def new_manager(config: dict, container_id: str):
    """The manager for a container about to be created from ``config``."""
    hs = hierarchies()
    m = mode(hs)
    if m == "none":
        raise CgroupError("no cgroup filesystem is mounted under /proc/self/mountinfo")
    dirs = resolve_dirs(config.get("linux", {}).get("cgroupsPath"), container_id, hs)
    if m == "unified":
        from pyoci.cgroups.v2 import V2Manager

        (h,) = hs
        return V2Manager(dirs[h.mountpoint], mountpoint=h.mountpoint)
    from pyoci.cgroups.v1 import V1Manager

    return V1Manager({h.mountpoint: (sorted(h.controllers), dirs[h.mountpoint]) for h in hs})


def load_manager(stored: dict):
    """The manager of an existing container, from its state.json; None if it has none."""
    info = stored.get("cgroup")
    if not info:
        return None
    if info["version"] == 2:
        from pyoci.cgroups.v2 import V2Manager

        return V2Manager(info["path"], mountpoint=info.get("mountpoint", MOUNT_ROOT))
    from pyoci.cgroups.v1 import V1Manager

    return V1Manager({mnt: (ctrls, d) for mnt, (ctrls, d) in info["paths"].items()})


# --- the cheap paths: kill --all, ps and delete read only these ---------------------------


def procs_dir(stored: dict) -> str | None:
    """A directory whose cgroup.procs (recursively) lists the container's processes."""
    info = stored.get("cgroup")
    if not info:
        return None
    return info.get("procs") or info.get("path")


def cgroup_pids(directory: str) -> list[int]:
    """Every process in ``directory`` and its descendants."""
    pids: list[int] = []
    for dirpath, _dirnames, _files in os.walk(directory):
        try:
            with open(os.path.join(dirpath, "cgroup.procs")) as f:
                pids.extend(int(line) for line in f if line.strip())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return pids


def remove_dir(path: str, timeout: float = 5.0) -> None:
    """rmdir a cgroup and its sub-cgroups, deepest first, retrying while busy."""
    try:
        os.rmdir(path)  # the usual case, a leaf with no process left: no walk
        return
    except FileNotFoundError:
        return
    except OSError:
        pass
    if not os.path.isdir(path):
        return
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        busy = None
        for dirpath, _dirnames, _files in sorted(os.walk(path), key=lambda w: -len(w[0])):
            try:
                os.rmdir(dirpath)
            except FileNotFoundError:
                pass
            except OSError as e:
                busy = e
        if busy is None:
            return
        if time.monotonic() > deadline:
            raise CgroupError(f"cannot remove cgroup {path}: {busy.strerror}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def kill_all(stored: dict, sig: int = _signal.SIGKILL) -> None:
    """Signal every process in the container's cgroup (thawing it for SIGKILL)."""
    manager = load_manager(stored)
    if manager is not None:
        manager.signal_all(sig)


def destroy(stored: dict, timeout: float = 10.0) -> None:
    """Kill whatever is left in the container's cgroup and remove it."""
    manager = load_manager(stored)
    if manager is not None:
        manager.destroy(timeout)
