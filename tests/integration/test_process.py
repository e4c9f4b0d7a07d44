"""``process`` and the per-container kernel settings, as seen from inside the container."""

from __future__ import annotations

import os
import resource

import pytest
from container_helpers import UNDER_RUNC, mount_at, mountinfo, run_sh, section

SHELL_VARS = {"PWD", "SHLVL", "OLDPWD", "_"}


def test_args_passed_verbatim(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config()
    args = ["a b", "", "*", "$HOME", "'quoted'", "line\nbreak", "ünï"]
    cfg["process"]["args"] = ["sh", "-c", 'for a in "$@"; do printf "<%s>" "$a"; done', "sh",
                              *args]
    write_config(bundle, cfg)
    r = pyoci("run", "--bundle", bundle, cid)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "".join(f"<{a}>" for a in args)


def test_args0_resolved_on_container_path(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config(["busybox", "echo", "found"])
    cfg["process"]["env"] = ["PATH=/nowhere:/bin"]
    write_config(bundle, cfg)
    r = pyoci("run", "--bundle", bundle, cid)
    assert (r.returncode, r.stdout) == (0, "found\n"), r.stderr


def test_env_exactly_as_configured(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config()
    cfg["process"]["env"] = ["PATH=/bin", "WITH_SPACE=a b", "EMPTY=", "EQUALS=x=y",
                             "HOME=/custom-home"]
    r = run_sh(pyoci, bundle, cid, cfg, "env", write_config=write_config)
    seen = {line for line in r.stdout.splitlines()
            if line.split("=", 1)[0] not in SHELL_VARS}
    assert seen == set(cfg["process"]["env"])


@pytest.mark.parametrize("uid,home", [(0, "/root"), (1234, "/")])
def test_home_set_from_passwd_when_missing(pyoci, bundle, cid, base_config, write_config,
                                           uid, home):
    cfg = base_config()
    cfg["process"]["user"] = {"uid": uid, "gid": uid}
    r = run_sh(pyoci, bundle, cid, cfg, "echo $HOME", write_config=write_config)
    assert r.stdout == f"{home}\n"


@pytest.mark.parametrize("cwd", ["/tmp", "/does/not/exist/yet"])
def test_cwd(pyoci, bundle, cid, base_config, write_config, cwd):
    cfg = base_config()
    cfg["process"]["cwd"] = cwd
    r = run_sh(pyoci, bundle, cid, cfg, "pwd; echo $PWD", write_config=write_config)
    assert r.stdout.split() == [cwd, cwd]


def test_user_groups_and_umask(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config()
    cfg["root"]["readonly"] = False
    cfg["process"]["user"] = {"uid": 1000, "gid": 1001, "additionalGids": [2000, 3000],
                              "umask": 0o027}
    script = ("id -u; id -g; echo '=== groups'; grep -E '^(Uid|Gid|Groups)' /proc/self/status;"
              " echo '=== umask'; umask; touch /tmp/f; mkdir /tmp/d;"
              " stat -c '%a %u %g' /tmp/f /tmp/d")
    r = run_sh(pyoci, bundle, cid, cfg, script, write_config=write_config)
    assert r.stdout.splitlines()[:2] == ["1000", "1001"]
    status = dict(line.split(":", 1) for line in section(r.stdout, "groups").splitlines())
    assert status["Uid"].split() == ["1000"] * 4
    assert status["Gid"].split() == ["1001"] * 4
    assert status["Groups"].split() == ["2000", "3000"]
    umask_out = section(r.stdout, "umask").splitlines()
    assert umask_out[0] == "0027"
    assert umask_out[1:] == ["640 1000 1001", "750 1000 1001"]


def test_no_additional_gids_clears_the_runtime_groups(pyoci, bundle, cid, base_config,
                                                      write_config):
    cfg = base_config()
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    r = run_sh(pyoci, bundle, cid, cfg, "grep ^Groups /proc/self/status",
               write_config=write_config)
    assert r.stdout.split() == ["Groups:"]


def _limits(text: str) -> dict[str, tuple[str, str]]:
    """/proc/self/limits: 'Max open files' -> (soft, hard)."""
    out = {}
    for line in text.splitlines()[1:]:
        name = line[:26].strip()
        fields = line[26:].split()
        if len(fields) >= 2:
            out[name] = (fields[0], fields[1])
    return out


def test_rlimits(pyoci, bundle, cid, base_config, write_config):
    """Lower than the runtime's own (hard limits cannot be raised here)."""
    nofile_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc_hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    assert nofile_hard > 200 and nproc_hard > 500
    cfg = base_config()
    cfg["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
        {"type": "RLIMIT_NPROC", "soft": 300, "hard": 500},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
        {"type": "RLIMIT_STACK", "soft": 4 << 20, "hard": 8 << 20},
    ]
    r = run_sh(pyoci, bundle, cid, cfg,
               "ulimit -n; ulimit -Hn; echo '=== limits'; cat /proc/self/limits",
               write_config=write_config)
    assert r.stdout.splitlines()[:2] == ["100", "200"]
    limits = _limits(section(r.stdout, "limits"))
    assert limits["Max open files"] == ("100", "200")
    assert limits["Max processes"] == ("300", "500")
    assert limits["Max core file size"] == ("0", "0")
    assert limits["Max stack size"] == (str(4 << 20), str(8 << 20))


def test_rlimit_above_hard_limit_fails(pyoci, bundle, cid, base_config, write_config, root):
    """CAP_SYS_RESOURCE is not in this machine's bounding set: raising a hard limit fails."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("the runtime's RLIMIT_NOFILE is unlimited")
    cfg = base_config()
    cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": hard + 1, "hard": hard + 1}]
    write_config(bundle, cfg)
    with open("/proc/self/status") as f:
        cap_bnd = int(next(line for line in f if line.startswith("CapBnd:")).split()[1], 16)
    if cap_bnd & (1 << 24):  # CAP_SYS_RESOURCE
        pytest.skip("the runtime may raise hard limits here")
    r = pyoci("run", "--bundle", bundle, cid)
    assert r.returncode != 0
    if not UNDER_RUNC:  # runc says "rlimit type 7"
        assert "RLIMIT_NOFILE" in r.stderr, r.stderr
    assert os.listdir(root) == []


def test_oom_score_adj(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config()
    cfg["process"]["oomScoreAdj"] = 512
    r = run_sh(pyoci, bundle, cid, cfg, "cat /proc/self/oom_score_adj",
               write_config=write_config)
    assert r.stdout == "512\n"


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def test_sysctl_in_new_namespaces(pyoci, bundle, cid, base_config, write_config):
    host_forward = _read("/proc/sys/net/ipv4/ip_forward")
    host_rmid = _read("/proc/sys/kernel/shm_rmid_forced")
    want_forward = "0" if host_forward == "1" else "1"
    want_rmid = "0" if host_rmid == "1" else "1"
    cfg = base_config()
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": want_forward,
                              "kernel.shm_rmid_forced": want_rmid}
    r = run_sh(pyoci, bundle, cid, cfg,
               "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced",
               write_config=write_config)
    assert r.stdout.split() == [want_forward, want_rmid]
    assert _read("/proc/sys/net/ipv4/ip_forward") == host_forward
    assert _read("/proc/sys/kernel/shm_rmid_forced") == host_rmid


def test_sysctl_unknown_key_fails(pyoci, bundle, cid, base_config, write_config, root):
    cfg = base_config()
    cfg["linux"]["sysctl"] = {"net.ipv4.no_such_knob": "1"}
    write_config(bundle, cfg)
    r = pyoci("run", "--bundle", bundle, cid)
    assert r.returncode != 0
    assert "no_such_knob" in r.stderr, r.stderr
    assert os.listdir(root) == []


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="LINUX32 is checked on x86_64")
def test_personality_linux32(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config()
    cfg["linux"]["personality"] = {"domain": "LINUX32"}
    r = run_sh(pyoci, bundle, cid, cfg, "uname -m; cat /proc/self/personality",
               write_config=write_config)
    lines = r.stdout.split()
    assert lines[0] == "i686"
    assert int(lines[1], 16) & 0xFF == 0x08


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="checked on x86_64")
def test_personality_default_is_linux(pyoci, bundle, cid, base_config, write_config):
    r = run_sh(pyoci, bundle, cid, base_config(), "uname -m", write_config=write_config)
    assert r.stdout == "x86_64\n"


def test_masked_paths(pyoci, bundle, cid, base_config, write_config):
    rootfs = os.path.join(bundle, "rootfs")
    with open(os.path.join(rootfs, "secret-file"), "w") as f:
        f.write("top secret\n")
    os.mkdir(os.path.join(rootfs, "secret-dir"))
    with open(os.path.join(rootfs, "secret-dir", "inner"), "w") as f:
        f.write("inner secret\n")
    cfg = base_config()
    cfg["root"]["readonly"] = False
    cfg["linux"]["maskedPaths"] = ["/secret-file", "/secret-dir", "/does-not-exist",
                                   "/proc/kcore", "/proc/timer_list"]
    script = ("echo '=== file'; cat /secret-file; stat -c '%t %T' /secret-file;"
              " echo '=== dir'; ls -A /secret-dir; (touch /secret-dir/new) 2>&1;"
              " echo '=== timer'; cat /proc/timer_list | wc -c;"
              " echo '=== mi'; cat /proc/self/mountinfo")
    r = run_sh(pyoci, bundle, cid, cfg, script, write_config=write_config)
    assert section(r.stdout, "file").split() == ["1", "3"]  # /dev/null, read as empty
    dir_out = section(r.stdout, "dir")
    assert "inner" not in dir_out and "Read-only file system" in dir_out, r.stdout
    assert section(r.stdout, "timer").strip() == "0"
    mounts = mountinfo(section(r.stdout, "mi"))
    masked_dir = mount_at(mounts, "/secret-dir")
    assert masked_dir["fstype"] == "tmpfs" and "ro" in masked_dir["options"]
    assert not any(m["mountpoint"] == "/does-not-exist" for m in mounts)
    with open(os.path.join(rootfs, "secret-file")) as f:
        assert f.read() == "top secret\n"


def test_readonly_paths(pyoci, bundle, cid, base_config, write_config):
    rootfs = os.path.join(bundle, "rootfs")
    os.makedirs(os.path.join(rootfs, "rodir"))
    cfg = base_config()
    cfg["root"]["readonly"] = False
    cfg["linux"]["readonlyPaths"] = ["/rodir", "/proc/sys", "/proc/sysrq-trigger",
                                     "/does-not-exist"]
    script = ("(touch /rodir/x) 2>&1; (echo 1 > /proc/sys/kernel/shm_rmid_forced) 2>&1;"
              " touch /elsewhere && echo rw-ok; echo '=== mi'; cat /proc/self/mountinfo")
    r = run_sh(pyoci, bundle, cid, cfg, script, write_config=write_config)
    out = r.stdout.split("=== mi")[0]
    assert out.count("Read-only file system") == 2, out
    assert "rw-ok" in out
    mounts = mountinfo(section(r.stdout, "mi"))
    for point in ("/rodir", "/proc/sys"):
        assert "ro" in mount_at(mounts, point)["options"], point
    assert not os.path.exists(os.path.join(rootfs, "rodir", "x"))
