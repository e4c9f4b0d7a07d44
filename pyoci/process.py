"""The ``process`` section applied to init just before it becomes the user's program."""

from __future__ import annotations

import os
import resource

from pyoci import syscalls as sc
from pyoci.errors import PyociError

PERSONALITY_DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}
PERSONALITY_FLAGS = {"ADDR_NO_RANDOMIZE": 0x0040000, "ADDR_COMPAT_LAYOUT": 0x0200000,
                     "ADDR_LIMIT_32BIT": 0x0800000, "ADDR_LIMIT_3GB": 0x8000000,
                     "MMAP_PAGE_ZERO": 0x0100000, "READ_IMPLIES_EXEC": 0x0400000,
                     "SHORT_INODE": 0x1000000, "STICKY_TIMEOUTS": 0x4000000,
                     "UNAME26": 0x0020000, "WHOLE_SECONDS": 0x2000000,
                     "FDPIC_FUNCPTRS": 0x0080000}


def set_rlimits(process: dict) -> None:
    for rl in process.get("rlimits", []):
        name = rl["type"]
        which = getattr(resource, name, None)
        if not name.startswith("RLIMIT_") or which is None:
            raise PyociError(f"process.rlimits: unknown rlimit type {name!r}")
        try:
            resource.setrlimit(which, (rl["soft"], rl["hard"]))
        except (ValueError, OSError) as e:
            raise PyociError(f"process.rlimits: setting {name} to soft {rl['soft']}, hard "
                             f"{rl['hard']}: {getattr(e, 'strerror', None) or e}") from None


def set_oom_score_adj(process: dict) -> None:
    if "oomScoreAdj" in process:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(process["oomScoreAdj"]))


def set_sysctls(sysctls: dict[str, str]) -> None:
    """Write each key through a detached procfs (pyoci.procfs): no symlink, bind mount or
    tmpfs the container put in its /proc can redirect the write (CVE-2025-52881).
    Past pivot_root: init imports pyoci.procfs before, for a config with sysctls."""
    if not sysctls:
        return
    from pyoci import procfs

    for key, value in sysctls.items():
        rel = key.replace(".", "/")
        if ".." in rel.split("/") or "" in rel.split("/"):
            raise PyociError(f"linux.sysctl: invalid key {key!r}")
        try:
            fd = procfs.shared().open(f"sys/{rel}", os.O_WRONLY)
        except OSError as e:
            raise PyociError(f"linux.sysctl: {key}: {e.strerror}") from None
        try:
            os.write(fd, value.encode())
        except OSError as e:
            raise PyociError(f"linux.sysctl: {key}={value}: {e.strerror}") from None
        finally:
            os.close(fd)


def set_personality(linux: dict) -> None:
    pers = linux.get("personality")
    if not pers:
        return
    domain = pers.get("domain", "LINUX")
    if domain not in PERSONALITY_DOMAINS:
        raise PyociError(f"linux.personality.domain: unknown domain {domain!r}")
    value = PERSONALITY_DOMAINS[domain]
    for flag in pers.get("flags", []):
        if flag not in PERSONALITY_FLAGS:
            raise PyociError(f"linux.personality.flags: unknown flag {flag!r}")
        value |= PERSONALITY_FLAGS[flag]
    sc.personality(value)


def switch_user(user: dict) -> None:
    """Become the configured uid/gid with the configured supplementary groups."""
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    try:
        groups = user.get("additionalGids")
        if groups is not None or _setgroups_allowed():
            os.setgroups(groups or [])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    except OSError as e:
        raise PyociError(f"process.user: cannot switch to uid {uid} gid {gid}: "
                         f"{e.strerror}") from None
    if "umask" in user:
        os.umask(user["umask"])


def _setgroups_allowed() -> bool:
    try:
        with open("/proc/self/setgroups") as f:
            return f.read().strip() == "allow"
    except OSError:
        return True


def environment(process: dict, with_home: bool = False) -> dict[str, str]:
    """``process.env`` as a dict; ``with_home``: HOME added if missing, as runc does."""
    env: dict[str, str] = {}
    for item in process.get("env", []):
        key, sep, value = item.partition("=")
        if sep:
            env[key] = value
    if with_home and "HOME" not in env:
        env["HOME"] = home_of(process.get("user", {}).get("uid", 0))
    return env


def home_of(uid: int, passwd: str = "/etc/passwd") -> str:
    """The home directory of ``uid`` in the container's /etc/passwd, else ``/``."""
    try:
        with open(passwd, errors="replace") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid) and fields[5]:
                    return fields[5]
    except OSError:
        pass
    return "/"


def listen_fds() -> int:
    """Socket-activation fds (systemd's LISTEN_FDS, from fd 3) given to this very process:
    run, create and exec pass them on, before any --preserve-fds, as runc does."""
    count, pid = os.environ.get("LISTEN_FDS", ""), os.environ.get("LISTEN_PID", "")
    if not count.isdigit() or pid != str(os.getpid()):
        return 0
    return int(count)


def with_listen_fds(process: dict, count: int) -> dict:
    """``process`` whose env says ``count`` fds are passed (LISTEN_PID is set at exec)."""
    env = [e for e in process.get("env") or []
           if not e.startswith(("LISTEN_FDS=", "LISTEN_PID="))]
    return {**process, "env": [*env, f"LISTEN_FDS={count}"]}


def find_executable(name: str, env: dict[str, str]) -> str:
    """Resolve args[0] against the container's PATH, with runc's error wording."""
    if "/" in name:
        if not os.path.exists(name):
            raise PyociError(f'exec: "{name}": stat {name}: no such file or directory')
        return name
    for directory in env.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                                     "/sbin:/bin").split(":"):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise PyociError(f'exec: "{name}": executable file not found in $PATH')


def close_extra_fds(keep_upto: int) -> None:
    """Mark every fd from ``keep_upto`` on close-on-exec, so none leaks into the container."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= keep_upto:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass
