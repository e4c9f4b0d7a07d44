from pyoci.config import load_schema_validator
from pyoci.features import CAPABILITIES, features

BRIEF_MOUNT_OPTIONS = {
    "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "iversion",
    "lazytime", "loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "noiversion",
    "nolazytime", "nomand", "norelatime", "nostrictatime", "nosuid", "nosymfollow", "private",
    "ratime", "rbind", "rdev", "rdiratime", "relatime", "remount", "rexec", "rnoatime",
    "rnodev", "rnodiratime", "rnoexec", "rnorelatime", "rnostrictatime", "rnosuid",
    "rnosymfollow", "ro", "rprivate", "rrelatime", "rro", "rrw", "rshared", "rslave",
    "rstrictatime", "rsuid", "rsymfollow", "runbindable", "rw", "shared", "silent", "slave",
    "strictatime", "suid", "symfollow", "sync", "tmpcopyup", "unbindable", "idmap", "ridmap",
}


def test_valid_against_schema() -> None:
    errors = list(load_schema_validator("features-schema.json").iter_errors(features()))
    assert errors == []


def test_versions_and_hooks() -> None:
    f = features()
    assert (f["ociVersionMin"], f["ociVersionMax"]) == ("1.0.0", "1.3.0")
    assert f["hooks"] == ["prestart", "createRuntime", "createContainer", "startContainer",
                          "poststart", "poststop"]


def test_mount_options() -> None:
    assert set(features()["mountOptions"]) == BRIEF_MOUNT_OPTIONS


def test_namespaces() -> None:
    assert features()["linux"]["namespaces"] == [
        "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"]


def test_capabilities_follow_kernel() -> None:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    caps = features()["linux"]["capabilities"]
    assert caps == list(CAPABILITIES[: last + 1])
    assert caps[0] == "CAP_CHOWN" and "CAP_SYS_ADMIN" in caps


def test_capability_table_numbering() -> None:
    assert CAPABILITIES.index("CAP_SYS_ADMIN") == 21
    assert CAPABILITIES.index("CAP_AUDIT_READ") == 37
    assert CAPABILITIES.index("CAP_CHECKPOINT_RESTORE") == 40


def test_annotations() -> None:
    ann = features()["annotations"]
    assert ann["org.opencontainers.runc.checkpoint.enabled"] == "false"
    assert ann["io.github.pyoci.version"]
