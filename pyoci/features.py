"""The runtime-spec features document (`pyoci features`): what this runtime recognises."""

import os
from importlib.metadata import PackageNotFoundError, version
from itertools import chain

from pyoci import rootfs
from pyoci.namespaces import NAMESPACES
from pyoci.spec import OCI_VERSION

OCI_VERSION_MIN = "1.0.0"

HOOKS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
         "poststop")

# Capability names indexed by number, as in linux/capability.h.
CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
    "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON",
    "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)

SECCOMP_ACTIONS = (
    "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP",
)

SECCOMP_OPERATORS = (
    "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE",
)

# The architectures pyseccomp can name.
SECCOMP_ARCHS = (
    "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE", "SCMP_ARCH_RISCV64", "SCMP_ARCH_S390", "SCMP_ARCH_S390X",
    "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64",
)

# The filter flags pyseccomp has attributes for (CTL_TSYNC, CTL_SSB, CTL_LOG).
SECCOMP_FLAGS = (
    "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG",
)


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
                # Every kernel pyoci targets (>= 4.17) accepts all three.
                "supportedFlags": list(SECCOMP_FLAGS),
            },
            "apparmor": {"enabled": os.path.exists("/sys/kernel/security/apparmor")},
            "selinux": {"enabled": os.path.exists("/sys/fs/selinux/enforce")},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": True}},
        },
        "annotations": {
            "org.opencontainers.runc.checkpoint.enabled": "false",
            "io.github.pyoci.version": _pyoci_version(),
        },
    }
