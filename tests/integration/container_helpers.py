"""Helpers for the tests of what the container looks like from inside.

(namespaces, mounts, devices, process settings, hooks, stdio).  Free of fixtures: those
live in tests/conftest.py.  Each test builds a config from ``base_config``, runs a shell
script in the container with ``run_sh`` and asserts on what the script printed.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import time

import pytest

_RUNTIME = shlex.split(os.environ.get("PYOCI_TEST_RUNTIME", ""))
UNDER_RUNC = bool(_RUNTIME) and os.path.basename(_RUNTIME[0]) != "pyoci"

USERNS_HOST_ID = 100000
USERNS_SIZE = 65536


def run_sh(pyoci, bundle: str, cid: str, cfg: dict, script: str, *args: str,
           write_config=None, check: bool = True, timeout: float = 60):
    """Run ``sh -c script`` as the container's process (``pyoci run``); the result.

    The container's stdout and stderr are the runner's files: what the script prints is
    ``result.stdout``.  ``write_config`` is conftest's function (a fixture).
    """
    cfg["process"]["args"] = ["sh", "-c", script]
    write_config(bundle, cfg)
    r = pyoci("run", "--bundle", bundle, *args, cid, timeout=timeout)
    if check:
        assert r.returncode == 0, (f"container exited {r.returncode}\n--- stdout\n{r.stdout}"
                                   f"--- stderr\n{r.stderr}")
    return r


def ns_inode(link: str) -> str:
    """``net:[4026531840]`` -> ``4026531840``."""
    return link.rsplit("[", 1)[1].rstrip("]")


def mountinfo(text: str) -> list[dict]:
    """Parse /proc/self/mountinfo text into dicts (mountpoint, root, options, optional...)."""
    out = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 10 or "-" not in fields:
            continue
        sep = fields.index("-")
        out.append({
            "id": fields[0], "parent": fields[1], "root": _unescape(fields[3]),
            "mountpoint": _unescape(fields[4]), "options": set(fields[5].split(",")),
            "optional": fields[6:sep], "fstype": fields[sep + 1], "source": fields[sep + 2],
            "super": set(fields[sep + 3].split(",")), "line": line,
        })
    return out


def _unescape(s: str) -> str:
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n") \
        .replace("\\134", "\\")


def mount_at(mounts: list[dict], mountpoint: str) -> dict:
    """The mount visible at ``mountpoint`` (the last one mounted there)."""
    found = [m for m in mounts if m["mountpoint"] == mountpoint]
    assert found, f"nothing mounted at {mountpoint}:\n" + "\n".join(m["line"] for m in mounts)
    return found[-1]


def section(stdout: str, name: str) -> str:
    """The text a script printed between ``echo '=== name'`` and the next ``===`` line."""
    lines, inside = [], False
    for line in stdout.splitlines():
        if line.startswith("=== "):
            inside = line[4:].strip() == name
            continue
        if inside:
            lines.append(line)
    return "\n".join(lines)


def wait_for(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}", pytrace=False)
        time.sleep(0.02)


@contextlib.contextmanager
def helper_process(*argv: str):
    """A host process the test owns (e.g. ``unshare --net sleep``); killed, by PID, after.

    Yields the Popen; the caller waits for it to have set itself up.
    """
    p = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    try:
        yield p
    finally:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)
        if p.stderr:
            p.stderr.close()


def wait_ns_differs(pid: int, ns: str, timeout: float = 10.0) -> str:
    """Wait until ``pid`` is in its own ``ns`` (unshare has run); return the ns link."""
    mine = os.readlink(f"/proc/self/ns/{ns}")

    def check():
        try:
            link = os.readlink(f"/proc/{pid}/ns/{ns}")
        except OSError:
            return None
        return link if link != mine else None

    return wait_for(check, timeout, f"process {pid} to enter a new {ns} namespace")


@contextlib.contextmanager
def host_mount(*mount_args: str, target: str):
    """``mount ARGS TARGET`` on the host for the test's duration; lazily unmounted after.

    Only ever used on a target inside the test's own temporary directories.
    """
    subprocess.run(["mount", *mount_args, target], check=True, capture_output=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", target], check=False, capture_output=True)


def userns_config(cfg: dict, host_id: int = USERNS_HOST_ID, size: int = USERNS_SIZE) -> dict:
    """Add a user namespace mapping container 0..size-1 to host host_id..."""
    cfg["linux"]["namespaces"].append({"type": "user"})
    cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": host_id, "size": size}]
    cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": host_id, "size": size}]
    return cfg


def chown_bundle_for_userns(bundle: str, host_id: int = USERNS_HOST_ID) -> None:
    """Make the bundle usable by container root mapped to ``host_id``.

    The rootfs is chowned (ids shifted by host_id) and the bundle directory made
    traversable, as runc requires too: container root is an unprivileged uid on the host.
    """
    os.chmod(bundle, 0o755)
    rootfs = os.path.join(bundle, "rootfs")
    for dirpath, dirnames, filenames in os.walk(rootfs):
        for name in [dirpath] + [os.path.join(dirpath, n) for n in dirnames + filenames]:
            st = os.lstat(name)
            os.lchown(name, host_id + st.st_uid, host_id + st.st_gid)
