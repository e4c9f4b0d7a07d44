"""What runs on the container side, between fork and the user's program.

Two stages.  ``stage1`` is forked by the runtime: once the runtime has made the
cgroup, it joins it, enters or creates the namespaces (asking the runtime over the
channel to write user namespace maps) and forks ``init``, which is PID 1 of a new PID
namespace.  ``init`` builds the root filesystem, has the runtime set the limits and
run the create hooks (with neither hooks nor limits, it goes on while the runtime sets
the device rules), pivots, applies the ``process`` settings, reports ``ready`` and
then blocks on the exec fifo until ``start``; then it runs startContainer hooks and
execs.  Failures are sent to the runtime as one ``error`` message; nothing here
returns.

Only the container's processes import this module (and rootfs, devices, python-prctl
with it): the runtime's forked child does, while the runtime makes the cgroup (see
:func:`pyoci.container.create.become_stage1`), so that none of it is loaded on the
runtime's path to the fork nor held by the runtime afterwards.  Whatever init needs
after pivot_root must be imported by then (nothing on the host can be read past it).
"""

from __future__ import annotations

import _signal  # signal's C core: signal.py's enums import enum, functools, collections
import errno
import os

import _prctl  # noqa: F401 - python-prctl, for pyoci.capabilities (see its docstring)

from pyoci import devices, hooks, process, rootfs, security, syscalls
from pyoci.channel import Channel
from pyoci.errors import PyociError
from pyoci.init_context import InitContext
from pyoci.namespaces import NamespacePlan, bring_up_loopback


def stage1(ctx: InitContext) -> None:
    try:
        # First, whatever fails after: a message left unread would reset the channel,
        # and the runtime would not read why.
        _wait_for_cgroup_made(ctx)
        plan = NamespacePlan(ctx.config)
        _check_namespaces_for(ctx.config, plan)
        # While still the host's root: in a user namespace, once init is non-dumpable, its
        # /proc files belong to the host's root and container root could not write this.
        process.set_oom_score_adj(ctx.config.get("process") or {})
        # v1 hierarchies now; the v2 cgroup is left to init's fork (see DeferredJoin).
        deferred = ctx.join_cgroup(os.getpid(), defer=True) if ctx.join_cgroup else None
        # What a namespace costs the kernel is charged to its creator's cgroups, and a
        # new cgroup namespace is rooted in its creator's cgroup: where the v2 cgroup
        # accounts (has controllers), or a cgroup namespace is made, init makes those
        # that apply to their creator, once it is in the cgroup; stage1 makes only those
        # that apply to its children (pid, time).
        late = 0
        if deferred is not None and (deferred.accounts or plan.creates("cgroup")):
            late = plan.create_flags(exclude=("user", "pid", "time"))
        ctx.late_flags = late
        # Joined namespaces first (runc's order): once in a new user namespace, those of
        # the host could no longer be entered.
        plan.enter_joined()
        if plan.creates("user"):
            syscalls.unshare(syscalls.CLONE_NEWUSER)
            ctx.channel.send("userns")
            _expect_ok(ctx.channel)
        if plan.has("user"):
            _become_userns_root()
        syscalls.unshare(plan.create_flags(exclude=("user",)) & ~late)
        if plan.creates("network") and not late & syscalls.CLONE_NEWNET:
            bring_up_loopback()
        if plan.creates("time"):
            _write_time_offsets(ctx.config.get("linux", {}).get("timeOffsets", {}))
        # init is visible in the container from its first instruction: not dumpable.
        security.harden_process()
        # init reads ``go`` before its first word to the runtime, which must come after
        # stage1's "pid" (see _take_host_pid); its mounts need not wait for that.
        go_read, go_write = os.pipe()
        pid = deferred.fork(into=_same_credentials(plan)) if deferred else os.fork()
        if pid == 0:
            os.close(go_write)
            if deferred:
                deferred.close()
            ctx.go_fd = go_read
            init(ctx, plan)
        ctx.channel.send("pid", pid=pid)
        os.write(go_write, b"%d\n" % pid)
        if deferred:
            try:
                deferred.finish(pid)
            except PyociError as e:  # init reports it, with the mount points it made
                os.write(go_write, b"E" + str(e).encode())
                os._exit(1)
        os.write(go_write, b"j")
        os._exit(0)
    except BaseException as e:  # noqa: BLE001 - everything must reach the runtime
        _fail(ctx.channel, e)


