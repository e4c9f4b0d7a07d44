"""The example config.json that `pyoci spec` writes, the same as runc's specconv.Example()."""

import os

OCI_VERSION = "1.3.0"

_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def _cgroup2_unified() -> bool:
    """runc only adds a cgroup namespace to the example on a pure cgroup v2 host."""
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def default_spec(rootless: bool = False) -> dict:
    """Return a fresh spec dict; keys are in the order runc's Go structs marshal them."""
    namespaces = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")]
    if _cgroup2_unified():
        namespaces.append({"type": "cgroup"})
    spec: dict = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": list(_CAPS),
                "effective": list(_CAPS),
                "permitted": list(_CAPS),
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "pyoci",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                         "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": namespaces,
            "maskedPaths": [
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/sys/firmware",
                "/proc/scsi",
            ],
            "readonlyPaths": [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ],
        },
    }
    if rootless:
        _to_rootless(spec)
    return spec


def _to_rootless(spec: dict) -> None:
    """runc's ToRootless: what an unprivileged user cannot set up is dropped or replaced."""
    linux = spec["linux"]
    # An unprivileged user has no network to give the container, so it shares the host's.
    namespaces = [ns for ns in linux["namespaces"] if ns["type"] not in ("network", "user")]
    namespaces.append({"type": "user"})
    # The mappings come first in runc's output; cgroup resources need a privileged manager.
    rest = {k: v for k, v in linux.items() if k not in ("resources", "namespaces")}
    spec["linux"] = {
        "uidMappings": [{"containerID": 0, "hostID": os.geteuid(), "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": os.getegid(), "size": 1}],
        "namespaces": namespaces,
        **rest,
    }

    mounts = []
    for mount in spec["mounts"]:
        if os.path.normpath(mount["destination"]) == "/sys":
            # sysfs cannot be mounted without owning the network namespace.
            mounts.append({"destination": "/sys", "type": "none", "source": "/sys",
                           "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]})
            continue
        # Only ids mapped into the user namespace can be used; drop host ids.
        options = [o for o in mount.get("options", []) if not o.startswith(("gid=", "uid="))]
        mount = {k: v for k, v in mount.items() if k != "options"}
        if options:
            mount["options"] = options
        mounts.append(mount)
    spec["mounts"] = mounts
