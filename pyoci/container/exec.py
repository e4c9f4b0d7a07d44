"""``exec``: run a new process inside an existing container, as ``runc exec`` does.

The process is built from the container's ``config.json`` ``process`` with the command
line's overrides (or taken whole from ``--process FILE``).  Under a shared lock on the
container (so that ``delete`` and ``start`` wait, while concurrent execs do not), the
runtime checks the container's status, pins its init with a pidfd and opens init's
namespace files and the container's ``cgroup.procs`` files; it checks that init is still
the same process afterwards, so every fd belongs to this container.

Then one C call (:func:`pyoci.syscalls.exec_enter`) forks an intermediate that becomes
non-dumpable, joins the cgroups and the namespaces (user first) and clones the new
process into the container's PID namespace as the runtime's own child.  That process
returns into :func:`pyoci.exec_init.start`, which applies the process settings and
execs; it reports ``exec`` (or an ``error``) over a close-on-exec channel, so EOF
after ``exec`` means the program is running.

Runtime failures raise :class:`ExecError` (the CLI exits 255, as runc does); otherwise
the result is the process's exit code, or 0 with ``--detach``.
"""

from __future__ import annotations

import _signal  # signal's C core: signal.py's enums import enum, functools, collections
import errno
import fcntl
import os
import select
import struct
import sys

import _prctl  # noqa: F401 - python-prctl: exec_init applies the capabilities past setns

from pyoci import exec_init, jsonio, process, security, syscalls, unixsock
from pyoci import state as st
from pyoci.console import SignalQueue, Terminal, caller_winsize, wait_foreground
from pyoci.container.container import Container
from pyoci.errors import ContainerNotFound, PyociError
from pyoci.namespaces import NAMESPACES

# The order namespaces are joined in: the user namespace first (it grants the rights
# for the others it owns; see _order_around_user_namespace for the ones it doesn't), the
# cgroup namespace after the cgroups themselves were joined.
NS_ORDER = ("user", "ipc", "uts", "network", "pid", "mount", "cgroup", "time")
NS_GET_USERNS = 0xB701  # _IO(0xb7, 0x1): an fd for the user namespace owning a namespace
_REPORT = struct.Struct("iiii")
# Signals that, before the process has started, make pyoci give up instead of waiting.
TERMINATING = frozenset({_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT})
KILL_WAIT_SECONDS = 2.0


class ExecError(PyociError):
    """A failure of the runtime (not of the process): runc prints it and exits 255."""


def exec_process(container_id: str, root: str, args: tuple[str, ...] | list[str] = (), *,
                 process_file: str | None = None, console_socket: str | None = None,
                 tty: bool = False, cwd: str | None = None, env: tuple[str, ...] = (),
                 user: str | None = None, additional_gids: tuple[int, ...] = (),
                 detach: bool = False, pid_file: str | None = None,
                 process_label: str | None = None, apparmor: str | None = None,
                 no_new_privs: bool = False, cap: tuple[str, ...] = (),
                 preserve_fds: int = 0, cgroups: tuple[str, ...] = (),
                 ignore_paused: bool = False) -> int:
    """Run a process in the container; its exit code (0 when detached)."""
    _check_single_threaded()
    listen_fds = process.listen_fds()
    _check_passed_fds(3 + listen_fds + preserve_fds)
    sub_cgroups = parse_sub_cgroups(cgroups)
    container = Container(container_id, root)
    job = _Exec(container, detach=detach)
    lock = _SharedLock(container.dir)
    try:
        lock.acquire()
        stored = container.stored()
        status = _check_status(container, stored, ignore_paused)
        assert stored is not None
        if process_file is None and not args:
            raise ExecError("process args cannot be empty")
        config = _load_config(container)
        proc, who = build_process(
            config.get("process") or {}, args, process_file=process_file, cwd=cwd,
            env=env, user=user, additional_gids=additional_gids, tty=tty,
            no_new_privs=no_new_privs, caps=cap, apparmor=apparmor,
            process_label=process_label)
        _check_terminal(proc, detach, console_socket)
        # caps parsed, seccomp compiled, LSM labels and user mappings checked: with the
        # container's config and this process
        plan = security.prepare({**config, "process": proc}, state_root=container.root)
        job.open_target(stored, config, sub_cgroups)
        if status == "paused":
            # --ignore-paused: the process freezes as it joins the cgroup; hold nothing
            # that resume would wait for.
            lock.release()
        job.plan = plan
        plan.connect()  # the seccomp listener, if the filter notifies
        job.spawn(proc, config, who, console_socket, keep_fds=listen_fds + preserve_fds,
                  listen_fds=listen_fds, close_fds=[lock.fd] if lock.fd >= 0 else [],
                  plan=plan, state=st.oci_state(stored, status))
        # The process is in the container's namespaces and cgroup: from now on a pause
        # or a delete sees it, so the lock can go.
        lock.release()
        job.wait_started()
        if pid_file:
            write_pid_file(pid_file, job.pid)
        if detach:
            job.release()
            return 0
        return job.wait()
    finally:
        lock.release()
        job.close()


