"""What the process of ``exec`` runs inside the container, between the C entry and execve.

The runtime (:mod:`pyoci.container.exec`) calls :func:`pyoci.syscalls.exec_enter`, which
in C forks, makes the process non-dumpable, joins the container's cgroups and namespaces
and clones; in the new process it returns here, to :func:`start`, with every signal
blocked.  This process is already inside the container's mount namespace: no module may
be imported from here on (the host's files are out of reach), so everything used below
is imported at the top of this module, which the runtime imports before the fork (and
:mod:`pyoci.tty`, which only a terminal needs, by the runtime when there is one).

:func:`start` applies the process settings (terminal, rlimits, LSM label, user, cwd,
capabilities, no_new_privs, seccomp), reports ``exec`` over the channel and execs; any
failure is reported as one ``error`` message instead.  The channel is close-on-exec, so
the runtime reads EOF once the program is running.  Nothing here returns.
"""

from __future__ import annotations

import _signal  # signal's C core: signal.py's enums import enum, functools, collections
import errno
import os
import stat

from pyoci import console, jsonio, process, security, syscalls, unixsock
from pyoci.errors import PyociError


class ExecContext:
    """Everything the exec'd process needs, handed over by fork rather than serialised."""

    def __init__(self, process_spec: dict, config: dict, channel: unixsock.Socket,
                 console_socket: unixsock.Socket | None = None,
                 winsize: tuple[int, int] | None = None, keep_fds: int = 0,
                 listen_fds: int = 0, user_name: str | None = None,
                 group_name: str | None = None, gid_given: bool = False,
                 plan: security.Plan | None = None, state: dict | None = None) -> None:
        self.process = process_spec
        self.config = config
        self.channel = channel
        self.console_socket = console_socket
        self.winsize = winsize          # the caller's terminal size, for a foreground pty
        self.keep_fds = keep_fds        # fds 3..3+keep_fds-1 are passed to the program
        self.listen_fds = listen_fds    # the first listen_fds of them are LISTEN_FDS
        self.user_name = user_name      # ``--user NAME[:GROUP]``: resolved in the container
        self.group_name = group_name
        self.gid_given = gid_given      # a gid or group was given with the user name
        self.plan = plan                # caps, seccomp, LSM: checked by the runtime
        self.state = state or {}        # the container's state, for a seccomp listener


def start(ctx: ExecContext) -> None:
    """Become the container's new process; never returns."""
    try:
        console.reset_signals_for_exec()
        _start(ctx)
    except security.FinalStepFailed:
        pass  # already reported on the channel
    except BaseException as e:  # noqa: BLE001 - everything must reach the runtime
        _report(ctx, e)
    os._exit(127)


def _start(ctx: ExecContext) -> None:
    proc = ctx.process
    user = dict(proc.get("user") or {})
    _resolve_user(ctx, user)
    proc = {**proc, "user": user}
    if proc.get("terminal"):
        _setup_console(ctx, proc)
    process.set_rlimits(proc)
    process.set_oom_score_adj(proc)
    _check_mapped(user)
    _fix_stdio_permissions(user.get("uid", 0))
    # bounding set, the user switch keeping caps, the other sets, no_new_privs
    security.apply_process(ctx.plan, proc, lambda: process.switch_user(user))
    cwd = proc.get("cwd") or "/"
    try:
        os.chdir(cwd)
    except OSError as e:
        raise PyociError(f'chdir to cwd ("{cwd}") set in config.json failed: '
                         f"{_strerror(e)}") from None
    security.check_cwd()
    env = process.environment(proc, with_home=True)
    args = proc["args"]
    executable = process.find_executable(args[0], env)
    keep = 3 + ctx.keep_fds
    for fd in range(3, keep):
        os.set_inheritable(fd, True)
    syscalls.close_range_cloexec(keep)
    if ctx.listen_fds:
        env["LISTEN_FDS"] = str(ctx.listen_fds)
        env["LISTEN_PID"] = str(os.getpid())  # our pid in the container's PID namespace
    security.prepare_exec(ctx.plan, proc, ctx.state)
    ctx.channel.send(jsonio.dumps({"type": "exec"}).encode())
    _signal.pthread_sigmask(_signal.SIG_SETMASK, [])
    # The LSM label, the seccomp filter and execve itself: from C, in the sealed
    # trampoline (pyoci.security / pyoci.seccomp).  A failure from there on is written
    # to the channel as "E<message>" (FinalStepFailed: already reported).
    security.exec_container(ctx.plan, executable, args, env,
                            report_fd=ctx.channel.fileno(), keep_fds=keep)


