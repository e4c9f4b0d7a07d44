"""Namespaces, as seen from inside real containers: created, and joined by ``path``."""

from __future__ import annotations

import json
import os
import socket
import subprocess

import pytest
from container_helpers import (
    USERNS_HOST_ID,
    chown_bundle_for_userns,
    helper_process,
    ns_inode,
    run_sh,
    section,
    userns_config,
    wait_for,
    wait_ns_differs,
)

ALL_NS = ("pid", "net", "ipc", "uts", "mnt", "cgroup", "time", "user")
CONFIG_TYPE = {"pid": "pid", "net": "network", "ipc": "ipc", "uts": "uts", "mnt": "mount",
               "cgroup": "cgroup", "time": "time", "user": "user"}
PROC_NAME = {v: k for k, v in CONFIG_TYPE.items()}
IFF_UP, IFF_LOOPBACK = 0x1, 0x8


def host_ns(ns: str) -> str:
    return ns_inode(os.readlink(f"/proc/self/ns/{ns}"))


NS_SCRIPT = "for n in " + " ".join(ALL_NS) + "; do echo $n $(readlink /proc/self/ns/$n); done"


def container_ns(stdout: str) -> dict[str, str]:
    """Parse NS_SCRIPT's output: ns name -> inode."""
    out = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ALL_NS:
            out[parts[0]] = ns_inode(parts[1])
    return out


def test_default_namespaces_are_new_and_others_shared(pyoci, bundle, cid, base_config,
                                                      write_config):
    """base_config asks for pid, network, ipc, uts, mount: new; cgroup, time, user: host's."""
    r = run_sh(pyoci, bundle, cid, base_config(), NS_SCRIPT, write_config=write_config)
    seen = container_ns(r.stdout)
    assert set(seen) == set(ALL_NS), r.stdout
    for ns in ("pid", "net", "ipc", "uts", "mnt"):
        assert seen[ns] != host_ns(ns), f"{ns} namespace is the host's"
    for ns in ("cgroup", "time", "user"):
        assert seen[ns] == host_ns(ns), f"{ns} namespace was created but not asked for"


def test_every_namespace_type_created(pyoci, bundle, cid, base_config, write_config):
    cfg = userns_config(base_config())
    cfg["linux"]["namespaces"] += [{"type": "cgroup"}, {"type": "time"}]
    chown_bundle_for_userns(bundle)
    r = run_sh(pyoci, bundle, cid, cfg, NS_SCRIPT, write_config=write_config)
    seen = container_ns(r.stdout)
    for ns in ALL_NS:
        assert seen[ns] != host_ns(ns), f"{ns} namespace is the host's"


def test_pid_namespace(pyoci, bundle, cid, base_config, write_config):
    script = ("echo pid $$; echo ppid $PPID;"
              " for p in /proc/[0-9]*; do echo proc ${p#/proc/} $(cat $p/comm 2>/dev/null); done")
    r = run_sh(pyoci, bundle, cid, base_config(), script, write_config=write_config)
    lines = r.stdout.splitlines()
    assert "pid 1" in lines, r.stdout
    assert "ppid 0" in lines, r.stdout
    # only the script's own processes (the shell, its $(...) subshells and cat) are there:
    # none of the host's
    procs = [line.split()[1:] for line in lines if line.startswith("proc ")]
    assert ["1", "sh"] in procs, r.stdout
    assert {p[1] for p in procs if len(p) == 2} <= {"sh", "cat"}, r.stdout


def test_network_namespace_only_loopback_and_up(pyoci, bundle, cid, base_config, write_config):
    script = "echo '=== devs'; ls /sys/class/net; echo '=== flags'; cat /sys/class/net/lo/flags"
    r = run_sh(pyoci, bundle, cid, base_config(), script, write_config=write_config)
    assert section(r.stdout, "devs").split() == ["lo"], r.stdout
    flags = int(section(r.stdout, "flags").strip(), 16)
    assert flags & IFF_LOOPBACK and flags & IFF_UP, f"lo is not up: flags {flags:#x}"