# --------------------------------------------------------------------------------------
# the process to run


def build_process(base: dict, args, *, process_file: str | None = None,
                  cwd: str | None = None, env=(), user: str | None = None,
                  additional_gids=(), tty: bool = False, no_new_privs: bool = False,
                  caps=(), apparmor: str | None = None, process_label: str | None = None
                  ) -> tuple[dict, dict]:
    """The process spec runc's ``exec`` would run, and how to resolve a user by name.

    With ``process_file`` the file is the whole process (the other flags are ignored, as
    runc ignores them); otherwise the container's process with the flags applied.
    """
    who: dict = {}
    if process_file is not None:
        proc = _read_process_file(process_file)
    else:
        proc = jsonio.loads(jsonio.dumps(base))  # a deep copy
        proc["args"] = list(args)
        if cwd:
            proc["cwd"] = cwd
        if apparmor:
            proc["apparmorProfile"] = apparmor
        if process_label:
            proc["selinuxLabel"] = process_label
        if caps:
            sets = proc.setdefault("capabilities", {})
            for name in ("bounding", "effective", "inheritable", "permitted", "ambient"):
                sets[name] = list(sets.get(name) or []) + list(caps)
        proc["env"] = list(proc.get("env") or []) + list(env)
        proc["terminal"] = bool(tty)
        if no_new_privs:
            proc["noNewPrivileges"] = True
        if user:
            who = _apply_user(proc, user)
        for gid in additional_gids:
            if gid < 0:
                raise ExecError(f"additional-gids must be a positive number {gid}")
            proc.setdefault("user", {}).setdefault("additionalGids", []).append(gid)
    _validate_process(proc)
    return proc, who


def _apply_user(proc: dict, value: str) -> dict:
    """``--user UID[:GID]`` as runc takes it, or names, looked up in the container."""
    name, sep, group = value.partition(":")
    spec = proc.setdefault("user", {})
    who: dict = {}
    if not name:
        raise ExecError(f"invalid --user {value!r}: empty user")
    if sep and not group:
        raise ExecError(f"invalid --user {value!r}: empty group")
    if name.isdigit():
        spec["uid"] = int(name)
    else:
        who["user_name"] = name
    if group:
        who["gid_given"] = True
        if group.isdigit():
            spec["gid"] = int(group)
        else:
            who["group_name"] = group
    return who