# --------------------------------------------------------------------------------------
# user, terminal, stdio


def _resolve_user(ctx: ExecContext, user: dict) -> None:
    """Fill in a ``--user NAME[:GROUP]`` from the container's /etc/passwd and /etc/group."""
    if ctx.user_name is not None:
        entry = next((e for e in _read_db("/etc/passwd") if e[0] == ctx.user_name), None)
        if entry is None or len(entry) < 4:
            raise PyociError(f"unable to find user {ctx.user_name}: no matching entries "
                             "in passwd file")
        user["uid"] = _int(entry[2])
        if not ctx.gid_given:
            user["gid"] = _int(entry[3])
    if ctx.group_name is not None:
        entry = next((e for e in _read_db("/etc/group") if e[0] == ctx.group_name), None)
        if entry is None:
            raise PyociError(f"unable to find group {ctx.group_name}: no matching entries "
                             "in group file")
        user["gid"] = _int(entry[2])


def _read_db(path: str) -> list[list[str]]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return []
    return [line.split(":") for line in lines
            if line and not line.startswith("#") and line.count(":") >= 2]


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return -1


def _check_mapped(user: dict) -> None:
    """In a user namespace, an unmapped uid or gid is a clear error, not EINVAL later."""
    for key, kind in (("uid", "uid"), ("gid", "gid")):
        try:
            with open(f"/proc/self/{kind}_map") as f:
                ranges = [tuple(int(x) for x in line.split()) for line in f if line.strip()]
        except OSError:
            return
        value = user.get(key, 0)
        if not any(first <= value < first + count for first, _, count in ranges):
            raise PyociError(f"cannot set {kind} to unmapped user in user namespace")


def _setup_console(ctx: ExecContext, proc: dict) -> None:
    """A pty from the container's devpts: master to the console socket, slave our stdio."""
    if ctx.console_socket is None:
        raise PyociError("process.terminal is set but no console socket was given")
    from pyoci import tty  # already imported by the runtime: no file is read here

    master, _ = tty.open_pty()
    # the slave by fd, never by its /dev/pts path, which the container could redirect
    slave = tty.open_peer(master)
    size = ctx.winsize
    if size is None and proc.get("consoleSize"):
        size = (proc["consoleSize"].get("height", 0), proc["consoleSize"].get("width", 0))
    if size is not None:
        console.set_winsize(master, *size)
    tty.send_master(ctx.console_socket, master)
    os.close(master)
    ctx.console_socket.close()
    tty.become_session_leader(slave)


NULL_DEVICE = os.makedev(1, 3)


def _fix_stdio_permissions(uid: int) -> None:
    """As runc: stdio the new user could not reopen (/proc/self/fd/N) is chowned to it,
    except the null device.  That is recognised by its device number, not by comparing
    with the container's /dev/null, which the container could have replaced."""
    for fd in (0, 1, 2):
        try:
            st = os.fstat(fd)
        except OSError:
            continue
        if st.st_uid == uid or (stat.S_ISCHR(st.st_mode) and st.st_rdev == NULL_DEVICE):
            continue
        try:
            os.fchown(fd, uid, st.st_gid)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.EPERM, errno.EROFS, errno.EBADF):
                raise


# --------------------------------------------------------------------------------------
# errors


def _strerror(e: OSError | None) -> str:
    if e is None:
        return "unknown error"
    return (e.strerror or str(e)).lower()


def _report(ctx: ExecContext, e: BaseException) -> None:
    if isinstance(e, PyociError):
        msg = str(e)
    elif isinstance(e, OSError):
        msg = _strerror(e) + (f": {e.filename}" if e.filename else "")
    else:
        msg = f"{type(e).__name__}: {e}"
    try:
        ctx.channel.send(jsonio.dumps({"type": "error", "msg": msg}).encode())
    except OSError:
        pass