def _wait_for_cgroup_made(ctx: InitContext) -> None:
    """The runtime makes the container's cgroup while stage1 starts up: wait until it is
    there. Told that there is none after all (rootless), join none."""
    msg = ctx.channel.recv()
    if msg["type"] != "ok":
        raise PyociError(msg.get("msg", "runtime refused to continue"))
    if "cgroup_dirs" in msg:
        ctx.join_cgroup = None
        ctx.cgroup_dirs = msg["cgroup_dirs"]


def _same_credentials(plan: NamespacePlan) -> bool:
    """Whether stage1 still has the runtime's credentials and cgroup namespace."""
    return not plan.has("user") and not any(t == "cgroup" for t, _ in plan.join)


_go_buffer = b""


def _read_go(fd: int, token: bytes | None) -> bytes:
    """What stage1 wrote to init's pipe: up to ``token``, or (None) all of it."""
    global _go_buffer
    while token is None or token not in _go_buffer:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        _go_buffer += chunk
    return _go_buffer


def _take_host_pid(ctx: InitContext) -> None:
    """Init's PID as the runtime sees it: stage1 writes it to ``go`` once it has sent the
    runtime "pid", so that init's first message (hooks, ready or an error) comes after
    that one on the channel they share. Init reads it only then: the mounts before
    need neither the PID nor the runtime."""
    if ctx.go_fd >= 0 and not ctx.host_pid:
        ctx.host_pid = int(_read_go(ctx.go_fd, b"\n").split(b"\n")[0] or 0)


def _wait_for_cgroups(ctx: InitContext) -> None:
    """Before anything the container's cgroups must account (hooks, limits) or forks:
    stage1's "j" once it has joined init to them, or its error. Init's host PID too."""
    if ctx.go_fd < 0:
        return
    _take_host_pid(ctx)
    rest = _read_go(ctx.go_fd, b"\nj").partition(b"\n")[2]  # "j": not stage1's exit
    if rest != b"j":
        rest = _read_go(ctx.go_fd, None).partition(b"\n")[2]  # "E<message>", to the end
    os.close(ctx.go_fd)
    ctx.go_fd = -1
    if rest != b"j":
        raise PyociError(rest[1:].decode(errors="replace") if rest.startswith(b"E")
                         else "container init: stage1 exited before it joined the cgroups")


def _check_namespaces_for(config: dict, plan: NamespacePlan) -> None:
    """Settings that need a namespace of the container's own are refused without one
    (runc's wording), rather than silently not applied (or applied to the host's)."""
    for key in ("hostname", "domainname"):
        if config.get(key) and not plan.has("uts"):
            raise PyociError(f"unable to set {key} without a private UTS namespace")
    if config.get("linux", {}).get("timeOffsets") and not plan.creates("time"):
        raise PyociError("unable to set time offsets without a new time namespace")


def _become_userns_root() -> None:
    """Be root of the (created or joined) user namespace, not its overflow id.

    Until then the process keeps the host's ids, which the namespace may not map, and
    whatever it creates (devpts, tmpfs, files) would fail with EOVERFLOW.
    """
    try:
        os.setgroups([])
    except PermissionError:  # setgroups is "deny" in this user namespace
        pass
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def _write_time_offsets(offsets: dict) -> None:
    lines = [f"{clock} {o.get('secs', 0)} {o.get('nanosecs', 0)}\n"
             for clock, o in offsets.items()]
    if lines:
        # through a detached procfs: a joined mount namespace's /proc could redirect it
        from pyoci import procfs

        with procfs.ProcFS() as pfs:
            pfs.write(f"{os.getpid()}/timens_offsets", "".join(lines))


def _expect_ok(channel: Channel) -> None:
    msg = channel.recv()
    if msg["type"] != "ok":
        raise PyociError(msg.get("msg", "runtime refused to continue"))


