"""``create``: the runtime side of building a container.

The runtime validates the config, claims ``<root>/<id>``, forks the
container side (:mod:`pyoci.init`) and serves its requests over the channel
until init reports ``ready``.  Any failure undoes everything: processes are
killed, the state directory removed, so a failed create leaves nothing.
"""

from __future__ import annotations

import _signal  # signal's C core: signal.py's enums import enum, functools, collections
import os
import time

from pyoci import hooks, jsonio, logger, process, security, userns
from pyoci import state as st
from pyoci.channel import Channel, ChannelClosed
from pyoci.config import load_config, rootfs_path
from pyoci.container.container import Container
from pyoci.errors import ContainerExists, PyociError
from pyoci.init_context import InitContext
from pyoci.namespaces import NamespacePlan
from pyoci.validate import check_container_id

TYPE_CHECKING = False  # typing (and collections.abc) not imported at run time
if TYPE_CHECKING:
    from collections.abc import Callable


def create(container: Container, bundle: str, *, pid_file: str | None = None,
           console_socket: str | None = None, no_pivot: bool = False,
           no_new_keyring: bool = False, preserve_fds: int = 0,
           meanwhile: Callable[[], None] | None = None) -> Container:
    """Create the container. ``meanwhile``: called once while init sets the container up
    (the runtime only waits then), for work the caller needs next (run: imports)."""
    check_container_id(container.id)
    bundle = os.path.abspath(bundle)
    config = load_config(bundle)
    _check_supported(config)
    # caps, seccomp, LSM, mappings: errors before any change
    sec = security.prepare(config, state_root=container.root)
    cgroup = _new_cgroup(config, container.id)
    if pid_file:
        pid_file = os.path.abspath(pid_file)
    os.makedirs(container.root, mode=0o711, exist_ok=True)
    try:
        os.mkdir(container.dir, 0o711)
    except FileExistsError:
        raise ContainerExists() from None
    builder = _Builder(container, config, bundle, cgroup)
    builder.meanwhile = meanwhile
    builder.security = sec
    builder.dir_stat = os.stat(container.dir)
    with _SignalGuard() as guard:
        try:
            builder.build(console_socket, no_pivot, preserve_fds, not no_new_keyring)
            builder.save(pid_file)
        except BaseException as e:
            guard.armed = False  # a second TERM must not cut the clean-up short
            deleted = not builder.owns_dir()
            builder.abort()
            if deleted and isinstance(e, OSError):
                raise PyociError(f"container {container.id} was deleted while it was being "
                                 "created") from None
            raise
        finally:
            builder.close()
    if sec.filter is not None:
        from pyoci.seccomp import remember

        remember(sec.filter)
    return container


class _SignalGuard:
    """Turn SIGTERM/SIGHUP/SIGINT/SIGQUIT during create into an exception.

    Their default action would end the runtime half-way, leaving a state directory, a
    cgroup and perhaps the container's init behind; as an exception they unwind through
    the builder's abort like any other failure. Only in the main thread (where Python
    runs handlers), and only for signals left at their defaults: a caller with handlers
    of its own (a foreground ``run`` queues signals for the container) keeps them.
    """

    SIGNALS = (_signal.SIGTERM, _signal.SIGHUP, _signal.SIGINT, _signal.SIGQUIT)

    def __init__(self) -> None:
        self.armed = True
        self.saved: dict[int, object] = {}

    def _handler(self, signum: int, _frame: object) -> None:
        if self.armed:
            self.armed = False
            import signal

            raise PyociError(f"create interrupted by {signal.Signals(signum).name}")

    def __enter__(self) -> _SignalGuard:
        for sig in self.SIGNALS:
            if _signal.getsignal(sig) in (_signal.SIG_DFL, _signal.default_int_handler):
                try:
                    self.saved[sig] = _signal.signal(sig, self._handler)
                except ValueError:  # not the main thread: Python runs no handler here
                    break
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self.saved.items():
            _signal.signal(sig, old)  # type: ignore[arg-type]


