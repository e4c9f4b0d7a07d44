"""LSM labels: ``process.apparmorProfile``, ``process.selinuxLabel``, ``linux.mountLabel``.

Where the LSM is enabled the label is applied on exec: init opens
``/proc/<pid>/attr/apparmor/exec`` (AppArmor) or ``/proc/<pid>/attr/exec`` (SELinux)
through :mod:`pyoci.procfs` (a detached procfs, so a racing container cannot redirect
the write, CVE-2019-19921 / CVE-2025-52881) and the final exec step writes the label
right before execve.  ``mountLabel`` becomes a ``context=`` option of the tmpfs and
mqueue mounts, as runc does.

Where the LSM is not enabled pyoci behaves as runc: a SELinux label (process or mount)
is an error ("selinux label is specified in config, but selinux is disabled or not
supported"), and so is an AppArmor profile (runc fails when it writes the profile to
/proc/self/attr/exec; pyoci says why before anything is created).  ``pyoci features``
reports both LSMs as disabled.
"""

from __future__ import annotations

import os

from pyoci import procfs
from pyoci.errors import ConfigError, PyociError

_enabled: dict[str, bool] = {}  # each answer found once (functools.cache: collections)


def apparmor_enabled() -> bool:
    """Whether AppArmor is enabled (found out once)."""
    if "apparmor" not in _enabled:
        _enabled["apparmor"] = _apparmor_enabled()
    return _enabled["apparmor"]


def selinux_enabled() -> bool:
    """Whether SELinux is enabled (found out once)."""
    if "selinux" not in _enabled:
        _enabled["selinux"] = _selinux_enabled()
    return _enabled["selinux"]


def _apparmor_enabled() -> bool:
    """runc's test: securityfs has apparmor and the module says it is enabled."""
    if not os.path.isdir("/sys/kernel/security/apparmor"):
        return False
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            return f.read().startswith("Y")
    except OSError:
        return False


def _selinux_enabled() -> bool:
    """go-selinux's test: selinuxfs is mounted and this process has a real label."""
    mounted = False
    try:
        with open("/proc/self/mountinfo") as f:
            mounted = any(line.split(" - ", 1)[-1].startswith("selinuxfs ") for line in f)
    except OSError:
        return False
    if not mounted:
        return False
    try:
        with open("/proc/self/attr/current") as f:
            return f.read().strip("\0\n") not in ("", "kernel")
    except OSError:
        return False


def check(config: dict) -> None:
    """Refuse labels this host cannot apply, before anything is created (runtime side)."""
    proc = config.get("process") or {}
    linux = config.get("linux") or {}
    if proc.get("selinuxLabel") and not selinux_enabled():
        raise ConfigError("selinux label is specified in config, but selinux is disabled or "
                          "not supported")
    if linux.get("mountLabel") and not selinux_enabled():
        raise ConfigError("mount label is specified in config, but selinux is disabled or "
                          "not supported")
    profile = proc.get("apparmorProfile")
    if profile and not apparmor_enabled():
        raise ConfigError(f"apparmor profile {profile!r} is specified in config, but AppArmor "
                          "is not enabled on this system")


def exec_label(proc: dict) -> tuple[int, bytes] | None:
    """(fd, data) for the final step to write right before execve, or None (init side)."""
    profile = proc.get("apparmorProfile")
    label = proc.get("selinuxLabel")
    try:
        if profile and apparmor_enabled():
            pfs = procfs.shared()
            try:
                fd = pfs.open_self("attr/apparmor/exec", os.O_WRONLY)
            except FileNotFoundError:
                fd = pfs.open_self("attr/exec", os.O_WRONLY)
            return fd, f"exec {profile}".encode()
        if label and selinux_enabled():
            return procfs.shared().open_self("attr/exec", os.O_WRONLY), label.encode()
    except OSError as e:
        raise PyociError(f"cannot open the LSM exec attribute: {e.strerror}") from None
    return None


def with_mount_label(config: dict, mount: dict) -> dict:
    """``mount`` with the SELinux ``context=`` of ``linux.mountLabel`` where runc adds it
    (tmpfs and mqueue mounts), when SELinux is enabled."""
    label = (config.get("linux") or {}).get("mountLabel")
    if not label or mount.get("type") not in ("tmpfs", "mqueue") or not selinux_enabled():
        return mount
    return {**mount, "options": [*(mount.get("options") or []), f'context="{label}"']}
