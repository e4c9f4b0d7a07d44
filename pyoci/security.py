"""The container's security boundary, from config check to the final exec.

Runtime side, before anything is forked or written (a bad config is a one-line error
and leaves nothing behind): :func:`prepare` parses the capabilities, compiles the
seccomp filter, checks the LSM labels and the user namespace mappings, and returns a
:class:`Plan` that init inherits through fork.  ``Plan.connect`` then connects to the
seccomp ``listenerPath`` (closed again by ``Plan.close`` in the runtime).

Container side (init, and ``exec`` through the same functions):

* :func:`harden_process` - non-dumpable (its /proc/<pid>/exe, fd/, mem, environ are
  out of reach and it cannot be ptraced while it is visible in the container).
* :func:`apply_process` - bounding set, user switch keeping caps, the other sets, then
  no_new_privs; keeps CAP_SYS_ADMIN when the filter must be loaded without
  no_new_privs (the final step drops it right after loading).
* :func:`check_cwd` - the working directory is inside the container's root
  (CVE-2024-21626).
* :func:`exec_container` - the final step: LSM label, seccomp, exact caps, execve, in
  the sealed trampoline (see :mod:`pyoci.final`).
"""

from __future__ import annotations

import os
import sys

# Everything init uses is imported here or by prepare (in the runtime, before fork), before
# pivot_root hides the package: seccomp and lsm only for a config that asks for them.
from pyoci import capabilities, final
from pyoci.errors import PyociError
from pyoci.final import FinalStepFailed

TYPE_CHECKING = False  # collections.abc (and collections with it) not imported at run time
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["FinalStepFailed", "Plan", "apply_process", "check_cwd", "exec_container",
           "harden_process", "prepare", "prepare_exec"]


class Plan:
    """What create prepared for init: caps, no_new_privs, seccomp filter, LSM label.

    A plain class: importing dataclasses (and inspect, ast, dis) costs every create.
    """

    def __init__(self, caps: capabilities.CapSets | None = None, no_new_privs: bool = False,
                 filter: object = None, keep_admin: bool = False) -> None:  # noqa: A002
        self.caps = caps if caps is not None else capabilities.CapSets()
        self.no_new_privs = no_new_privs
        self.filter = filter  # pyoci.seccomp.Filter | None
        self.keep_admin = keep_admin
        self.listener_fd = -1
        self.state: dict = {}
        self.lsm: tuple[int, bytes] | None = None

    def __repr__(self) -> str:
        return (f"Plan(caps={self.caps!r}, no_new_privs={self.no_new_privs}, "
                f"filter={self.filter!r}, keep_admin={self.keep_admin})")

    def kept(self) -> tuple[frozenset[int], int]:
        """Caps held beyond the config until the filter is loaded, and the bounding-set
        mask the final step drops then (CAP_SETPCAP, needed for that, last)."""
        if not self.keep_admin:
            return frozenset(), 0
        admin, setpcap = capabilities.CAP_SYS_ADMIN, capabilities.CAP_NUMBERS["CAP_SETPCAP"]
        keep = {admin}
        drop = {admin} - self.caps.bounding
        if drop:
            keep.add(setpcap)
            drop |= {setpcap} - self.caps.bounding
        return frozenset(keep), capabilities.CapSets.mask(drop)

    def connect(self) -> None:
        """Connect to the seccomp listener (runtime side, before fork)."""
        if self.filter is not None and self.filter.notify and self.listener_fd < 0:
            from pyoci import seccomp

            self.listener_fd = seccomp.connect_listener(self.filter.listener_path)

    def close(self) -> None:
        if self.listener_fd >= 0:
            os.close(self.listener_fd)
            self.listener_fd = -1


