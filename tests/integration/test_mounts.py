"""The container's root filesystem and ``mounts``, as seen from inside real containers."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import stat
import struct
import subprocess
import tempfile

import pytest
from container_helpers import host_mount, mount_at, mountinfo, run_sh, section, wait_for

MI = "cat /proc/self/mountinfo"


def rootfs_listing(bundle: str) -> list[str]:
    return sorted(os.listdir(os.path.join(bundle, "rootfs")))


# --- pivot_root, --no-pivot, root.readonly ----------------------------------------------

_NS_GET_MNTNS_ID = (2 << 30) | (8 << 16) | (0xB7 << 8) | 0x5
_SYS_LISTMOUNT = 458  # x86_64
_LSMT_ROOT = 0xFFFFFFFFFFFFFFFF


def mounts_in_namespace(pid: int) -> int | None:
    """How many mounts ``pid``'s mount namespace holds, all of them, also those its root
    hides (listmount(2), Linux 6.11+); None where the kernel cannot say."""
    if os.uname().machine != "x86_64":
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    try:
        buf = bytearray(8)
        fcntl.ioctl(fd, _NS_GET_MNTNS_ID, buf)
    except OSError:
        return None
    finally:
        os.close(fd)
    req = struct.pack("IIQQQ", 32, 0, _LSMT_ROOT, 0, struct.unpack("Q", buf)[0])
    out = (ctypes.c_uint64 * 4096)()
    n = libc.syscall(_SYS_LISTMOUNT, ctypes.c_char_p(req), out, 4096, 0)
    if n < 0:
        if ctypes.get_errno() in (errno.ENOSYS, errno.EINVAL, errno.E2BIG):
            return None
        raise OSError(ctypes.get_errno(), "listmount")
    return n


def _detached_sleeper(pyoci, bundle, cid, base_config, write_config, *args: str) -> int:
    write_config(bundle, base_config(["sleep", "300"]))
    pyoci("run", "--detach", "--bundle", bundle, *args, cid, check=True)
    return json.loads(pyoci("state", cid, check=True).stdout)["pid"]


def test_pivot_root_hides_the_host_root(pyoci, bundle, cid, base_config, write_config):
    script = (f"echo '=== ls'; ls /; echo '=== root'; readlink /proc/1/root; ls /proc/1/root;"
              f" echo '=== mi'; {MI}")
    r = run_sh(pyoci, bundle, cid, base_config(), script, write_config=write_config)
    assert section(r.stdout, "ls").split() == rootfs_listing(bundle)
    root_lines = section(r.stdout, "root").split()
    assert root_lines[0] == "/" and root_lines[1:] == rootfs_listing(bundle)
    mounts = mountinfo(section(r.stdout, "mi"))
    assert [m["mountpoint"] for m in mounts].count("/") == 1
    assert mount_at(mounts, "/")["root"] == os.path.join(bundle, "rootfs")
    assert not any(m["mountpoint"].startswith(("/work", "/tmp/pyoci")) for m in mounts)


def test_pivot_root_leaves_no_host_mount_in_the_namespace(pyoci, bundle, cid, base_config,
                                                          write_config):
    """After pivot_root the old root is unmounted: the namespace holds only what the
    container sees (with --no-pivot the host's mounts stay below its root)."""
    pid = _detached_sleeper(pyoci, bundle, cid, base_config, write_config)
    total = mounts_in_namespace(pid)
    if total is None:
        pyoci("delete", "--force", cid)
        pytest.skip("listmount(2) by mount namespace id needs Linux 6.11+ on x86_64")
    with open(f"/proc/{pid}/mountinfo") as f:
        visible = len(f.read().splitlines())
    pyoci("delete", "--force", cid, check=True)
    assert total == visible, f"{total - visible} mounts hidden below the container's root"


def test_no_pivot(pyoci, bundle, cid, base_config, write_config):
    pid = _detached_sleeper(pyoci, bundle, cid, base_config, write_config, "--no-pivot")
    try:
        with open(f"/proc/{pid}/mountinfo") as f:
            mounts = mountinfo(f.read())
        assert mount_at(mounts, "/")["root"] == os.path.join(bundle, "rootfs")
        total = mounts_in_namespace(pid)
        if total is not None:  # the host's mounts are still there, below the root
            assert total > len(mounts)
    finally:
        pyoci("delete", "--force", cid, check=True)
    r = run_sh(pyoci, bundle, cid, base_config(), "ls /; echo $$", "--no-pivot",
               write_config=write_config)
    assert r.stdout.split() == rootfs_listing(bundle) + ["1"]


@pytest.mark.parametrize("readonly", [True, False])
def test_root_readonly(pyoci, bundle, cid, base_config, write_config, readonly):
    cfg = base_config()
    cfg["root"]["readonly"] = readonly
    r = run_sh(pyoci, bundle, cid, cfg, f"touch /made 2>&1; echo rc=$?; {MI}",
               write_config=write_config)
    made = os.path.join(bundle, "rootfs", "made")
    root_mount = mount_at(mountinfo(r.stdout), "/")
    if readonly:
        assert "Read-only file system" in r.stdout and "rc=1" in r.stdout, r.stdout
        assert "ro" in root_mount["options"]
        assert not os.path.exists(made)
    else:
        assert "rc=0" in r.stdout, r.stdout
        assert "rw" in root_mount["options"]
        assert os.path.exists(made)


# --- rootfsPropagation -------------------------------------------------------------------


@pytest.mark.parametrize("prop,field", [("shared", "shared:"), ("private", None),
                                        ("slave", None), ("unbindable", "unbindable")])
def test_rootfs_propagation_of_root_mount(pyoci, bundle, cid, base_config, write_config,
                                          prop, field):
    cfg = base_config()
    cfg["linux"]["rootfsPropagation"] = prop
    r = run_sh(pyoci, bundle, cid, cfg, MI, write_config=write_config)
    optional = mount_at(mountinfo(r.stdout), "/")["optional"]
    if field is None:
        assert optional == [], optional
    else:
        assert any(o.startswith(field) for o in optional), optional


WAIT_MARKER = ("i=0; while [ ! -e /mnt/marker ] && [ $i -lt {n} ]; do sleep 0.1; i=$((i+1));"
               " done; [ -e /mnt/marker ] && echo seen || echo not-seen;"
               " echo '=== mi'; cat /proc/self/mountinfo")


@pytest.mark.parametrize("prop", ["private", None])
def test_rootfs_propagation_host_mounts_reach_container(pyoci, bundle, cid, base_config,
                                                        write_config, prop):
    """The bundle on a shared mount: a mount the host makes under the rootfs afterwards
    reaches the container with the default propagation (rslave, as runc), not a private
    one."""
    cfg = base_config()
    if prop:
        cfg["linux"]["rootfsPropagation"] = prop
    os.makedirs(os.path.join(bundle, "rootfs", "mnt"), exist_ok=True)
    propagates = prop is None
    cfg["process"]["args"] = ["sh", "-c", WAIT_MARKER.format(n=150 if propagates else 20)]
    write_config(bundle, cfg)
    with host_mount("--bind", bundle, target=bundle):
        subprocess.run(["mount", "--make-shared", bundle], check=True)
        with tempfile.TemporaryFile("w+") as out:
            p = pyoci.popen("run", "--bundle", bundle, cid, stdout=out, stderr=subprocess.STDOUT)
            wait_for(lambda: _running(pyoci, cid) or p.poll() is not None, 20,
                     "the container to run")
            mnt = os.path.join(bundle, "rootfs", "mnt")
            with host_mount("-t", "tmpfs", "-o", "size=1m", "tmpfs", target=mnt):
                with open(os.path.join(mnt, "marker"), "w"):
                    pass
                assert p.wait(timeout=60) == 0
            out.seek(0)
            text = out.read()
    assert text.splitlines()[0] == ("seen" if propagates else "not-seen"), text
    root_mount = mount_at(mountinfo(section(text, "mi")), "/")
    if propagates:
        assert any(o.startswith("master:") for o in root_mount["optional"]), root_mount["line"]


def _running(pyoci, cid) -> bool:
    r = pyoci("state", cid)
    return r.returncode == 0 and json.loads(r.stdout)["status"] == "running"


# --- mounts: order, options, propagation, recursive attributes ---------------------------


def test_mounts_in_order(pyoci, bundle, cid, base_config, write_config):
    hostdir = os.path.join(bundle, "hostdir")
    os.mkdir(hostdir)
    with open(os.path.join(hostdir, "from-host"), "w") as f:
        f.write("hello\n")
    cfg = base_config()
    cfg["mounts"] += [
        {"destination": "/a", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
        {"destination": "/a/b", "type": "tmpfs", "source": "tmpfs", "options": ["size=2m"]},
        {"destination": "/a/b/c", "type": "bind", "source": hostdir, "options": ["bind"]},
        {"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["size=3m"]},
        {"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["size=4m"]},
    ]
    r = run_sh(pyoci, bundle, cid, cfg, f"cat /a/b/c/from-host; df -k /x | tail -1; {MI}",
               write_config=write_config)
    assert r.stdout.splitlines()[0] == "hello"
    assert r.stdout.splitlines()[1].split()[1] == "4096", r.stdout  # the later /x is on top
    order = [m["mountpoint"] for m in mountinfo(r.stdout)
             if m["mountpoint"] in ("/a", "/a/b", "/a/b/c", "/x")]
    assert order == ["/a", "/a/b", "/a/b/c", "/x", "/x"]


def test_tmpfs_options(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config()
    cfg["mounts"] += [
        {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "nodev", "noexec", "size=2m", "mode=1750", "uid=1000",
                     "gid=1000"]},
        {"destination": "/noexec", "type": "tmpfs", "source": "tmpfs",
         "options": ["noexec", "mode=1777"]},
        {"destination": "/exec", "type": "tmpfs", "source": "tmpfs", "options": ["mode=1777"]},
    ]
    script = ("echo '=== stat'; stat -c '%a %u %g' /scratch;"
              " echo '=== exec'; for d in /noexec /exec; do cp /bin/busybox $d/true;"
              " $d/true 2>/dev/null; echo $d $?; done;"
              f" echo '=== mi'; {MI}")
    r = run_sh(pyoci, bundle, cid, cfg, script, write_config=write_config)
    assert section(r.stdout, "stat").split() == ["1750", "1000", "1000"]
    # noexec: "Permission denied" (126); without it the copy runs
    assert section(r.stdout, "exec").splitlines() == ["/noexec 126", "/exec 0"], r.stdout
    mounts = mountinfo(section(r.stdout, "mi"))
    m = mount_at(mounts, "/scratch")
    assert {"nosuid", "nodev", "noexec", "rw"} <= m["options"]
    assert m["fstype"] == "tmpfs"
    assert {"size=2048k", "mode=1750", "uid=1000", "gid=1000"} <= m["super"], m["line"]
    assert "noexec" not in mount_at(mounts, "/exec")["options"]


def test_bind_mount_nodev(pyoci, bundle, cid, base_config, write_config):
    """A device node the host made: unusable through a nodev bind, usable otherwise."""
    devdir = os.path.join(bundle, "devdir")
    os.mkdir(devdir)
    os.mknod(os.path.join(devdir, "null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    cfg = base_config()
    cfg["mounts"] += [
        {"destination": "/nodev", "type": "bind", "source": devdir, "options": ["bind", "nodev"]},
        {"destination": "/dev-ok", "type": "bind", "source": devdir, "options": ["bind", "dev"]},
    ]
    r = run_sh(pyoci, bundle, cid, cfg,
               "for d in /nodev /dev-ok; do echo x 2>/dev/null > $d/null; echo $d $?; done",
               write_config=write_config)
    assert r.stdout.splitlines() == ["/nodev 1", "/dev-ok 0"], r.stdout


@pytest.mark.parametrize("writable", [False, True])
def test_bind_mount_ro_and_rw(pyoci, bundle, cid, base_config, write_config, writable):
    hostdir = os.path.join(bundle, "hostdir")
    os.mkdir(hostdir)
    with open(os.path.join(hostdir, "file"), "w") as f:
        f.write("host content\n")
    cfg = base_config()
    cfg["mounts"].append({"destination": "/data", "type": "bind", "source": hostdir,
                          "options": ["rbind", "rw" if writable else "ro", "nosuid"]})
    r = run_sh(pyoci, bundle, cid, cfg,
               f"cat /data/file; (echo new > /data/made) 2>&1; echo rc=$?; {MI}",
               write_config=write_config)
    assert r.stdout.startswith("host content\n")
    m = mount_at(mountinfo(r.stdout), "/data")
    assert "nosuid" in m["options"]
    if writable:
        assert "rc=0" in r.stdout
        with open(os.path.join(hostdir, "made")) as f:
            assert f.read() == "new\n"
    else:
        assert "Read-only file system" in r.stdout and "rc=1" in r.stdout, r.stdout
        assert "ro" in m["options"]
        assert not os.path.exists(os.path.join(hostdir, "made"))


def test_bind_mount_of_a_file(pyoci, bundle, cid, base_config, write_config):
    src = os.path.join(bundle, "hosts-file")
    with open(src, "w") as f:
        f.write("10.0.0.1 example\n")
    cfg = base_config()
    cfg["mounts"].append({"destination": "/etc/deep/hosts", "type": "bind", "source": src,
                          "options": ["bind", "ro"]})
    r = run_sh(pyoci, bundle, cid, cfg, "cat /etc/deep/hosts", write_config=write_config)
    assert r.stdout == "10.0.0.1 example\n"


def test_mount_propagation_options(pyoci, bundle, cid, base_config, write_config):
    """shared / slave / private / unbindable on single mounts, read back from mountinfo."""
    cfg = base_config()
    shared_src = os.path.join(bundle, "rootfs", "shared-src")
    cfg["mounts"] += [
        {"destination": "/shared-src", "type": "tmpfs", "source": "tmpfs",
         "options": ["shared"]},
        # a bind of the shared tmpfs, made a slave of it
        {"destination": "/slave", "type": "bind", "source": shared_src,
         "options": ["bind", "slave"]},
        {"destination": "/private", "type": "tmpfs", "source": "tmpfs", "options": ["private"]},
        {"destination": "/unbindable", "type": "tmpfs", "source": "tmpfs",
         "options": ["unbindable"]},
        {"destination": "/rshared", "type": "tmpfs", "source": "tmpfs", "options": ["rshared"]},
    ]
    r = run_sh(pyoci, bundle, cid, cfg, MI, write_config=write_config)
    mounts = mountinfo(r.stdout)
    shared = mount_at(mounts, "/shared-src")["optional"]
    assert len(shared) == 1 and shared[0].startswith("shared:"), shared
    peer_group = shared[0].split(":")[1]
    assert mount_at(mounts, "/slave")["optional"] == [f"master:{peer_group}"]
    assert mount_at(mounts, "/private")["optional"] == []
    assert mount_at(mounts, "/unbindable")["optional"] == ["unbindable"]
    assert mount_at(mounts, "/rshared")["optional"][0].startswith("shared:")


@pytest.fixture
def host_dir_with_submount(bundle):
    """``BUNDLE/hostdir`` (a file in it) with a tmpfs mounted on ``hostdir/sub`` (host side)."""
    hostdir = os.path.join(bundle, "hostdir")
    os.makedirs(os.path.join(hostdir, "sub"))
    with open(os.path.join(hostdir, "top-file"), "w"):
        pass
    with host_mount("-t", "tmpfs", "-o", "size=1m", "tmpfs",
                    target=os.path.join(hostdir, "sub")) as sub:
        with open(os.path.join(sub, "sub-file"), "w"):
            pass
        yield hostdir


def test_recursive_mount_attributes(pyoci, bundle, cid, base_config, write_config,
                                    host_dir_with_submount):
    """rro/rnosuid/rnodev/rnoexec reach the submount; plain ro does not."""
    cfg = base_config()
    src = host_dir_with_submount
    cfg["mounts"] += [
        {"destination": "/rro", "type": "bind", "source": src, "options": ["rbind", "rro"]},
        {"destination": "/plain-ro", "type": "bind", "source": src, "options": ["rbind", "ro"]},
        {"destination": "/rflags", "type": "bind", "source": src,
         "options": ["rbind", "rnosuid", "rnodev", "rnoexec"]},
    ]
    script = ("for d in /rro /rro/sub /plain-ro /plain-ro/sub; do"
              " touch $d/new 2>/dev/null && echo $d writable || echo $d readonly; done;"
              f" echo '=== mi'; {MI}")
    r = run_sh(pyoci, bundle, cid, cfg, script, write_config=write_config)
    lines = r.stdout.splitlines()
    assert lines[:4] == ["/rro readonly", "/rro/sub readonly", "/plain-ro readonly",
                         "/plain-ro/sub writable"], r.stdout
    mounts = mountinfo(section(r.stdout, "mi"))
    assert "ro" in mount_at(mounts, "/rro/sub")["options"]
    assert "rw" in mount_at(mounts, "/plain-ro/sub")["options"]
    for point in ("/rflags", "/rflags/sub"):
        assert {"nosuid", "nodev", "noexec"} <= mount_at(mounts, point)["options"], point
    os.unlink(os.path.join(src, "sub", "new"))


def test_tmpcopyup(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config()
    cfg["mounts"].append({"destination": "/etc", "type": "tmpfs", "source": "tmpfs",
                          "options": ["tmpcopyup", "size=1m"]})
    passwd = os.path.join(bundle, "rootfs", "etc", "passwd")
    with open(passwd) as f:
        original = f.read()
    r = run_sh(pyoci, bundle, cid, cfg,
               "cat /etc/passwd; echo extra:x:1:1::/:/bin/sh >> /etc/passwd && echo appended;"
               f" echo '=== mi'; {MI}", write_config=write_config)
    assert r.stdout.startswith(original + "appended\n"), r.stdout
    assert mount_at(mountinfo(section(r.stdout, "mi")), "/etc")["fstype"] == "tmpfs"
    with open(passwd) as f:
        assert f.read() == original  # the copy was written, not the rootfs


# --- destinations stay inside the rootfs -------------------------------------------------


def test_symlinked_destination_stays_in_rootfs(pyoci, bundle, cid, base_config, write_config):
    """rootfs/evil -> /<abs host path>: the tmpfs lands on rootfs/<that path>."""
    host_target = os.path.join(bundle, "host-target")  # absent on the host
    os.symlink(host_target, os.path.join(bundle, "rootfs", "evil"))
    cfg = base_config()
    cfg["mounts"].append({"destination": "/evil", "type": "tmpfs", "source": "tmpfs",
                          "options": ["size=1m"]})
    r = run_sh(pyoci, bundle, cid, cfg, f"echo inside > /evil/file; {MI}",
               write_config=write_config)
    assert not os.path.lexists(host_target), "the runtime created the host path"
    m = mount_at(mountinfo(r.stdout), host_target)  # i.e. rootfs/<host_target>, in the container
    assert m["fstype"] == "tmpfs"
    assert os.path.isdir(os.path.join(bundle, "rootfs", host_target.lstrip("/")))


def test_symlinked_parent_of_file_bind_stays_in_rootfs(pyoci, bundle, cid, base_config,
                                                       write_config):
    """A file bind through rootfs/link -> ../../../<existing host dir>: nothing is created
    in the host directory, the bind lands inside the rootfs."""
    host_dir = os.path.join(bundle, "host-dir")
    os.mkdir(host_dir)
    os.symlink("../../../../../../../.." + host_dir, os.path.join(bundle, "rootfs", "link"))
    src = os.path.join(bundle, "payload")
    with open(src, "w") as f:
        f.write("payload\n")
    cfg = base_config()
    cfg["mounts"].append({"destination": "/link/file", "type": "bind", "source": src,
                          "options": ["bind"]})
    r = run_sh(pyoci, bundle, cid, cfg, "cat /link/file; ls /link", write_config=write_config)
    assert r.stdout == "payload\nfile\n"
    assert os.listdir(host_dir) == [], "the runtime created the mount point on the host"
    assert os.path.isfile(os.path.join(bundle, "rootfs", host_dir.lstrip("/"), "file"))


def test_destination_dotdot_stays_in_rootfs(pyoci, bundle, cid, base_config, write_config):
    cfg = base_config()
    cfg["mounts"].append({"destination": "/../../../../escape", "type": "tmpfs",
                          "source": "tmpfs", "options": ["size=1m"]})
    r = run_sh(pyoci, bundle, cid, cfg, MI, write_config=write_config)
    assert mount_at(mountinfo(r.stdout), "/escape")["fstype"] == "tmpfs"
    assert not os.path.exists("/escape")