def _fail(channel: Channel, e: BaseException, created: list[str] | None = None) -> None:
    if isinstance(e, PyociError):
        msg = str(e)
    elif isinstance(e, OSError):
        msg = f"{e.strerror or e}" + (f": {e.filename}" if e.filename else "")
    else:
        msg = f"{type(e).__name__}: {e}"
    try:
        channel.send("error", msg=msg, detail=_frames(e), created=created or [])
    finally:
        os._exit(1)


def _frames(e: BaseException) -> str:
    """Where ``e`` was raised, for the --debug log: file:line per frame, innermost last.

    Not the traceback module: init fails past pivot_root, where nothing can be imported,
    and loading it up front (with linecache, tokenize, textwrap) would cost every create.
    """
    lines = [f"{type(e).__name__}: {e}"]
    tb = e.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        lines.append(f"  {code.co_filename}:{tb.tb_lineno} in {code.co_name}")
        tb = tb.tb_next
    return "\n".join(lines)


def init(ctx: InitContext, plan: NamespacePlan) -> None:
    created: list[str] = []
    try:
        if ctx.late_flags:  # see stage1
            _wait_for_cgroups(ctx)
            syscalls.unshare(ctx.late_flags)
            if ctx.late_flags & syscalls.CLONE_NEWNET:
                bring_up_loopback()
        _prepare(ctx, plan, created)
    except BaseException as e:  # noqa: BLE001
        try:
            _take_host_pid(ctx)
        except OSError:
            pass
        _fail(ctx.channel, e, created)
    _wait_for_start_and_exec(ctx)


def _prepare(ctx: InitContext, plan: NamespacePlan, created: list[str]) -> None:
    config, proc = ctx.config, ctx.config.get("process") or {}
    linux = config.get("linux", {})
    if linux.get("sysctl"):
        from pyoci import procfs  # noqa: F401 - set_sysctls writes through it past pivot_root
    if ctx.new_keyring:
        _join_session_keyring(ctx.container_id)
    rootfs.set_root_propagation(config)
    rootfs.bind_rootfs(ctx.rootfs)
    root = rootfs.Rootfs(ctx.rootfs, created)
    try:
        rootfs.mount_all(root, config, ctx.bundle, ctx.cgroup_dirs, ctx.mount_trees)
        if devices.needs_dev_setup(config):
            devices.create_devices(root, config, in_userns=plan.has("user"))
            devices.setup_ptmx(root)
    finally:
        root.close()
    _wait_for_cgroups(ctx)
    if _waits_at_hooks(config):
        ctx.channel.send("hooks")
        _expect_ok(ctx.channel)
        hooks.run_hooks(config.get("hooks", {}).get("createContainer"),
                        _hook_state(ctx, "creating"), "createContainer")
    else:
        # The runtime sets the device rules meanwhile (and has, by the time it takes
        # "ready"); should that fail, the mount points made here are its to remove.
        ctx.channel.send("hooks", reply=False, created=created)
    rootfs.pivot(ctx.rootfs, ctx.no_pivot)
    if proc.get("terminal"):
        _setup_terminal(ctx)
    # runc's order: cwd made and sysctls written while / and /proc/sys are still writable
    rootfs.make_cwd(proc.get("cwd", "/"))
    process.set_sysctls(linux.get("sysctl", {}))
    rootfs.finalize(config)
    if "hostname" in config and plan.has("uts"):
        syscalls.sethostname(config["hostname"])
    if "domainname" in config and plan.has("uts"):
        syscalls.setdomainname(config["domainname"])
    process.set_rlimits(proc)
    process.set_personality(linux)
    security.apply_process(ctx.security, proc,
                           lambda: process.switch_user(proc.get("user", {})))
    cwd = proc.get("cwd", "/")
    try:
        os.chdir(cwd)
    except OSError as e:
        raise PyociError(f"process.cwd {cwd}: {e.strerror}") from None
    security.check_cwd()
    env = process.environment(proc, with_home=True)
    if "LISTEN_FDS" in env:  # socket activation (see create): this very process
        env["LISTEN_PID"] = str(os.getpid())
    ctx.executable = process.find_executable(proc["args"][0], env)
    ctx.env = env
    for fd in range(3, 3 + ctx.preserve_fds):
        os.set_inheritable(fd, True)
    process.close_extra_fds(3 + ctx.preserve_fds)
    security.prepare_exec(ctx.security, proc,
                          {**_hook_state(ctx, "creating"), "pid": ctx.host_pid})
    ctx.channel.send("ready")