def prepare(config: dict, state_root: str | None = None) -> Plan:
    """Check and compile everything security-related in ``config`` (runtime side); a
    seccomp profile compiled before is taken from ``state_root``'s cache."""
    from pyoci import userns

    proc = config.get("process") or {}
    linux = config.get("linux") or {}
    caps = capabilities.parse(proc.get("capabilities"))
    filt = None
    if linux.get("seccomp") is not None:
        from pyoci import seccomp  # init's exec_container uses it: imported before fork

        filt = seccomp.compile_filter(linux["seccomp"], state_root=state_root)
    if _has_labels(proc, linux):
        from pyoci import lsm  # init's prepare_exec uses it: imported before fork

        lsm.check(config)
    userns.check(config)
    nnp = bool(proc.get("noNewPrivileges"))
    keep_admin = (filt is not None and not nnp
                  and capabilities.CAP_SYS_ADMIN not in caps.effective)
    return Plan(caps=caps, no_new_privs=nnp, filter=filt, keep_admin=keep_admin)


def _has_labels(proc: dict, linux: dict) -> bool:
    """Whether the config sets an LSM label (without, :mod:`pyoci.lsm` has nothing to do)."""
    return bool(proc.get("apparmorProfile") or proc.get("selinuxLabel")
                or linux.get("mountLabel"))


def harden_process() -> None:
    """Not dumpable: nothing in the container can reach this process through /proc or
    ptrace (it needs CAP_SYS_PTRACE in the host's user namespace to)."""
    capabilities.set_dumpable(False)


def apply_process(plan: Plan | None, proc: dict, switch_user: Callable[[], None]) -> None:
    """Capabilities around the user switch, then no_new_privs."""
    if plan is None:
        plan = Plan(caps=capabilities.parse(proc.get("capabilities")),
                    no_new_privs=bool(proc.get("noNewPrivileges")))
    keep, _ = plan.kept()
    capabilities.apply_capabilities(plan.caps, switch_user=switch_user, keep=keep)
    if plan.no_new_privs:
        capabilities.set_no_new_privs()


def prepare_exec(plan: Plan | None, proc: dict, state: dict) -> None:
    """Last preparations in init before ``ready``: the LSM attribute, the notify state."""
    if plan is None:
        return
    if proc.get("apparmorProfile") or proc.get("selinuxLabel"):
        from pyoci import lsm  # loaded by prepare, in the runtime

        plan.lsm = lsm.exec_label(proc)
    plan.state = state


def check_cwd() -> None:
    """Refuse a working directory outside the container's root (CVE-2024-21626).

    getcwd(2) prefixes "(unreachable)" (and Python raises ENOENT) when the directory
    is not below this process's root, e.g. after ``chdir("/proc/self/fd/N")`` to a
    leaked host directory.
    """
    try:
        cwd = os.getcwd()
    except FileNotFoundError:
        cwd = "(unreachable)"
    if not cwd.startswith("/"):
        raise PyociError("process.cwd: the working directory is outside of the container's "
                         "root filesystem: possible container breakout detected")


def exec_container(plan: Plan | None, path: str, argv: list[str], env: dict[str, str], *,
                   report_fd: int = -1, keep_fds: int = 3) -> None:
    """The final step; returns only by raising (FinalStepFailed: already reported)."""
    procfs = sys.modules.get("pyoci.procfs")  # not imported: no shared procfs to close
    if procfs is not None:
        procfs.close_shared()
    if plan is None:
        plan = Plan()
    filt = plan.filter
    payload = b""
    if filt is not None and filt.notify:
        from pyoci import seccomp  # loaded by prepare, which compiled the filter

        payload = seccomp.process_state(filt, plan.state)
    lsm_fd, label = plan.lsm if plan.lsm else (-1, b"")
    caps_words = plan.caps.words() if plan.keep_admin else None
    _, drop_bounding = plan.kept()
    final.exec_final(path, argv, env, filt=filt, listener_fd=plan.listener_fd,
                     payload=payload, report_fd=report_fd, keep_fds=keep_fds,
                       lsm_fd=lsm_fd, lsm_label=label, caps_words=caps_words,
                       drop_bounding=drop_bounding)
