"""The runtime-spec features document (`pyoci features`): what this runtime recognises."""

import os
from importlib.metadata import PackageNotFoundError, version
from itertools import chain

from pyoci import lsm, rootfs, seccomp
from pyoci.capabilities import CAPABILITIES
from pyoci.namespaces import NAMESPACES
from pyoci.spec import OCI_VERSION

OCI_VERSION_MIN = "1.0.0"

HOOKS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
         "poststop")


# Straight from the seccomp compiler, so features never claims what it cannot do.
SECCOMP_ACTIONS = tuple(sorted(seccomp.ACTIONS))
SECCOMP_OPERATORS = tuple(sorted(seccomp.OPERATORS))
SECCOMP_ARCHS = tuple(sorted(seccomp.ARCHES))
SECCOMP_FLAGS = tuple(seccomp.FLAGS)

# seccomp(2) numbers, to ask the kernel which filter flags it accepts.
_NR_SECCOMP = {"x86_64": 317, "aarch64": 277, "riscv64": 277, "ppc64le": 358, "s390x": 348}
_SECCOMP_SET_MODE_FILTER = 1
_EFAULT = 14


def _supported_seccomp_flags() -> list[str]:
    """The filter flags this kernel accepts, probed as libseccomp does.

    seccomp(SECCOMP_SET_MODE_FILTER, flag, NULL) fails with EFAULT (reading the NULL
    program) when the kernel knows the flag, EINVAL when it does not.
    WAIT_KILLABLE_RECV only exists together with NEW_LISTENER, so it is probed with it.
    """
    nr = _NR_SECCOMP.get(os.uname().machine)
    if nr is None:
        return list(SECCOMP_FLAGS)
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    supported = []
    for name, flag in seccomp.FLAGS.items():
        if flag == seccomp.FLAG_WAIT_KILLABLE_RECV:
            flag |= seccomp.FLAG_NEW_LISTENER
        ret = libc.syscall(ctypes.c_long(nr), ctypes.c_long(_SECCOMP_SET_MODE_FILTER),
                           ctypes.c_long(flag), ctypes.c_void_p(None))
        if ret == -1 and ctypes.get_errno() == _EFAULT:
            supported.append(name)
    return supported


def libseccomp_version() -> str | None:
    """libseccomp's runtime version via seccomp_version(); None if the library is absent."""
    import ctypes

    class _Version(ctypes.Structure):
        _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]

    try:
        func = ctypes.CDLL("libseccomp.so.2").seccomp_version
    except (OSError, AttributeError):
        return None
    func.restype = ctypes.POINTER(_Version)
    func.argtypes = []
    ver = func().contents
    return f"{ver.major}.{ver.minor}.{ver.micro}"


def _known_capabilities() -> list[str]:
    """Names up to the kernel's last capability, so callers never ask for one it lacks."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
    except (OSError, ValueError):
        last = len(CAPABILITIES) - 1
    return list(CAPABILITIES[: last + 1])


def _pyoci_version() -> str:
    try:
        return version("pyoci")
    except PackageNotFoundError:
        return "unknown"


def _mount_options() -> list[str]:
    """The options rootfs.MountOptions acts on; its tables are the single source of truth."""
    tables = (rootfs.MOUNT_FLAGS, rootfs.PROPAGATION, rootfs.RECURSIVE_ATTRS,
              rootfs.RECURSIVE_ATIME)
    # MountOptions handles these by name rather than through a table.
    return sorted({*chain.from_iterable(tables), "tmpcopyup", "idmap", "ridmap"})


def features() -> dict:
    """Return the features document; LSM support follows whether the host has the LSM."""
    annotations = {
        "org.opencontainers.runc.checkpoint.enabled": "false",
        "io.github.pyoci.version": _pyoci_version(),
    }
    libseccomp = libseccomp_version()
    if libseccomp:
        annotations["io.github.seccomp.libseccomp.version"] = libseccomp
    return {
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION,
        "hooks": list(HOOKS),
        "mountOptions": _mount_options(),
        "linux": {
            "namespaces": sorted(NAMESPACES),
            "capabilities": _known_capabilities(),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False,
                       "rdma": False},
            "seccomp": {
                "enabled": True,
                "actions": list(SECCOMP_ACTIONS),
                "operators": list(SECCOMP_OPERATORS),
                "archs": list(SECCOMP_ARCHS),
                "knownFlags": list(SECCOMP_FLAGS),
                "supportedFlags": _supported_seccomp_flags(),
            },
            # LSM labels are applied only where the LSM is enabled; elsewhere a label in
            # the config is an error, as with runc (pyoci.lsm).
            "apparmor": {"enabled": lsm.apparmor_enabled()},
            "selinux": {"enabled": lsm.selinux_enabled()},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": True}},
        },
        "annotations": annotations,
    }
