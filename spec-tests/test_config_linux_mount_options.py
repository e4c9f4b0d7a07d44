"""config.md, "Linux mount options": every option the table marks MUST, and the MUSTs
of the idmap / ridmap options.

https://github.com/opencontainers/runtime-spec/blob/v1.3.0/config.md#linux-mount-options

Each option gets its own container that mounts /spec-opt with it and prints its own
/proc/self/mountinfo; the effect is read from there.  Where an option only undoes
another one (atime, dev, ...), the mount names both, in that order.  An option the
runtime wrongly passed to mount(2) as filesystem data would make the tmpfs mount fail.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from spec_support import (
    assert_error,
    assert_no_container,
    base_config,
    mount_at,
    output,
    parse_mountinfo,
    run_script,
    write_config,
)

DEST = "/spec-opt"


def tmpfs(*options: str) -> list[dict]:
    return [{"destination": DEST, "type": "tmpfs", "source": "tmpfs",
             "options": ["size=1m", *options]}]


def bind(*options: str) -> list[dict]:
    return [{"destination": DEST, "type": "none", "source": "{src}", "options": list(options)}]


def has(flag: str, field: str = "options"):
    return lambda m, sub: flag in m[field] or f"{flag} not in {field} {m[field]}"


def lacks(flag: str, field: str = "options"):
    return lambda m, sub: flag not in m[field] or f"{flag} in {field} {m[field]}"


def mounted(m, sub):
    return True


def atime_strict(m, sub):
    return ("relatime" not in m["options"] and "noatime" not in m["options"]) or \
        f"not strictatime: {m['options']}"


def remounted_ro(m, sub):
    return ("ro" in m["options"] or "ro" in m["super"]) or f"not read-only: {m}"


def is_bind(recursive: bool):
    def check(m, sub):
        if m["source"] != "spec-src":  # the name the host tmpfs was mounted with
            return f"not a bind of the source: {m}"
        if recursive and sub is None:
            return "the submount of the source was not bound too (rbind)"
        if not recursive and sub is not None:
            return "the submount of the source was bound too (bind is not recursive)"
        return True
    return check


def _peer(m) -> bool:
    return any(f.startswith("shared:") for f in m["optional"])


def _master(m) -> bool:
    return any(f.startswith("master:") for f in m["optional"])


def propagation(kind: str, recursive: bool):
    def one(m) -> str | None:
        if kind == "private" and (_peer(m) or _master(m)):
            return f"not private: {m['optional']}"
        if kind == "shared" and not _peer(m):
            return f"not shared: {m['optional']}"
        if kind == "slave" and (_peer(m) or not _master(m)):
            return f"not a slave: {m['optional']}"
        if kind == "unbindable" and "unbindable" not in m["optional"]:
            return f"not unbindable: {m['optional']}"
        return None

    def check(m, sub):
        bad = one(m)
        if bad:
            return f"{DEST}: {bad}"
        if recursive:
            if sub is None:
                return "no submount to check"
            bad = one(sub)
            if bad:
                return f"{DEST}/sub (recursive): {bad}"
        return True
    return check


# option -> (mounts, check(mount at /spec-opt, mount at /spec-opt/sub or None))
CASES = {
    "async": (tmpfs("sync", "async"), lacks("sync", "super")),
    "atime": (tmpfs("noatime", "atime"), lacks("noatime")),
    "bind": (bind("bind"), is_bind(False)),
    "defaults": (tmpfs("defaults"), has("rw")),
    "dev": (tmpfs("nodev", "dev"), lacks("nodev")),
    "diratime": (tmpfs("nodiratime", "diratime"), lacks("nodiratime")),
    "dirsync": (tmpfs("dirsync"), has("dirsync", "super")),
    "exec": (tmpfs("noexec", "exec"), lacks("noexec")),
    "iversion": (tmpfs("iversion"), mounted),
    "lazytime": (tmpfs("lazytime"), has("lazytime", "super")),
    "loud": (tmpfs("silent", "loud"), mounted),
    "noatime": (tmpfs("noatime"), has("noatime")),
    "nodev": (tmpfs("nodev"), has("nodev")),
    "nodiratime": (tmpfs("nodiratime"), has("nodiratime")),
    "noexec": (tmpfs("noexec"), has("noexec")),
    "noiversion": (tmpfs("iversion", "noiversion"), mounted),
    "nolazytime": (tmpfs("lazytime", "nolazytime"), lacks("lazytime", "super")),
    "norelatime": (tmpfs("relatime", "norelatime"), mounted),
    "nostrictatime": (tmpfs("strictatime", "nostrictatime"), has("relatime")),
    "nosuid": (tmpfs("nosuid"), has("nosuid")),
    "private": (bind("rbind", "private"), propagation("private", False)),
    "rbind": (bind("rbind"), is_bind(True)),
    "relatime": (tmpfs("relatime"), has("relatime")),
    "remount": (tmpfs() + [{"destination": DEST, "type": "tmpfs", "source": "tmpfs",
                            "options": ["remount", "ro"]}], remounted_ro),
    "ro": (tmpfs("ro"), has("ro")),
    "rprivate": (bind("rbind", "rprivate"), propagation("private", True)),
    "rshared": (bind("rbind", "rshared"), propagation("shared", True)),
    "rslave": (bind("rbind", "rshared", "rslave"), propagation("slave", True)),
    "runbindable": (bind("rbind", "runbindable"), propagation("unbindable", True)),
    "rw": (tmpfs("ro", "rw"), has("rw")),
    "shared": (bind("rbind", "shared"), propagation("shared", False)),
    "silent": (tmpfs("silent"), mounted),
    "slave": (bind("rbind", "shared", "slave"), propagation("slave", False)),
    "strictatime": (tmpfs("strictatime"), atime_strict),
    "suid": (tmpfs("nosuid", "suid"), lacks("nosuid")),
    "sync": (tmpfs("sync"), has("sync", "super")),
    "unbindable": (bind("rbind", "unbindable"), propagation("unbindable", False)),
}


@pytest.fixture
def shared_source(bundle):
    """BUNDLE/spec-src: a shared tmpfs with a submount at sub/, mounted on the host for
    the test (so that binds have a submount and a propagation peer); unmounted after."""
    src = os.path.join(bundle, "spec-src")
    sub = os.path.join(src, "sub")
    os.makedirs(src)
    mounted_here = []
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "spec-src", src], check=True)
        mounted_here.append(src)
        subprocess.run(["mount", "--make-shared", src], check=True)
        os.makedirs(sub)
        with open(os.path.join(src, "from-bind"), "w") as f:
            f.write("bind source\n")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "spec-src-sub", sub],
                       check=True)
        mounted_here.append(sub)
        yield src
    finally:
        for path in reversed(mounted_here):
            subprocess.run(["umount", "-l", path], check=False)


@pytest.mark.parametrize("option", sorted(CASES))
def test_linux_mount_option_must_be_implemented(pyoci, bundle, cid, shared_source, option):
    """Linux mount options: "Runtimes MUST ... implement the following option strings"
    (every option whose requirement is MUST; one container each)."""
    mounts, check = CASES[option]

    def edit(cfg):
        for m in mounts:
            m = dict(m)
            if m.get("source") == "{src}":
                m["source"] = shared_source
            cfg["mounts"].append(m)

    box = run_script(pyoci, bundle, cid, "cat /proc/self/mountinfo", mutate=edit)
    seen = parse_mountinfo(output(box))
    top = mount_at(seen, DEST)
    assert top is not None, f"{DEST} is not mounted"
    if option == "remount":
        assert len([m for m in seen if m["mountpoint"] == DEST]) == 1, "remount added a mount"
    verdict = check(top, mount_at(seen, DEST + "/sub"))
    assert verdict is True, f"{option}: {verdict}"


# ---------------------------------------------------------------------------------------
# idmap / ridmap


def _idmap_source(bundle: str) -> str:
    src = os.path.join(bundle, "spec-idmap-src")
    os.makedirs(src)
    with open(os.path.join(src, "owned-by-root"), "w") as f:
        f.write("x\n")
    os.chown(os.path.join(src, "owned-by-root"), 0, 0)
    return src


@pytest.mark.parametrize("option", ["idmap", "ridmap"])
def test_idmap_mount_uses_the_given_mappings(pyoci, bundle, cid, option):
    """Linux mount options, idmap / ridmap: "If uidMappings or gidMappings are specified for
    the mount, the runtime MUST use those values for the mount's mapping" (the options are
    SHOULD: a runtime without them must refuse the mount, and the test is skipped)."""
    src = _idmap_source(bundle)
    mount = {"destination": "/spec-idmap", "type": "bind", "source": src,
             "options": ["rbind", option],
             "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
             "gidMappings": [{"containerID": 0, "hostID": 200000, "size": 65536}]}
    cfg = base_config(["true"])
    cfg["mounts"].append(mount)
    write_config(bundle, cfg)
    r = pyoci("create", "--bundle", bundle, cid)
    if r.returncode != 0:
        assert_no_container(pyoci, cid)
        pytest.skip(f"{option} mounts not supported (a SHOULD); refused: {r.stderr.strip()}")
    assert pyoci("delete", "--force", cid).returncode == 0

    def edit(c):
        c["mounts"].append(mount)

    box = run_script(pyoci, bundle, cid, "stat -c '%u %g' /spec-idmap/owned-by-root",
                     mutate=edit)
    assert output(box) == "100000 200000\n"


@pytest.mark.parametrize("option", ["idmap", "ridmap"])
def test_idmap_mount_without_mappings_or_user_namespace_is_an_error(pyoci, bundle, cid,
                                                                    option):
    """Linux mount options, idmap / ridmap: "If there are no uidMappings and gidMappings
    specified and the container isn't using user namespaces, an error MUST be
    returned"."""
    src = _idmap_source(bundle)
    cfg = base_config(["true"])
    cfg["mounts"].append({"destination": "/spec-idmap", "type": "bind", "source": src,
                          "options": ["rbind", option]})
    write_config(bundle, cfg)
    assert_error(pyoci("create", "--bundle", bundle, cid), f"{option} without any mapping")
    assert_no_container(pyoci, cid)


@pytest.mark.parametrize("option", ["idmap", "ridmap"])
def test_idmap_mount_without_mappings_uses_the_user_namespace_or_errors(pyoci, bundle, cid,
                                                                        option):
    """Linux mount options, idmap / ridmap: without mount mappings "the runtime MAY use the
    container's user namespace mapping, otherwise an error MUST be returned"."""
    src = _idmap_source(bundle)
    cfg = base_config(["true"])
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    mount = {"destination": "/spec-idmap", "type": "bind", "source": src,
             "options": ["rbind", option]}
    cfg["mounts"].append(mount)
    write_config(bundle, cfg)
    r = pyoci("create", "--bundle", bundle, cid)
    if r.returncode != 0:
        assert_no_container(pyoci, cid)  # the error the spec allows
        return
    assert pyoci("delete", "--force", cid).returncode == 0

    def edit(c):
        c["linux"] = cfg["linux"]
        c["mounts"].append(mount)

    # Mapped with the container's own mapping, a file of host root is the container's root.
    box = run_script(pyoci, bundle, cid, "stat -c '%u %g' /spec-idmap/owned-by-root",
                     mutate=edit)
    assert output(box) == "0 0\n"