def utc_timestamp(ns: int) -> str:
    """state.json's ``created``: what ``datetime.now(UTC).isoformat()`` gives for the time
    ``ns`` (microseconds, truncated, omitted when zero), ``Z`` for ``+00:00`` (as runc).
    Made without datetime, which costs ~1 ms to import on every create."""
    seconds, micros = divmod(ns // 1000, 1_000_000)
    t = time.gmtime(seconds)
    stamp = (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"
             f"T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}")
    return f"{stamp}.{micros:06d}Z" if micros else f"{stamp}Z"


def become_stage1(ctx: InitContext) -> None:
    """The runtime's forked child: import the container side (:mod:`pyoci.init`, with
    rootfs, devices and python-prctl) and run stage1, which never returns.

    Imported here, while the runtime makes the cgroup that stage1 waits for, rather than
    by the runtime before the fork: off the path to init, and not held by the runtime.
    """
    try:
        from pyoci.init import stage1
    except BaseException as e:  # noqa: BLE001 - a broken install: say so, end the child
        os.write(2, f"pyoci: stage1: cannot import the container side: {e}\n".encode())
        os._exit(1)
    stage1(ctx)


def _check_supported(config: dict) -> None:
    if config.get("process") is None:
        raise PyociError("config.json: $.process: process must be set to create a container")
    plan = NamespacePlan(config)
    if not plan.has("mount"):
        raise PyociError("config.json: $.linux.namespaces: a mount namespace is required")


class _Builder:
    """One create in progress: what it made, so that a failure can undo it."""

    def __init__(self, container: Container, config: dict, bundle: str,
                 cgroup: tuple | None = None) -> None:
        self.container = container
        # (manager, resources): made before the fork, joined by stage1, set at "hooks"
        self.cgroup, self.resources = cgroup or (None, None)
        self.config = config
        self.bundle = bundle
        self.rootfs = rootfs_path(config, bundle)
        self.stage1_pid = 0
        self.init_pid = 0
        self.init_pidfd = -1  # init is not our child: a pidfd, never a PID that may be reused
        self.created_in_rootfs: list[str] = []  # mount points init made, undone on failure
        self.dir_stat: os.stat_result | None = None
        self.security: security.Plan | None = None
        self.meanwhile: Callable[[], None] | None = None
        self.config_saved = False
        self.staged_state: tuple[int, str] | None = None  # (init's start time, file)

    def build(self, console_socket: str | None, no_pivot: bool, preserve_fds: int,
              new_keyring: bool) -> None:
        fifo = os.path.join(self.container.dir, st.EXEC_FIFO)
        os.mkfifo(fifo, 0o622)
        # Not left to the umask: init opens it after switching to process.user, and
        # container root may be another uid on the host (runc chowns it to that uid).
        os.chmod(fifo, 0o622)
        try:
            os.chown(fifo, *_host_root_ids(self.config))
        except PermissionError:
            if os.geteuid() == 0:
                raise
            # rootless, container root is a subordinate id: 0622 lets it write anyway
        fifo_fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
        console = None
        if self.config["process"].get("terminal"):
            if not console_socket:
                raise PyociError("cannot allocate tty if pyoci will detach without setting "
                                 "console socket")
            from pyoci.tty import connect_console_socket

            console = connect_console_socket(console_socket)
        if self.security is not None:
            self.security.connect()  # the seccomp listenerPath, if the filter notifies
        # idmapped mount sources are made here, in the host's user namespace
        trees = userns.idmapped_trees(self.config, self.bundle)
        hooks.preload(self.config)  # createContainer/startContainer hooks run in init
        parent, child = Channel.pair()
        init_config = self.config
        listen = process.listen_fds()  # socket activation: passed first, as runc does
        if listen:
            init_config = {**self.config,
                           "process": process.with_listen_fds(self.config["process"], listen)}
            preserve_fds += listen
        ctx = InitContext(container_id=self.container.id, config=init_config,
                          bundle=self.bundle, rootfs=self.rootfs, channel=child,
                          fifo_fd=fifo_fd, no_pivot=no_pivot, preserve_fds=preserve_fds,
                          new_keyring=new_keyring,
                          console=console, cgroup_dirs=_cgroup_dirs(self.config, self.cgroup),
                          join_cgroup=self.cgroup.join if self.cgroup is not None else None,
                          security=self.security, mount_trees=trees)
        try:
            pid = os.fork()
            if pid == 0:
                parent.close()
                become_stage1(ctx)
            self.stage1_pid = pid
            child.close()
            self._make_cgroup_meanwhile(parent)
            self._serve(parent)
        finally:
            parent.close()
            os.close(fifo_fd)
            if console is not None:
                console.close()
            if self.security is not None:
                self.security.close()
            for tree in trees.values():
                os.close(tree)
            self._reap_stage1()

    def _make_cgroup_meanwhile(self, channel: Channel) -> None:
        """Make the cgroup while stage1, just forked, starts up (a fork of the runtime
        takes as long), then let it go on and join it; record the create meanwhile.

        Should the runtime die before the record, stage1 and init end at their next word
        to it (the channel is closed), as before the fork: only the cgroup is left over.
        """
        had_cgroup = self.cgroup is not None
        if had_cgroup:
            self._make_cgroup()
        go: dict = {}
        if had_cgroup and self.cgroup is None:  # none after all (see _make_cgroup)
            go["cgroup_dirs"] = _cgroup_dirs(self.config)
        try:
            channel.send("ok", **go)
        except OSError:
            pass  # stage1 is gone: _serve reports it
        self._record_creating()

    def _serve(self, channel: Channel) -> None:
        """Answer init's requests until it is ready, or raise its error."""
        while True:
            try:
                msg = channel.recv()
            except ChannelClosed:
                raise PyociError("container init exited before it was ready") from None
            kind = msg["type"]
            if kind == "userns":
                self._write_id_maps()
                channel.send("ok")
            elif kind == "pid":
                self.init_pid = msg["pid"]
                try:
                    self.init_pidfd = os.pidfd_open(self.init_pid)
                except ProcessLookupError:
                    pass  # gone already: the channel will say why
                self._record_creating()
                self._while_init_works()
            elif kind == "hooks":
                if not msg.get("reply", True):  # init went on (see pyoci.init)
                    self.created_in_rootfs = msg.get("created", [])
                    self._apply_resources()
                    continue
                try:
                    self._apply_resources()
                    self._run_create_hooks()
                except PyociError as e:
                    channel.send("error", msg=str(e))
                    self._collect_created(channel)
                    raise
                channel.send("ok")
            elif kind == "ready":
                return
            elif kind == "error":
                logger.debug("container init failed: %s", msg.get("detail", ""))
                self.created_in_rootfs = msg.get("created", [])
                raise PyociError(msg["msg"])

    def _while_init_works(self) -> None:
        """Init is setting the container up (mounts, devices, ...) and the runtime would
        only wait: what comes after ready is done now, on the other CPU. The container's
        config.json is read by nothing before state.json exists (save), and goes with the
        directory if the create fails."""
        with open(os.path.join(self.container.dir, st.CONFIG_FILE), "w") as f:
            f.write(jsonio.dumps(self.config))  # C encoder, one write (json.dump: neither)
        self.config_saved = True
        start_time = st.process_start_time(self.init_pid)
        if start_time is not None:
            self._stage_state(start_time)
        if self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            meanwhile()

    def _collect_created(self, channel: Channel) -> None:
        """After refusing init, take its last word: the mount points it made."""
        try:
            msg = channel.recv(timeout=5)
        except (ChannelClosed, OSError, ValueError):
            return
        if msg.get("type") == "error":
            self.created_in_rootfs = msg.get("created", [])

    def _write_id_maps(self) -> None:
        userns.write_id_maps(self.stage1_pid, self.config)

    def _state(self, status: str) -> dict:
        state = {"ociVersion": self.config.get("ociVersion", st.OCI_VERSION),
                 "id": self.container.id, "status": status, "pid": self.init_pid,
                 "bundle": self.bundle}
        if self.config.get("annotations"):
            state["annotations"] = self.config["annotations"]
        return state

    def _make_cgroup(self) -> None:
        from pyoci.cgroups import CgroupError

        try:
            self.cgroup.create()
        except CgroupError:
            if not userns.is_rootless() or _asks_for_limits(self.config):
                raise
            # rootless (--rootless, auto: not root), cgroups not delegated: run without
            # one, as runc does
            self.cgroup.abort()
            self.cgroup = None
            return
        self.cgroup.check(self.resources)

    def _apply_resources(self) -> None:
        """Set the cgroup's limits (as runc does before the prestart hooks).

        stage1 has exited by now: reaped first, so that pids.max counts init alone.
        """
        if self.cgroup is not None:
            self._reap_stage1()
            self.cgroup.apply(self.resources)

    def _run_create_hooks(self) -> None:
        all_hooks = self.config.get("hooks", {})
        state = self._state("creating")
        hooks.run_hooks(all_hooks.get("prestart"), state, "prestart")
        hooks.run_hooks(all_hooks.get("createRuntime"), state, "createRuntime")

    def _reap_stage1(self) -> None:
        if self.stage1_pid:
            try:
                os.waitpid(self.stage1_pid, 0)
            except ChildProcessError:
                pass
            self.stage1_pid = 0

    def save(self, pid_file: str | None) -> None:
        """Record the container; from here on ``state`` sees it as ``created``."""
        start_time = st.process_start_time(self.init_pid)
        if start_time is None:
            raise PyociError("container init exited before it was ready")
        if not self.config_saved:
            with open(os.path.join(self.container.dir, st.CONFIG_FILE), "w") as f:
                f.write(jsonio.dumps(self.config))
        if self.staged_state is None or self.staged_state[0] != start_time:
            self._stage_state(start_time)
        assert self.staged_state is not None
        os.replace(self.staged_state[1], os.path.join(self.container.dir, st.STATE_FILE))
        if pid_file:
            tmp = f"{pid_file}.{os.getpid()}.tmp"
            try:
                with open(tmp, "w") as f:
                    f.write(str(self.init_pid))
                os.replace(tmp, pid_file)
            except OSError as e:
                raise PyociError(f"cannot write pid file {pid_file}: {e.strerror}") from None

    def _stage_state(self, start_time: int) -> None:
        """state.json written aside while init works (``created``: its pid is known), for
        save to put in place: a new file costs up to a millisecond on ext4."""
        tmp = st.stage_state(self.container.dir, {
            "id": self.container.id, "pid": self.init_pid, "pid_start": start_time,
            "bundle": self.bundle, "rootfs": self.rootfs,
            "created": utc_timestamp(time.time_ns()), "owner": "",
            "annotations": self.config.get("annotations") or {},
            **_cgroup_state(self.cgroup, self.resources),
        })
        self.staged_state = (start_time, tmp)

    def _record_creating(self) -> None:
        """What a delete needs if this process dies before the container is ready."""
        record = {"id": self.container.id, "bundle": self.bundle, "rootfs": self.rootfs,
                  "creator": os.getpid(), "creator_start": st.process_start_time(os.getpid()),
                  "annotations": self.config.get("annotations") or {},
                  **_cgroup_state(self.cgroup, self.resources)}
        if self.init_pid:
            record["pid"] = self.init_pid
            record["pid_start"] = st.process_start_time(self.init_pid)
        st.write_state(self.container.dir, record, st.CREATING_FILE)

    def owns_dir(self) -> bool:
        """Whether <root>/<id> is still the directory this create made (not deleted, nor
        deleted and made again by another create)."""
        try:
            return self.dir_stat is not None and os.path.samestat(
                self.dir_stat, os.stat(self.container.dir))
        except FileNotFoundError:
            return False

    def close(self) -> None:
        if self.init_pidfd >= 0:
            os.close(self.init_pidfd)
            self.init_pidfd = -1

    def abort(self) -> None:
        """Undo a failed create: kill what was started, remove what was made."""
        if self.stage1_pid:  # our child, unreaped: its PID cannot be reused yet
            try:
                os.kill(self.stage1_pid, _signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.init_pidfd >= 0:
            try:
                _signal.pidfd_send_signal(self.init_pidfd, _signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._reap_stage1()
        if self.init_pidfd >= 0:
            _wait_pidfd(self.init_pidfd)
        if self.cgroup is not None:
            self.cgroup.abort()
        if self.created_in_rootfs:
            from pyoci.rootfs import remove_created

            remove_created(self.rootfs, self.created_in_rootfs)
        try:
            hooks.run_hooks(self.config.get("hooks", {}).get("poststop"),
                            self._state("stopped"), "poststop")
        except PyociError as e:
            logger.warning("%s", e)
        if self.owns_dir():
            st.remove_dir(self.container.dir)


def _host_root_ids(config: dict) -> tuple[int, int]:
    """The host uid and gid that container root maps to (0, 0 without a user namespace)."""
    linux = config.get("linux", {})
    if not NamespacePlan(config).creates("user"):
        return 0, 0
    ids = []
    for key in ("uidMappings", "gidMappings"):
        host = 0
        for m in linux.get(key, []):
            if m["containerID"] <= 0 < m["containerID"] + m["size"]:
                host = m["hostID"] - m["containerID"]
        ids.append(host)
    return ids[0], ids[1]


def _new_cgroup(config: dict, container_id: str) -> tuple | None:
    """The container's cgroup manager and resources, checked before anything is made."""
    from pyoci import cgroups
    from pyoci.cgroups.resources import from_spec

    return cgroups.new_manager(config, container_id), from_spec(config)


def _asks_for_limits(config: dict) -> bool:
    res = config.get("linux", {}).get("resources") or {}
    return any(v for k, v in res.items() if k != "devices")


def _cgroup_state(cgroup, resources: dict | None) -> dict:
    """What state.json keeps for pause, update, events, ps, kill --all and delete."""
    if cgroup is None:
        return {}
    return {"cgroup": cgroup.to_state(), "freezer": cgroup.freezer_file(),
            "resources": resources}


def _cgroup_dirs(config: dict, cgroup=None) -> dict[str, str]:
    """The directories a ``cgroup`` mount shows the container: its own cgroups."""
    if not any(m.get("type") == "cgroup" for m in config.get("mounts", [])):
        return {}
    if cgroup is not None:
        return cgroup.mount_dirs()
    from pyoci.rootfs import own_cgroup_dirs

    return own_cgroup_dirs()


def _wait_pidfd(fd: int) -> None:
    """Wait (up to 10 s) until the process behind a pidfd has exited."""
    import select

    select.select([fd], [], [], 10)


