"""What the runtime hands the container side over fork (:mod:`pyoci.init`).

A module of its own so that the runtime can build it without importing the container
side, which its forked child imports (see :mod:`pyoci.init`).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing (and collections.abc) not imported at run time
if TYPE_CHECKING:
    from pyoci import security, unixsock
    from pyoci.channel import Channel


class InitContext:
    """Everything init needs, handed over by fork rather than serialised.

    A plain class: importing dataclasses (and inspect, ast, dis) costs every create.
    """

    def __init__(self, container_id: str, config: dict, bundle: str, rootfs: str,
                 channel: Channel, fifo_fd: int, no_pivot: bool = False,
                 preserve_fds: int = 0, new_keyring: bool = True,
                 console: unixsock.Socket | None = None,
                 cgroup_dirs: dict[str, str] | None = None, join_cgroup: object = None,
                 security: security.Plan | None = None,
                 mount_trees: dict[int, int] | None = None) -> None:
        self.container_id = container_id
        self.config = config
        self.bundle = bundle
        self.rootfs = rootfs
        self.channel = channel
        self.fifo_fd = fifo_fd
        self.no_pivot = no_pivot
        self.preserve_fds = preserve_fds
        self.new_keyring = new_keyring
        self.console = console
        self.cgroup_dirs = cgroup_dirs if cgroup_dirs is not None else {}
        # callable(pid, defer=...) placing a process in the container's cgroups
        self.join_cgroup = join_cgroup
        self.security = security  # caps, seccomp, LSM: checked by the runtime
        self.mount_trees = mount_trees if mount_trees is not None else {}  # idmapped, by index
        self.host_pid = 0  # init's PID as the runtime sees it (stage1 tells init)
        self.go_fd = -1  # init's end of stage1's pipe: its host PID, then "j" (cgroups joined)
        self.late_flags = 0  # namespaces init makes itself, once in its cgroups (see stage1)
        self.executable = ""  # what init execs, and its environment: found before "ready"
        self.env: dict[str, str] = {}
