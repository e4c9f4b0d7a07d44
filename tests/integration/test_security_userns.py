"""User namespaces: mappings, rootless containers run by an unprivileged user, idmapped
mounts, and impossible mappings refused with one line and nothing left behind."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile

import pytest
from security_helpers import nothing_left, ok, one_line_error, run_script, status

HOST_ID = 100000
SIZE = 65536
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _userns(cfg: dict, host_id: int = HOST_ID, size: int = SIZE) -> dict:
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": host_id, "size": size}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": host_id, "size": size}]
    return cfg


def _chown_tree(path: str, uid: int, gid: int) -> None:
    """chown -R, and the bundle above it too: container root must reach its rootfs."""
    if os.path.basename(path) == "rootfs":
        os.lchown(os.path.dirname(path), uid, gid)
    os.lchown(path, uid, gid)
    for d, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(d, name), uid, gid)


def test_userns_mappings_and_ownership(pyoci, bundle, cid, base_config, write_config):
    cfg = _userns(base_config())
    cfg["process"]["oomScoreAdj"] = 100
    _chown_tree(os.path.join(bundle, "rootfs"), HOST_ID, HOST_ID)
    out = ok(run_script(pyoci, bundle, cid, cfg,
                        "cat /proc/self/uid_map /proc/self/gid_map; stat -c 'own=%u:%g' /bin; "
                        "id -u; cat /proc/self/oom_score_adj", write_config))
    maps = [line.split() for line in out.splitlines()[:2]]
    assert maps == [["0", str(HOST_ID), str(SIZE)]] * 2
    assert "own=0:0" in out
    assert out.splitlines()[3:5] == ["0", "100"]


def test_userns_process_user_and_caps(pyoci, bundle, cid, base_config, write_config):
    """Inside a user namespace the caps are those of the namespace, as configured."""
    cfg = _userns(base_config())
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5]}
    _chown_tree(os.path.join(bundle, "rootfs"), HOST_ID, HOST_ID)
    out = ok(run_script(pyoci, bundle, cid, cfg,
                        "id; grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status",
                        write_config))
    assert "uid=1000" in out and "gid=1000" in out and "5" in out.split("groups=")[1]
    st = status(out)
    assert st["CapEff"] == "0000000000000000" and st["NoNewPrivs"] == "1"


IMPOSSIBLE = [
    ("overlap", {"uidMappings": [{"containerID": 0, "hostID": 100000, "size": 100},
                                 {"containerID": 50, "hostID": 200000, "size": 100}]},
     "overlap"),
    ("host-overlap", {"uidMappings": [{"containerID": 0, "hostID": 100000, "size": 100},
                                      {"containerID": 500, "hostID": 100050, "size": 10}]},
     "overlap"),
    ("size-zero", {"uidMappings": [{"containerID": 0, "hostID": 100000, "size": 0}]},
     "size"),
    ("beyond-32-bit", {"uidMappings": [{"containerID": 0, "hostID": 4294967000,
                                        "size": 65536}]}, "32-bit"),
    ("uid-not-mapped", {"uidMappings": [{"containerID": 1, "hostID": 100000, "size": 10}]},
     "process.user.uid 0 is not mapped"),
    ("too-many", {"uidMappings": [{"containerID": i, "hostID": 100000 + i, "size": 1}
                                  for i in range(341)]}, "340"),
]


@pytest.mark.parametrize("name,linux,needle", IMPOSSIBLE, ids=[x[0] for x in IMPOSSIBLE])
def test_impossible_mappings(pyoci, bundle, cid, base_config, write_config, name, linux,
                             needle):
    cfg = _userns(base_config())
    cfg["linux"].update(linux)
    write_config(bundle, cfg)
    one_line_error(pyoci("run", "--bundle", bundle, cid), needle)
    nothing_left(pyoci.root)


def test_mappings_without_user_namespace(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config()
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": HOST_ID, "size": 10}]
    write_config(bundle, cfg)
    one_line_error(pyoci("run", "--bundle", bundle, cid), "user namespace isn't enabled")
    nothing_left(pyoci.root)


def test_user_namespace_without_mappings(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config()
    cfg["linux"]["namespaces"].append({"type": "user"})
    write_config(bundle, cfg)
    one_line_error(pyoci("run", "--bundle", bundle, cid), "no namespace path to join nor "
                   "mappings")
    nothing_left(pyoci.root)


# --- idmapped mounts -------------------------------------------------------------------


@pytest.fixture
def idmap_source():
    d = tempfile.mkdtemp(prefix="pyoci-test-idmap-", dir="/tmp")
    os.chmod(d, 0o777)
    for name, owner in (("by-root", 0), ("by-1000", 1000), ("by-100000", HOST_ID)):
        path = os.path.join(d, name)
        with open(path, "w") as f:
            f.write(name)
        os.chown(path, owner, owner)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _owners(out: str) -> dict[str, str]:
    got = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 9 and fields[-1].startswith("by-"):
            got[fields[-1]] = f"{fields[2]}:{fields[3]}"
    return got


def test_idmapped_bind_mount_remaps_owners(pyoci, bundle, cid, base_config, write_config,
                                           idmap_source):
    """Per-mount mappings: on-disk id containerID shows as hostID (runtime-spec)."""
    cfg = base_config()
    cfg["mounts"].append({
        "destination": "/mnt/idmapped", "type": "bind", "source": idmap_source,
        "options": ["bind", "idmap"],
        "uidMappings": [{"containerID": 1000, "hostID": 0, "size": 1}],
        "gidMappings": [{"containerID": 1000, "hostID": 0, "size": 1}]})
    cfg["mounts"].append({"destination": "/mnt/plain", "type": "bind",
                          "source": idmap_source, "options": ["bind"]})
    out = ok(run_script(pyoci, bundle, cid, cfg,
                        "ls -ln /mnt/idmapped; echo ==; ls -ln /mnt/plain; echo ==; "
                        "grep /mnt/idmapped /proc/self/mountinfo", write_config))
    idmapped, plain, info = out.split("==\n")
    assert _owners(idmapped) == {"by-root": "65534:65534", "by-1000": "0:0",
                                 "by-100000": "65534:65534"}
    assert _owners(plain) == {"by-root": "0:0", "by-1000": "1000:1000",
                              "by-100000": "100000:100000"}
    assert "idmapped" in info
    # the host's files are untouched
    assert os.stat(os.path.join(idmap_source, "by-1000")).st_uid == 1000


def test_idmap_uses_the_container_mappings(pyoci, bundle, cid, base_config, write_config,
                                           idmap_source):
    """``idmap`` without mappings of its own: a root-owned host directory appears owned
    by root inside a user-namespaced container, with no chown of the source."""
    cfg = _userns(base_config())
    _chown_tree(os.path.join(bundle, "rootfs"), HOST_ID, HOST_ID)
    cfg["mounts"].append({"destination": "/mnt/vol", "type": "bind",
                          "source": idmap_source, "options": ["rbind", "ridmap"]})
    out = ok(run_script(pyoci, bundle, cid, cfg,
                        "ls -ln /mnt/vol; cat /mnt/vol/by-root; echo; "
                        "echo written > /mnt/vol/new-file && echo wrote", write_config))
    assert _owners(out)["by-root"] == "0:0"
    assert "wrote" in out
    # created as container root through the idmapped mount: host root on disk
    assert os.stat(os.path.join(idmap_source, "new-file")).st_uid == 0


def test_idmap_on_a_non_bind_mount_is_refused(pyoci, bundle, cid, base_config,
                                              write_config):
    cfg = base_config()
    cfg["mounts"].append({"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs",
                          "options": ["idmap"],
                          "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}],
                          "gidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]})
    write_config(bundle, cfg)
    one_line_error(pyoci("run", "--bundle", bundle, cid), "bind mounts")
    nothing_left(pyoci.root)


# --- rootless --------------------------------------------------------------------------


@pytest.fixture
def unprivileged_user():
    """A throwaway user made with useradd, removed (with its files) afterwards."""
    if shutil.which("useradd") is None:
        pytest.skip("useradd not available")
    name = f"pyoci-t{secrets.token_hex(3)}"
    subprocess.run(["useradd", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", "-U",
                    name], check=True, capture_output=True)
    try:
        import pwd

        pw = pwd.getpwnam(name)
        yield pw
    finally:
        subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["groupdel", name], capture_output=True)


def _as_user(pw, argv: list[str], env: dict, cwd: str, timeout: float = 60):
    return subprocess.run(argv, user=pw.pw_uid, group=pw.pw_gid, extra_groups=[], env=env,
                          cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_rootless_container(unprivileged_user, new_bundle, cid, root, _leak_check):
    """An unprivileged user makes its spec with ``spec --rootless`` and runs it: state
    under $XDG_RUNTIME_DIR/pyoci, a user namespace mapping only that user, no cgroup."""
    pw = unprivileged_user
    bundle = new_bundle()
    os.unlink(os.path.join(bundle, "config.json"))
    _chown_tree(bundle, pw.pw_uid, pw.pw_gid)
    xdg = tempfile.mkdtemp(prefix="pyoci-test-xdg-", dir="/tmp")
    _leak_check.bundles.append(xdg)  # the leak check looks for processes mentioning it
    os.chown(xdg, pw.pw_uid, pw.pw_gid)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "XDG_RUNTIME_DIR": xdg,
           "PYTHONPATH": REPO}
    py = [sys.executable, "-m", "pyoci"]
    try:
        ok(_as_user(pw, [*py, "spec", "--rootless"], env, bundle))
        with open(os.path.join(bundle, "config.json")) as f:
            cfg = json.load(f)
        assert cfg["linux"]["uidMappings"] == [{"containerID": 0, "hostID": pw.pw_uid,
                                                "size": 1}]
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = ["sh", "-c", "id -u; cat /proc/self/uid_map; "
                                  "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; "
                                  "stat -c 'bin=%u' /bin; touch /etc/x 2>&1; true"]
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(cfg, f)
        r = _as_user(pw, [*py, "run", cid], env, bundle)
        out = ok(r)
        lines = out.splitlines()
        assert lines[0] == "0"
        assert lines[1].split() == ["0", str(pw.pw_uid), "1"]
        assert status(out)["NoNewPrivs"] == "1"
        assert "bin=0" in out and "Read-only file system" in out
        state_root = os.path.join(xdg, "pyoci")
        assert os.stat(state_root).st_uid == pw.pw_uid
        assert os.listdir(state_root) == []

        # the same user's bad config: one line, nothing left
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 1}]
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(cfg, f)
        r = _as_user(pw, [*py, "run", cid], env, bundle)
        one_line_error(r, "linux.uidMappings")
        assert os.listdir(state_root) == []
    finally:
        with contextlib.suppress(Exception):
            _as_user(pw, [*py, "delete", "--force", cid], env, bundle)


def _subids(name: str, path: str) -> tuple[int, int] | None:
    try:
        with open(path) as f:
            for line in f:
                user, start, count = line.strip().split(":")
                if user == name:
                    return int(start), int(count)
    except (OSError, ValueError):
        pass
    return None


def test_rootless_container_with_subordinate_ids(unprivileged_user, new_bundle, cid,
                                                 _leak_check):
    """Beyond its own uid, a user maps the subordinate ids /etc/subuid gives it, through
    newuidmap/newgidmap: a non-root process user inside works."""
    pw = unprivileged_user
    sub_u, sub_g = _subids(pw.pw_name, "/etc/subuid"), _subids(pw.pw_name, "/etc/subgid")
    if not (shutil.which("newuidmap") and sub_u and sub_g):
        pytest.skip("newuidmap (uidmap package) or /etc/subuid entries missing")
    bundle = new_bundle()
    _chown_tree(bundle, pw.pw_uid, pw.pw_gid)
    xdg = tempfile.mkdtemp(prefix="pyoci-test-xdg-", dir="/tmp")
    _leak_check.bundles.append(xdg)
    os.chown(xdg, pw.pw_uid, pw.pw_gid)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "XDG_RUNTIME_DIR": xdg,
           "PYTHONPATH": REPO}
    py = [sys.executable, "-m", "pyoci"]
    with open(os.path.join(bundle, "config.json")) as f:
        cfg = json.load(f)
    cfg["linux"]["namespaces"] = [ns for ns in cfg["linux"]["namespaces"]
                                  if ns["type"] != "network"] + [{"type": "user"}]
    cfg["linux"].pop("resources", None)
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": pw.pw_uid, "size": 1},
                                   {"containerID": 1, "hostID": sub_u[0], "size": sub_u[1]}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": pw.pw_gid, "size": 1},
                                   {"containerID": 1, "hostID": sub_g[0], "size": sub_g[1]}]
    cfg["mounts"] = [m if m["destination"] != "/sys" else
                     {"destination": "/sys", "type": "none", "source": "/sys",
                      "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
                     for m in cfg["mounts"]]
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    cfg["process"]["args"] = ["sh", "-c", "id -u; id -g; cat /proc/self/uid_map"]
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(cfg, f)
    try:
        out = ok(_as_user(pw, [*py, "run", cid], env, bundle))
        lines = out.splitlines()
        assert lines[:2] == ["1000", "1000"]
        assert [line.split() for line in lines[2:]] == [
            ["0", str(pw.pw_uid), "1"], ["1", str(sub_u[0]), str(sub_u[1])]]
    finally:
        with contextlib.suppress(Exception):
            _as_user(pw, [*py, "delete", "--force", cid], env, bundle)
