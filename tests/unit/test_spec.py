import os

import pytest

from pyoci import spec
from pyoci.spec import default_spec


def _mount(s: dict, dest: str) -> dict:
    return next(m for m in s["mounts"] if m["destination"] == dest)


def test_process_matches_runc() -> None:
    p = default_spec()["process"]
    assert p["terminal"] is True
    assert p["user"] == {"uid": 0, "gid": 0}
    assert p["args"] == ["sh"]
    assert p["cwd"] == "/"
    assert p["env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        "TERM=xterm"]
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    assert p["capabilities"] == {"bounding": caps, "effective": caps, "permitted": caps}
    assert p["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
    assert p["noNewPrivileges"] is True


def test_top_level_order_matches_runc_output() -> None:
    assert list(default_spec()) == ["ociVersion", "process", "root", "hostname", "mounts",
                                    "linux"]


def test_mounts_and_paths() -> None:
    s = default_spec()
    assert [m["destination"] for m in s["mounts"]] == [
        "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"]
    assert "options" not in _mount(s, "/proc")
    assert "gid=5" in _mount(s, "/dev/pts")["options"]
    assert s["root"] == {"path": "rootfs", "readonly": True}
    assert s["linux"]["resources"] == {"devices": [{"allow": False, "access": "rwm"}]}
    assert "/proc/kcore" in s["linux"]["maskedPaths"]
    assert s["linux"]["readonlyPaths"][-1] == "/proc/sysrq-trigger"


@pytest.mark.parametrize("unified", [True, False])
def test_cgroup_namespace_only_on_cgroup2(monkeypatch: pytest.MonkeyPatch,
                                          unified: bool) -> None:
    monkeypatch.setattr(spec, "_cgroup2_unified", lambda: unified)
    types = [ns["type"] for ns in default_spec()["linux"]["namespaces"]]
    expected = ["pid", "network", "ipc", "uts", "mount"] + (["cgroup"] if unified else [])
    assert types == expected


def test_fresh_copies() -> None:
    a = default_spec()
    a["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN")
    assert "CAP_SYS_ADMIN" not in default_spec()["process"]["capabilities"]["bounding"]


def test_rootless() -> None:
    s = default_spec(rootless=True)
    linux = s["linux"]
    assert "resources" not in linux
    types = [ns["type"] for ns in linux["namespaces"]]
    assert "network" not in types and types[-1] == "user"
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    assert linux["gidMappings"] == [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    assert _mount(s, "/sys") == {"destination": "/sys", "type": "none", "source": "/sys",
                                 "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
    assert not any(o.startswith(("gid=", "uid=")) for m in s["mounts"]
                   for o in m.get("options", []))
    # runc keeps mqueue and the cgroup mount in rootless mode.
    assert {"/dev/mqueue", "/sys/fs/cgroup"} <= {m["destination"] for m in s["mounts"]}