def _read_process_file(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ExecError(f"open {path}: {(e.strerror or str(e)).lower()}") from None
    try:
        proc = jsonio.loads(data)
    except jsonio.JSONDecodeError as e:
        raise ExecError(f"{path}: invalid JSON at line {e.lineno} column {e.colno}: "
                        f"{e.msg}") from None
    except UnicodeDecodeError:
        raise ExecError(f"{path}: invalid JSON: not UTF-8 text") from None
    if proc is None:
        raise ExecError("process property must not be empty")
    if not isinstance(proc, dict):
        raise ExecError(f"{path}: $: the process must be a JSON object")
    from pyoci.config import validate_config
    from pyoci.errors import ConfigError

    try:
        validate_config({"ociVersion": "1.0.2", "process": proc})
    except ConfigError as e:
        msg = str(e).replace("config.json: $.process", f"{path}: $", 1)
        raise ExecError(msg) from None
    return proc


def _validate_process(proc: dict) -> None:
    """runc's validateProcessSpec, worded as runc words it."""
    cwd = proc.get("cwd")
    if not cwd:
        raise ExecError("Cwd property must not be empty")
    if not cwd.startswith("/"):
        raise ExecError("Cwd must be an absolute path")
    if not proc.get("args"):
        raise ExecError("args must not be empty")
    if proc.get("selinuxLabel") and not os.path.exists("/sys/fs/selinux/enforce"):
        raise ExecError("selinux label is specified in config, but selinux is disabled or "
                        "not supported")


def _check_terminal(proc: dict, detach: bool, console_socket: str | None) -> None:
    """runc's rules: a console socket goes with --detach and a terminal, and only then."""
    if detach and proc.get("terminal") and not console_socket:
        raise ExecError("cannot allocate tty if pyoci will detach without setting "
                        "console socket")
    if console_socket and (not detach or not proc.get("terminal")):
        raise ExecError("cannot use console socket if pyoci will not detach or allocate tty")


# --------------------------------------------------------------------------------------
# the container


class _SharedLock:
    """A shared flock on the container directory: exclusive holders (start, delete) wait
    for it, other execs do not."""

    def __init__(self, path) -> None:
        self.path = path
        self.fd = -1

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise ContainerNotFound() from None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except (FileNotFoundError, NotADirectoryError):
                same = False
            if not same:  # deleted while we waited for the lock
                raise ContainerNotFound()
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _check_status(container: Container, stored: dict | None, ignore_paused: bool) -> str:
    status = st.status_of(container.dir, stored)
    if status == "creating":
        raise ExecError("cannot exec in a container that is being created")
    if status == "stopped":
        raise ExecError("cannot exec in a stopped container")
    if status == "paused" and not ignore_paused:
        raise ExecError("cannot exec in a paused container (use --ignore-paused to override)")
    return status


def _load_config(container: Container) -> dict:
    with open(os.path.join(container.dir, st.CONFIG_FILE), "rb") as f:
        return jsonio.loads(f.read())


def _check_single_threaded() -> None:
    """The new process is cloned from a fork of this one and runs Python code before it
    execs: a lock another thread held at fork time would be held there forever."""
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        raise ExecError("exec must be called from a single-threaded process "
                        f"({threading.active_count()} threads are running)")


def _check_passed_fds(end: int) -> None:
    """Every fd to pass (3..end-1) must be one our caller gave us."""
    for fd in range(3, end):
        try:
            fcntl.fcntl(fd, fcntl.F_GETFD)
        except OSError:
            raise ExecError(f"--preserve-fds: fd {fd} is not open") from None


def parse_sub_cgroups(args: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``--cgroup [CONTROLLER[,CONTROLLER...]:]PATH`` as runc parses it: {ctrl or "": path}."""
    paths: dict[str, str] = {}
    for arg in args:
        parts = arg.split(":")
        if len(parts) > 2:
            raise ExecError(f"invalid --cgroup argument: {arg}")
        if len(parts) == 1:
            if len(args) != 1:
                raise ExecError(f"invalid --cgroup argument: {arg} (missing <controller>: "
                                "prefix)")
            paths[""] = arg
            continue
        for ctrl in parts[0].split(","):
            if not ctrl:
                raise ExecError(f"invalid --cgroup argument: {arg} (empty <controller> "
                                "prefix)")
            if ctrl in paths:
                raise ExecError(f"invalid --cgroup argument(s): controller {ctrl} specified "
                                "multiple times")
            paths[ctrl] = parts[1]
    return paths


def cgroup_dirs(stored: dict, pid: int, want_all: bool = False) -> list[tuple[frozenset, str]]:
    """The container's cgroup directories, as (controllers, host path) per hierarchy.

    From what the cgroup manager recorded in state.json (``cgroup``: v2 ``path``, or v1
    ``paths`` {mount point: [controllers, dir]}); for a container without one (rootless),
    from init's /proc/<pid>/cgroup: the hierarchies where init is somewhere else than we
    are (``want_all``: every hierarchy, for a ``--cgroup`` sub-cgroup).
    """
    recorded = stored.get("cgroup")
    if isinstance(recorded, dict) and recorded:
        if recorded.get("version") == 2:
            return [(frozenset(), recorded["path"])]
        return [(frozenset(ctrls), d) for ctrls, d in recorded.get("paths", {}).values()]
    theirs = _proc_cgroups(str(pid))
    ours = _proc_cgroups("self") if not want_all else {}
    wanted = {key: path for key, path in theirs.items() if want_all or ours.get(key) != path}
    if not wanted:
        return []
    mounts = _cgroup_mounts()
    dirs = []
    for key, path in wanted.items():
        ctrls = frozenset(c for c in key.split(",") if c)
        for opts, mroot, mountpoint in mounts:
            if (not ctrls and opts is None) or (ctrls and opts is not None and ctrls <= opts):
                if mroot != "/" and not (path == mroot or path.startswith(mroot + "/")):
                    continue
                rel = path[len(mroot):] if mroot != "/" else path
                dirs.append((ctrls, mountpoint + rel.rstrip("/")))
                break
    return dirs


def _proc_cgroups(pid: str) -> dict[str, str]:
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3:
            out[parts[1]] = parts[2]
    return out


def _cgroup_mounts() -> list[tuple[frozenset | None, str, str]]:
    """(v1 super options, or None for cgroup2; mount root; mount point) of cgroup mounts."""
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if len(rfields) < 3 or rfields[0] not in ("cgroup", "cgroup2"):
                continue
            root, mountpoint = _unescape(fields[3]), _unescape(fields[4])
            opts = None if rfields[0] == "cgroup2" else frozenset(rfields[2].split(","))
            mounts.append((opts, root, mountpoint))
    return mounts


def _unescape(text: str) -> str:
    return text.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n") \
        .replace("\\134", "\\")


def _with_sub(dirs: list[tuple[frozenset, str]], subs: dict[str, str]
              ) -> list[tuple[frozenset, str]]:
    out = []
    for ctrls, base in dirs:
        sub = subs.get("")
        if sub is None:
            sub = next((subs[c] for c in sorted(ctrls) if c in subs), None)
        if sub is None and not ctrls and len(set(subs.values())) == 1:
            sub = next(iter(subs.values()))  # cgroup v2: one tree for every controller
        if sub is not None:
            path = os.path.normpath(os.path.join(base, sub.lstrip("/")))
            if path != base and not path.startswith(base.rstrip("/") + "/"):
                raise ExecError(f"invalid --cgroup argument: {sub} is outside the "
                                "container's cgroup")
            base = path
        out.append((ctrls, base))
    return out


def _v2_leaf(directory: str, pid: int) -> str:
    """A cgroup v2 directory that can take a process: ``directory`` unless it delegates
    controllers to children (then a write is EBUSY: "no internal processes"), as when the
    container runs systemd; then the cgroup init itself is in now, as runc does."""
    try:
        with open(os.path.join(directory, "cgroup.subtree_control")) as f:
            if not f.read().strip():
                return directory
    except OSError:
        return directory
    path = _proc_cgroups(str(pid)).get("")
    if not path:
        return directory
    for opts, mroot, mountpoint in _cgroup_mounts():
        if opts is None and (mroot == "/" or path == mroot or path.startswith(mroot + "/")):
            inner = os.path.normpath(mountpoint + (path[len(mroot):] if mroot != "/" else path))
            if inner.startswith(directory.rstrip("/") + "/"):  # only below the container's
                return inner
    return directory


def write_pid_file(path: str, pid: int) -> None:
    """The pid as a bare number, replaced atomically: a reader never sees half of it."""
    path = os.path.abspath(path)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w") as f:
            f.write(str(pid))
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise ExecError(f"cannot write pid file {path}: {e.strerror}") from None


# --------------------------------------------------------------------------------------
# one exec in progress


class _Exec:
    """What an exec made, so that a failure can undo all of it."""

    def __init__(self, container: Container, detach: bool) -> None:
        self.container = container
        self.detach = detach
        self.pid = 0                       # the new process, our child, until reaped
        self.inter = 0                     # the intermediate, until reaped
        self.ns: list[tuple[int, int, str]] = []  # (fd, CLONE_NEW*, type)
        self.ns_types: list[str] = []      # the types joined, for error messages
        self.cgroup_fds: list[int] = []
        self.cgroup_paths: list[str] = []
        self.channel: unixsock.Socket | None = None
        self.console_recv: unixsock.Socket | None = None
        self.signals: SignalQueue | None = None
        self.terminal: Terminal | None = None
        self.plan: security.Plan | None = None

    # --- before the fork, under the lock

    def open_target(self, stored: dict, config: dict, subs: dict[str, str]) -> None:
        """Open init's namespaces and the cgroup.procs files, all checked to be init's."""
        pid = stored["pid"]
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            raise ExecError("cannot exec in a stopped container") from None
        try:
            if st.process_start_time(pid) != stored["pid_start"]:
                raise ExecError("cannot exec in a stopped container")
            self._open_namespaces(pid, config)
            dirs = cgroup_dirs(stored, pid, want_all=bool(subs))
            if subs:
                dirs = _with_sub(dirs, subs)
            else:
                dirs = [(ctrls, _v2_leaf(d, pid) if not ctrls else d) for ctrls, d in dirs]
            for _, d in dirs:
                path = os.path.join(d, "cgroup.procs")
                try:
                    self.cgroup_fds.append(os.open(path, os.O_WRONLY | os.O_CLOEXEC))
                except OSError as e:
                    what = "sub-cgroup" if subs else "cgroup"
                    raise ExecError(f"cannot join {what} {d}: "
                                    f"{(e.strerror or str(e)).lower()}") from None
                self.cgroup_paths.append(d)
            if select.select([pidfd], [], [], 0)[0]:  # init exited while we looked
                raise ExecError("cannot exec in a stopped container")
        finally:
            os.close(pidfd)

    def _open_namespaces(self, pid: int, config: dict) -> None:
        types = {ns.get("type") for ns in config.get("linux", {}).get("namespaces", [])}
        for ns_type in NS_ORDER:
            if ns_type not in types:
                continue
            flag, name = NAMESPACES[ns_type]
            try:
                fd = os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                raise ExecError("cannot exec in a stopped container") from None
            try:
                ours = os.stat(f"/proc/self/ns/{name}")
                if os.path.samestat(os.fstat(fd), ours):
                    os.close(fd)  # the host's own: nothing to join (and EINVAL for user)
                    continue
            except OSError:
                pass
            self.ns.append((fd, flag, ns_type))
        self._order_around_user_namespace()

    def _order_around_user_namespace(self) -> None:
        """The user namespace first, except for namespaces it does not own (one the config
        joins by path from the host, say): entering those needs the host's privileges,
        which joining the user namespace gives up, so they come before it."""
        user = next((fd for fd, _, t in self.ns if t == "user"), None)
        if user is None:
            return
        user_st = os.fstat(user)
        before, owned = [], []
        for entry in self.ns:
            if entry[2] == "user":
                continue
            try:
                owner = fcntl.ioctl(entry[0], NS_GET_USERNS)
            except OSError:
                owned.append(entry)
                continue
            try:
                (owned if os.path.samestat(os.fstat(owner), user_st) else before).append(entry)
            finally:
                os.close(owner)
        users = [e for e in self.ns if e[2] == "user"]
        self.ns = before + users + owned

    def spawn(self, proc: dict, config: dict, who: dict, console_socket: str | None,
              keep_fds: int, listen_fds: int, close_fds: list[int], plan: security.Plan,
              state: dict) -> None:
        parent_ch, child_ch = unixsock.socketpair(unixsock.SOCK_SEQPACKET)
        self.channel = parent_ch
        console_child = None
        winsize = None
        try:
            if proc.get("terminal"):
                # imported here, before the fork: the process needs it in the container
                from pyoci.tty import connect_console_socket

                if console_socket:
                    console_child = connect_console_socket(console_socket)
                else:  # a foreground terminal: pyoci receives the master itself
                    self.console_recv, console_child = unixsock.socketpair(
                        unixsock.SOCK_STREAM)
                    winsize = caller_winsize()
            ctx = exec_init.ExecContext(
                proc, config, child_ch, console_socket=console_child, winsize=winsize,
                keep_fds=keep_fds, listen_fds=listen_fds, user_name=who.get("user_name"),
                group_name=who.get("group_name"), gid_given=bool(who.get("gid_given")),
                plan=plan, state=state)
            if not self.detach:
                self.signals = SignalQueue()  # from now on signals wait for the process
            report_r, report_w = os.pipe()
            try:
                inter = syscalls.exec_enter([(fd, flag) for fd, flag, _ in self.ns],
                                            self.cgroup_fds, report_w, close_fds)
                if inter == 0:
                    exec_init.start(ctx)  # the new process, in the container: never returns
                self.inter = inter
                os.close(report_w)
                report_w = -1
                self._close_targets()
                self._wait_readable(report_r)
                data = _read_full(report_r, _REPORT.size)
                _kill(inter, reap_only=True)
                self.inter = 0
            finally:
                if report_w >= 0:
                    os.close(report_w)
                os.close(report_r)
        finally:
            child_ch.close()
            if console_child is not None:
                console_child.close()
            self._close_targets()
        if len(data) != _REPORT.size:
            raise ExecError("unable to start container process: the namespace-entry process "
                            "died")
        pid, err, step, index = _REPORT.unpack(data)
        if pid > 0:
            self.pid = pid
            return
        raise ExecError(self._step_error(err, step, index))

    def _wait_readable(self, fd: int) -> None:
        """Wait for ``fd``; a terminating signal meanwhile gives up (the process may be
        stuck in a frozen cgroup), any other is kept for the process."""
        if self.signals is None:
            return
        while True:
            ready, _, _ = select.select([fd, self.signals.fd], [], [])
            if self.signals.fd in ready:
                sigs = self.signals.take()
                self.signals.hold(sigs)
                stop = next((sig for sig in sigs if sig in TERMINATING), None)
                if stop is not None:
                    import signal

                    raise ExecError(f"interrupted by {signal.Signals(stop).name} before the "
                                    "process started")
            if fd in ready:
                return

    def _step_error(self, err: int, step: int, index: int) -> str:
        reason = os.strerror(err).lower() if err else "unknown error"
        if step == syscalls.EXEC_STEP_CGROUP and 0 <= index < len(self.cgroup_paths):
            return f"cannot join cgroup {self.cgroup_paths[index]}: {reason}"
        if step == syscalls.EXEC_STEP_SETNS and 0 <= index < len(self.ns_types):
            return f"failed to join {self.ns_types[index]} namespace: {reason}"
        if step == syscalls.EXEC_STEP_CLONE and err == errno.ENOMEM:
            return "cannot exec in a stopped container"  # its PID namespace has no init
        if step == syscalls.EXEC_STEP_DUMPABLE:
            return f"prctl(PR_SET_DUMPABLE): {reason}"
        return f"unable to start container process: clone: {reason}"

    def _close_targets(self) -> None:
        if self.ns:
            self.ns_types = [t for _, _, t in self.ns]
        for fd, _, _ in self.ns:
            os.close(fd)
        for fd in self.cgroup_fds:
            os.close(fd)
        self.ns, self.cgroup_fds = [], []

    # --- after the fork

    def wait_started(self) -> None:
        """Until the process has exec'd (EOF on the channel after ``exec``) or failed."""
        assert self.channel is not None
        execed, error = False, None
        while True:
            self._wait_readable(self.channel.fileno())
            try:
                data = self.channel.recv(65536)
            except InterruptedError:
                continue
            if not data:
                break
            if data.startswith(b"E"):  # from the final exec step (pyoci_final.c)
                error = data[1:].decode(errors="replace") or "exec failed"
                continue
            msg = jsonio.loads(data)
            if msg.get("type") == "exec":
                execed = True
            elif msg.get("type") == "error":
                error = msg.get("msg") or "unknown error"
        self.channel.close()
        self.channel = None
        if error is not None:
            self._kill_and_reap()
            raise ExecError(f"unable to start container process: {error}")
        if not execed:  # killed before it could exec: init died (or delete came)
            self._kill_and_reap()
            try:
                stored = self.container.stored()
            except ContainerNotFound:
                stored = None
            if stored is None or not st.is_alive(stored["pid"], stored["pid_start"]):
                raise ExecError("cannot exec in a stopped container")
            raise ExecError("unable to start container process: it was killed before exec")
        if self.console_recv is not None:
            _, fds, _, _ = unixsock.recv_fds(self.console_recv, 1024, 1)
            self.console_recv.close()
            self.console_recv = None
            if not fds:
                raise ExecError("unable to start container process: no console received")
            self.terminal = Terminal(fds[0])
            self.terminal.set_raw()

    def wait(self) -> int:
        assert self.signals is not None
        code = wait_foreground(self.pid, self.signals, self.terminal)
        self.pid = 0
        return code

    def release(self) -> None:
        """Detached: the process is on its own (re-parented when we exit)."""
        self.pid = 0

    def _kill_and_reap(self) -> None:
        for pid in (self.pid, self.inter):
            if pid:
                _kill(pid)
        self.pid = self.inter = 0

    def close(self) -> None:
        self._kill_and_reap()
        self._close_targets()
        if self.plan is not None:
            self.plan.close()
        for sock in (self.channel, self.console_recv):
            if sock is not None:
                sock.close()
        self.channel = self.console_recv = None
        if self.terminal is not None:
            self.terminal.close()
            self.terminal = None
        if self.signals is not None:
            self.signals.close()
            self.signals = None


def _read_full(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _kill(pid: int, reap_only: bool = False) -> None:
    """SIGKILL our child ``pid`` and reap it; give up waiting after KILL_WAIT_SECONDS (a
    process in a cgroup v1 freezer dies only once thawed: init adopts it when we exit)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        if not reap_only:
            _signal.pidfd_send_signal(pidfd, _signal.SIGKILL)
        select.select([pidfd], [], [], KILL_WAIT_SECONDS)
        os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, ProcessLookupError):
        pass
    finally:
        os.close(pidfd)
