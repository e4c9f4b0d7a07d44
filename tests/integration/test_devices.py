"""/dev in the container: default devices, symlinks, ``linux.devices``."""

from __future__ import annotations

import os

from container_helpers import (
    chown_bundle_for_userns,
    mountinfo,
    run_sh,
    section,
    userns_config,
)

# name -> (major, minor); all character devices, mode 0666, owned by root
DEFAULT_DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8),
                   "urandom": (1, 9), "tty": (5, 0)}
DEV_SYMLINKS = {"/dev/fd": "/proc/self/fd", "/dev/stdin": "/proc/self/fd/0",
                "/dev/stdout": "/proc/self/fd/1", "/dev/stderr": "/proc/self/fd/2",
                "/dev/ptmx": "pts/ptmx"}

# %F type, %t/%T major/minor in hex, %a mode, %u/%g owner
STAT_FMT = "'%n|%F|%t|%T|%a|%u|%g'"


def stat_lines(text: str) -> dict[str, dict]:
    out = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) == 7:
            name, kind, major, minor, mode, uid, gid = parts
            out[name] = {"type": kind, "major": int(major, 16), "minor": int(minor, 16),
                         "mode": mode, "uid": int(uid), "gid": int(gid)}
    return out


def test_default_devices(pyoci, bundle, cid, base_config, write_config):
    names = " ".join(f"/dev/{n}" for n in DEFAULT_DEVICES)
    script = (f"stat -c {STAT_FMT} {names};"
              " head -c 4 /dev/zero | od -An -tx1; head -c 16 /dev/urandom | wc -c;"
              " (echo x > /dev/full) 2>&1; echo sink > /dev/null && echo null-ok")
    r = run_sh(pyoci, bundle, cid, base_config(), script, write_config=write_config)
    seen = stat_lines(r.stdout)
    for name, (major, minor) in DEFAULT_DEVICES.items():
        dev = seen[f"/dev/{name}"]
        assert dev == {"type": "character special file", "major": major, "minor": minor,
                       "mode": "666", "uid": 0, "gid": 0}, (name, dev)
    assert "00 00 00 00" in r.stdout
    assert "\n16\n" in r.stdout
    assert "No space left on device" in r.stdout
    assert "null-ok" in r.stdout


def test_dev_symlinks(pyoci, bundle, cid, base_config, write_config):
    script = "; ".join(f"echo {link} $(readlink {link})" for link in DEV_SYMLINKS)
    script += "; echo via-stdin | cat /dev/stdin; ls /dev/fd/ | sort -n | head -3 | tr '\\n' ' '"
    r = run_sh(pyoci, bundle, cid, base_config(), script, write_config=write_config)
    lines = r.stdout.splitlines()
    for link, target in DEV_SYMLINKS.items():
        assert f"{link} {target}" in lines, r.stdout
    assert "via-stdin" in lines
    assert lines[-1].split() == ["0", "1", "2"]


def test_dev_is_a_fresh_tmpfs_and_pts_a_new_instance(pyoci, bundle, cid, base_config,
                                                     write_config):
    r = run_sh(pyoci, bundle, cid, base_config(),
               "ls /dev/pts; cat /proc/self/mountinfo", write_config=write_config)
    mounts = {m["mountpoint"]: m for m in mountinfo(r.stdout)}
    assert mounts["/dev"]["fstype"] == "tmpfs"
    assert mounts["/dev/pts"]["fstype"] == "devpts"
    # a new devpts instance has only ptmx: none of the host's terminals
    assert r.stdout.splitlines()[0] == "ptmx"