def test_uts_namespace_hostname_and_domainname(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config()
    cfg["hostname"] = "box-" + cid[-8:]
    cfg["domainname"] = "example.test"
    r = run_sh(pyoci, bundle, cid, cfg,
               "hostname; cat /proc/sys/kernel/hostname /proc/sys/kernel/domainname",
               write_config=write_config)
    assert r.stdout.split() == [cfg["hostname"]] * 2 + ["example.test"]
    assert socket.gethostname() != cfg["hostname"], "the host's hostname was changed"


def test_ipc_namespace_isolates_sysv_ipc(pyoci, bundle, cid, base_config, write_config):
    """A message queue made on the host is not visible in the container's ipc namespace."""
    made = subprocess.run(["ipcmk", "-Q"], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"ipcmk not usable: {made.stderr.strip()}")
    qid = made.stdout.split(":")[-1].strip()
    try:
        script = "echo '=== queues'; tail -n +2 /proc/sysvipc/msg; echo '=== ns'; " \
                 "readlink /proc/self/ns/ipc"
        r = run_sh(pyoci, bundle, cid, base_config(), script, write_config=write_config)
        assert section(r.stdout, "queues").strip() == "", r.stdout
        with open("/proc/sysvipc/msg") as f:
            assert any(line.split()[1] == qid for line in f.readlines()[1:])
    finally:
        subprocess.run(["ipcrm", "-q", qid], capture_output=True)


def test_mount_namespace_does_not_leak_to_host(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config()
    cfg["mounts"].append({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs",
                          "options": ["size=1m"]})
    r = run_sh(pyoci, bundle, cid, cfg, "grep -c ' /mnt ' /proc/self/mountinfo",
               write_config=write_config)
    assert r.stdout.strip() == "1"
    with open("/proc/self/mountinfo") as f:
        assert os.path.join(bundle, "rootfs") not in f.read()


def test_cgroup_namespace(pyoci, bundle, cid, base_config, write_config):
    """In a new cgroup namespace every hierarchy's path reads as the root."""
    cfg = base_config()
    cfg["linux"]["namespaces"].append({"type": "cgroup"})
    r = run_sh(pyoci, bundle, cid, cfg,
               "echo '=== cg'; cat /proc/self/cgroup; echo '=== ns'; readlink /proc/self/ns/cgroup",
               write_config=write_config)
    lines = section(r.stdout, "cg").splitlines()
    assert lines, r.stdout
    for line in lines:
        assert line.split(":", 2)[2] == "/", f"not the namespace root: {line}"
    assert ns_inode(section(r.stdout, "ns").strip()) != host_ns("cgroup")


def test_time_namespace_offsets(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config()
    cfg["linux"]["namespaces"].append({"type": "time"})
    cfg["linux"]["timeOffsets"] = {"monotonic": {"secs": 7 * 86400, "nanosecs": 0},
                                   "boottime": {"secs": 365 * 86400, "nanosecs": 500}}
    with open("/proc/uptime") as f:
        host_uptime = float(f.read().split()[0])
    r = run_sh(pyoci, bundle, cid, cfg,
               "echo '=== offsets'; cat /proc/self/timens_offsets; echo '=== uptime';"
               " cut -d' ' -f1 /proc/uptime", write_config=write_config)
    offsets = {}
    for line in section(r.stdout, "offsets").splitlines():
        clock, secs, nsecs = line.split()
        offsets[clock] = (int(secs), int(nsecs))
    assert offsets == {"monotonic": (7 * 86400, 0), "boottime": (365 * 86400, 500)}, r.stdout
    uptime = float(section(r.stdout, "uptime").strip())
    assert host_uptime + 365 * 86400 - 1 <= uptime <= host_uptime + 365 * 86400 + 60


def test_user_namespace_mapping(pyoci, bundle, cid, base_config, write_config):
    """Container root is host uid 100000; the shifted rootfs is usable and files map back."""
    cfg = userns_config(base_config())
    cfg["root"]["readonly"] = False
    chown_bundle_for_userns(bundle)
    script = ("echo '=== id'; id; echo '=== uid_map'; cat /proc/self/uid_map;"
              " echo '=== gid_map'; cat /proc/self/gid_map; echo '=== ls'; ls -ln /bin/busybox;"
              " touch /tmp/made-inside && echo '=== made'; stat -c '%u %g' /tmp/made-inside;"
              " echo '=== devnull'; stat -c '%t %T' /dev/null; echo x > /dev/null && echo ok")
    r = run_sh(pyoci, bundle, cid, cfg, script, write_config=write_config)
    assert section(r.stdout, "id").strip().startswith("uid=0(root) gid=0(root)"), r.stdout
    for kind in ("uid_map", "gid_map"):
        assert section(r.stdout, kind).split() == ["0", str(USERNS_HOST_ID), "65536"]
    assert section(r.stdout, "ls").split()[2:4] == ["0", "0"], r.stdout
    assert section(r.stdout, "made").split() == ["0", "0"], r.stdout
    st = os.stat(os.path.join(bundle, "rootfs", "tmp", "made-inside"))
    assert (st.st_uid, st.st_gid) == (USERNS_HOST_ID, USERNS_HOST_ID)
    assert section(r.stdout, "devnull").split() == ["1", "3", "ok"], r.stdout


def test_user_namespace_non_root_process_user(pyoci, bundle, cid, base_config, write_config):
    cfg = userns_config(base_config())
    cfg["root"]["readonly"] = False
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [2000]}
    chown_bundle_for_userns(bundle)
    r = run_sh(pyoci, bundle, cid, cfg,
               "id -u; id -g; id -G; touch /tmp/by-user; grep -E '^(Uid|Gid)' /proc/self/status",
               write_config=write_config)
    lines = r.stdout.splitlines()
    assert lines[:3] == ["1000", "1000", "1000 2000"], r.stdout
    st = os.stat(os.path.join(bundle, "rootfs", "tmp", "by-user"))
    assert (st.st_uid, st.st_gid) == (USERNS_HOST_ID + 1000, USERNS_HOST_ID + 1000)


def test_join_namespaces_of_helper_by_path(pyoci, bundle, cid, base_config, write_config):
    """network, uts and ipc of a process the test starts with unshare."""
    with helper_process("unshare", "--net", "--uts", "--ipc", "sh", "-c",
                        "hostname joined-host; exec sleep 300") as helper:
        wait_ns_differs(helper.pid, "net")
        wait_for(lambda: _hostname_of(helper.pid) == "joined-host", what="helper hostname")
        cfg = base_config()
        del cfg["hostname"]  # the joined uts namespace keeps its name
        for ns in cfg["linux"]["namespaces"]:
            if ns["type"] in ("network", "uts", "ipc"):
                ns["path"] = f"/proc/{helper.pid}/ns/{PROC_NAME[ns['type']]}"
        r = run_sh(pyoci, bundle, cid, cfg, NS_SCRIPT + "; echo host $(hostname);"
                   " echo lo $(cat /sys/class/net/lo/flags)", write_config=write_config)
        seen = container_ns(r.stdout)
        for ns in ("net", "uts", "ipc"):
            assert seen[ns] == ns_inode(os.readlink(f"/proc/{helper.pid}/ns/{ns}")), ns
        assert seen["pid"] != host_ns("pid") and seen["mnt"] != host_ns("mnt")
        assert "host joined-host" in r.stdout.splitlines()
        # a joined network namespace is not the runtime's to change: lo stays as it was
        lo_flags = [line for line in r.stdout.splitlines() if line.startswith("lo ")]
        assert not int(lo_flags[0].split()[1], 16) & IFF_UP, "runtime changed a joined netns"


def _hostname_of(pid: int) -> str | None:
    try:
        r = subprocess.run(["nsenter", "-t", str(pid), "--uts", "hostname"],
                           capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def test_join_network_and_uts_of_another_container(pyoci, new_bundle, cid, base_config,
                                                   write_config):
    first, second = new_bundle(), new_bundle()
    cfg = base_config(["sleep", "300"])
    cfg["hostname"] = "first-box"
    write_config(first, cfg)
    first_id = cid + "-a"
    pyoci("run", "--detach", "--bundle", first, first_id, check=True)
    try:
        pid = json.loads(pyoci("state", first_id, check=True).stdout)["pid"]
        cfg2 = base_config()
        del cfg2["hostname"]
        for ns in cfg2["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns["path"] = f"/proc/{pid}/ns/net"
            elif ns["type"] == "uts":
                ns["path"] = f"/proc/{pid}/ns/uts"
        r = run_sh(pyoci, second, cid, cfg2, NS_SCRIPT + "; echo host $(hostname)",
                   write_config=write_config)
        seen = container_ns(r.stdout)
        assert seen["net"] == ns_inode(os.readlink(f"/proc/{pid}/ns/net"))
        assert seen["uts"] == ns_inode(os.readlink(f"/proc/{pid}/ns/uts"))
        assert seen["pid"] != ns_inode(os.readlink(f"/proc/{pid}/ns/pid"))
        assert "host first-box" in r.stdout.splitlines()
    finally:
        pyoci("delete", "--force", first_id)


def test_join_user_namespace_by_path(pyoci, bundle, cid, base_config, write_config):
    """A user namespace made by a helper; the runtime writes no maps of its own."""
    with helper_process("unshare", "--user", "sleep", "300") as helper:
        wait_ns_differs(helper.pid, "user")
        with open(f"/proc/{helper.pid}/uid_map", "w") as f:
            f.write(f"0 {USERNS_HOST_ID} 65536\n")
        with open(f"/proc/{helper.pid}/gid_map", "w") as f:
            f.write(f"0 {USERNS_HOST_ID} 65536\n")
        cfg = base_config()
        cfg["linux"]["namespaces"].append({"type": "user",
                                           "path": f"/proc/{helper.pid}/ns/user"})
        chown_bundle_for_userns(bundle)
        r = run_sh(pyoci, bundle, cid, cfg,
                   NS_SCRIPT + "; echo '=== map'; cat /proc/self/uid_map; id -u",
                   write_config=write_config)
        seen = container_ns(r.stdout)
        assert seen["user"] == ns_inode(os.readlink(f"/proc/{helper.pid}/ns/user"))
        assert section(r.stdout, "map").split() == ["0", str(USERNS_HOST_ID), "65536", "0"]


def test_join_missing_namespace_path_fails(pyoci, bundle, cid, base_config, write_config,
                                           root):
    cfg = base_config()
    for ns in cfg["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = "/proc/self/ns/does-not-exist"
    write_config(bundle, cfg)
    r = pyoci("run", "--bundle", bundle, cid)
    assert r.returncode != 0
    assert "does-not-exist" in r.stderr or "no such file" in r.stderr.lower(), r.stderr
    assert os.listdir(root) == []


def test_user_namespace_without_network_namespace_binds_sys(pyoci, bundle, cid, base_config,
                                                            write_config):
    """sysfs can only be mounted in a user namespace that owns a network namespace: with
    the host's network, the host's /sys is bound instead, read-only down to every
    submount."""
    cfg = userns_config(base_config())
    cfg["linux"]["namespaces"] = [ns for ns in cfg["linux"]["namespaces"]
                                  if ns["type"] != "network"]
    chown_bundle_for_userns(bundle)
    r = run_sh(pyoci, bundle, cid, cfg,
               "echo '=== net'; ls /sys/class/net; echo '=== mi'; cat /proc/self/mountinfo",
               write_config=write_config)
    assert sorted(section(r.stdout, "net").split()) == sorted(os.listdir("/sys/class/net"))
    sys_mounts = [line for line in section(r.stdout, "mi").splitlines()
                  if line.split()[4] == "/sys" or line.split()[4].startswith("/sys/")]
    assert sys_mounts, r.stdout
    for line in sys_mounts:
        assert "ro" in line.split()[5].split(","), f"writable under /sys: {line}"


@pytest.mark.parametrize("key,value,ns", [("hostname", "h", "uts"), ("domainname", "d", "uts"),
                                          ("timeOffsets", {"monotonic": {"secs": 1}}, None)])
def test_setting_without_its_namespace_is_refused(pyoci, bundle, cid, root, base_config,
                                                  write_config, key, value, ns):
    """Never silently applied to the host's namespace, nor ignored."""
    cfg = base_config()
    cfg.pop("hostname", None)
    if key == "timeOffsets":
        cfg["linux"][key] = value
    else:
        cfg[key] = value
        cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != ns]
    write_config(bundle, cfg)
    host_name = socket.gethostname()
    r = pyoci("run", "--bundle", bundle, cid)
    assert r.returncode != 0
    assert "namespace" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert os.listdir(root) == []
    assert socket.gethostname() == host_name


def test_join_network_namespace_with_a_new_user_namespace(pyoci, bundle, cid, base_config,
                                                          write_config):
    """Namespaces given by path are joined before the user namespace is created: from
    inside it, the host's could no longer be entered."""
    with helper_process("unshare", "--net", "sleep", "300") as helper:
        wait_ns_differs(helper.pid, "net")
        cfg = userns_config(base_config())
        for ns in cfg["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns["path"] = f"/proc/{helper.pid}/ns/net"
        chown_bundle_for_userns(bundle)
        r = run_sh(pyoci, bundle, cid, cfg, NS_SCRIPT + "; id -u", write_config=write_config)
        seen = container_ns(r.stdout)
        assert seen["net"] == ns_inode(os.readlink(f"/proc/{helper.pid}/ns/net"))
        assert seen["user"] != host_ns("user")
        assert r.stdout.splitlines()[-1] == "0"