def _waits_at_hooks(config: dict) -> bool:
    """Whether init waits at "hooks" for the runtime: hooks to run in their order, or
    limits (a terminal: device rules) that must hold for the rest of the set-up. Without,
    init goes on at once, and the runtime's round trip leaves the critical path."""
    if any((config.get("hooks") or {}).get(kind)
           for kind in ("prestart", "createRuntime", "createContainer")):
        return True
    if (config.get("process") or {}).get("terminal"):
        return True
    res = config.get("linux", {}).get("resources") or {}
    return any(v for k, v in res.items() if k != "devices")


def _join_session_keyring(name: str) -> None:
    """A keyring of the container's own, unless --no-new-keyring (runc's default)."""
    try:
        syscalls.join_session_keyring(name)
    except OSError as e:
        if e.errno != errno.ENOSYS:  # kernels without keyrings: nothing to isolate
            raise


def _setup_terminal(ctx: InitContext) -> None:
    if ctx.console is None:
        raise PyociError("process.terminal is set but no console socket was given")
    from pyoci import tty  # imported by the runtime (the console socket): no file is read

    master, _ = tty.open_pty()
    # the slave by fd, never by its /dev/pts path, which the container could redirect
    slave = tty.open_peer(master)
    root = rootfs.Rootfs("/")
    try:
        tty.bind_console(root, slave)
    finally:
        root.close()
    tty.send_master(ctx.console, master)
    os.close(master)
    ctx.console.close()
    tty.become_session_leader(slave)


def _hook_state(ctx: InitContext, status: str) -> dict:
    state = {"ociVersion": ctx.config.get("ociVersion", "1.3.0"), "id": ctx.container_id,
             "status": status, "pid": os.getpid(), "bundle": ctx.bundle}
    if ctx.config.get("annotations"):
        state["annotations"] = ctx.config["annotations"]
    return state


def _wait_for_start_and_exec(ctx: InitContext) -> None:
    """Block until ``start`` opens the fifo; report through it, then exec."""
    _die_on_signals()
    try:
        fifo = os.open(f"/proc/self/fd/{ctx.fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        os._exit(1)
    os.close(ctx.fifo_fd)
    proc = ctx.config["process"]
    try:
        hooks.run_hooks(ctx.config.get("hooks", {}).get("startContainer"),
                        _hook_state(ctx, "created"), "startContainer")
        os.write(fifo, b"0")
        # seccomp, the LSM label and the exec itself: from C, in the sealed trampoline
        security.exec_container(ctx.security, ctx.executable, proc["args"], ctx.env,
                                report_fd=fifo, keep_fds=3 + ctx.preserve_fds)
    except security.FinalStepFailed:  # already reported through the fifo
        os._exit(1)
    except BaseException as e:  # noqa: BLE001
        msg = str(e) if isinstance(e, PyociError) else f"exec {proc['args'][0]}: {e}"
        os.write(fifo, b"E" + msg.encode())
        os._exit(1)


# Signals whose default action ends a process. Init is PID 1 of its namespace, where the
# kernel drops a signal that has no handler (but KILL/STOP sent from outside), so without
# these a created container would ignore `kill <id> TERM`; runc's Go init exits on them.
# exec resets handled signals to their defaults, so the user's program is unaffected.
_TERMINATING = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS",
                "SIGFPE", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM",
                "SIGSTKFLT", "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGIO", "SIGPWR",
                "SIGSYS")


def _die_on_signals() -> None:
    """While created, exit on any signal that would end an ordinary process (a C
    handler: one call instead of a Python handler per signal)."""
    sigs = [getattr(_signal, name) for name in _TERMINATING if hasattr(_signal, name)]
    sigs += range(_signal.SIGRTMIN, _signal.SIGRTMAX + 1)
    syscalls.die_on_signals(sigs)