def test_linux_devices(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config()
    cfg["linux"]["devices"] = [
        {"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o620,
         "uid": 1000, "gid": 1001},
        {"path": "/dev/sub/dir/myzero", "type": "c", "major": 1, "minor": 5},
        {"path": "/dev/myblock", "type": "b", "major": 7, "minor": 42, "fileMode": 0o600},
        {"path": "/dev/myfifo", "type": "p", "fileMode": 0o644},
    ]
    names = "/dev/mynull /dev/sub/dir/myzero /dev/myblock /dev/myfifo"
    script = (f"stat -c {STAT_FMT} {names}; echo hi > /dev/sub/dir/myzero && echo write-ok;"
              " head -c 2 /dev/sub/dir/myzero | od -An -tx1")
    r = run_sh(pyoci, bundle, cid, cfg, script, write_config=write_config)
    seen = stat_lines(r.stdout)
    assert seen["/dev/mynull"] == {"type": "character special file", "major": 1, "minor": 3,
                                   "mode": "620", "uid": 1000, "gid": 1001}
    myzero = seen["/dev/sub/dir/myzero"]
    assert (myzero["type"], myzero["major"], myzero["minor"]) == ("character special file", 1, 5)
    assert seen["/dev/myblock"] == {"type": "block special file", "major": 7, "minor": 42,
                                    "mode": "600", "uid": 0, "gid": 0}
    assert seen["/dev/myfifo"]["type"] == "fifo"
    assert seen["/dev/myfifo"]["mode"] == "644"
    assert "write-ok" in r.stdout and "00 00" in r.stdout


def test_linux_devices_override_a_default(pyoci, bundle, cid, base_config, write_config):
    """A config entry for a default device's path wins over the default."""
    cfg = base_config()
    cfg["linux"]["devices"] = [{"path": "/dev/zero", "type": "c", "major": 1, "minor": 5,
                                "fileMode": 0o600, "uid": 0, "gid": 0}]
    r = run_sh(pyoci, bundle, cid, cfg, f"stat -c {STAT_FMT} /dev/zero /dev/null",
               write_config=write_config)
    seen = stat_lines(r.stdout)
    assert seen["/dev/zero"]["mode"] == "600"
    assert seen["/dev/null"]["mode"] == "666"


def test_devices_in_user_namespace_are_bind_mounts(pyoci, bundle, cid, base_config,
                                                   write_config):
    """mknod is not allowed in a user namespace: the host's nodes are bind-mounted."""
    cfg = userns_config(base_config())
    chown_bundle_for_userns(bundle)
    names = " ".join(f"/dev/{n}" for n in DEFAULT_DEVICES)
    r = run_sh(pyoci, bundle, cid, cfg,
               f"stat -c {STAT_FMT} {names}; echo x > /dev/null && echo null-ok;"
               " echo '=== mi'; cat /proc/self/mountinfo", write_config=write_config)
    seen = stat_lines(r.stdout)
    for name, (major, minor) in DEFAULT_DEVICES.items():
        dev = seen[f"/dev/{name}"]
        assert (dev["type"], dev["major"], dev["minor"]) == ("character special file",
                                                             major, minor), name
    assert "null-ok" in r.stdout
    bound = {m["mountpoint"] for m in mountinfo(section(r.stdout, "mi"))}
    assert {f"/dev/{n}" for n in DEFAULT_DEVICES} <= bound


def test_dev_bind_mounted_from_host_is_left_alone(pyoci, bundle, cid, base_config,
                                                  write_config):
    """With /dev bound from the host, runc creates no device nodes and no symlinks."""
    devdir = os.path.join(bundle, "devdir")
    os.mkdir(devdir)
    os.mknod(os.path.join(devdir, "null"), 0o666 | 0o020000, os.makedev(1, 3))
    cfg = base_config()
    cfg["mounts"] = [m for m in cfg["mounts"] if not m["destination"].startswith("/dev")]
    cfg["mounts"].append({"destination": "/dev", "type": "bind", "source": devdir,
                          "options": ["rbind"]})
    r = run_sh(pyoci, bundle, cid, cfg, "ls /dev", write_config=write_config)
    assert r.stdout.split() == ["null"]
    assert os.listdir(devdir) == ["null"]
