"""Shared fixtures for pyoci's tests, above all the integration tests that run REAL containers.

Fixtures (an integration test is one that uses ``root``, ``bundle``, ``new_bundle`` or
``pyoci``; it is skipped, with the reason said, when not run as root):

``busybox_rootfs`` (session)
    A busybox rootfs built once from ``/bin/busybox`` (Debian's busybox-static): the binary
    in ``bin/`` and a symlink ``bin/<applet> -> busybox`` for each applet.
``root``
    A fresh, empty state root ``/tmp/pyoci-test-XXXX`` (a str), removed afterwards.
``new_bundle(args=None, config=None)``
    Makes a fresh bundle ``/tmp/pyoci-bundle-XXXX``: ``rootfs/`` a ``cp -a`` copy of
    ``busybox_rootfs`` and ``config.json`` from ``config`` or ``base_config(args)``.
``bundle``
    ``new_bundle()``: a bundle whose container runs ``true``; rewrite its config with
    ``write_config(bundle, cfg)``.
``pyoci(*args, timeout=60, input=None, check=False)``
    Runs ``pyoci --root ROOT *args``, the installed ``pyoci`` next to ``sys.executable``
    (``python -m pyoci`` if there is none; or ``$PYOCI_TEST_RUNTIME --root ROOT *args``:
    ``PYOCI_TEST_RUNTIME=runc`` checks the tests themselves against runc) and
    returns a CompletedProcess with text stdout/stderr. Output goes through temporary
    files, not pipes, so a detached container that keeps the runtime's stdio open
    cannot make the call hang.
    ``pyoci.popen(*args)`` starts one in the background (it is killed at teardown if
    still running); ``pyoci.root`` is the state root.
``cid``
    A unique container id (``pyoci-t-<hex>``), so that cgroups named after it cannot
    collide with another test run on the same machine.
``base_config`` / ``write_config``
    The module functions below, as fixtures (for test directories that cannot import
    this conftest).

Leak check (autouse, for integration tests only). After the test, whether it passed or
failed: containers still in the state root are force-deleted (``pyoci delete --force``),
background ``pyoci.popen`` processes are stopped, and then the test FAILS (an error at
teardown naming what leaked) if anything is left that was not there before it:

* mounts in the test's mount namespace whose /proc/self/mountinfo line mentions "pyoci"
  or "/rootfs";
* entries of the state root;
* processes: the test process's descendants, processes whose command line mentions the
  test's bundle or state root, and processes in another mount namespace whose root is
  the test's bundle rootfs (the container processes);
* cgroup directories under /sys/fs/cgroup (to depth 5) named after a container id the
  test created (or ``cid``, ``cid-*``), or ``*pyoci*`` unless named like another test's
  ``cid`` (sessions running tests at once must not report or remove each other's).

What leaked is then cleaned up so the next test starts clean: leaked processes found
above get SIGKILL (by PID, checked against their start time; nothing else is signalled),
leaked mounts under the test's own directories are lazily unmounted, and leaked, empty
cgroup directories are removed (the cgroup mounts themselves are never touched).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import pytest

BUSYBOX = "/bin/busybox"
CGROUP_ROOT = "/sys/fs/cgroup"
CGROUP_MAXDEPTH = 5
DEFAULT_TIMEOUT = 60.0
# The runtime under test: the installed `pyoci` (the C front door, csrc/pyoci_main.c, which
# execs the Python CLI for all it does not do itself) next to this interpreter, else
# `python -m pyoci`; PYOCI_TEST_RUNTIME="runc" runs the same tests against runc.
INSTALLED = os.path.join(os.path.dirname(sys.executable), "pyoci")
PYTHON_RUNTIME = [sys.executable, "-m", "pyoci"]
RUNTIME = shlex.split(os.environ.get("PYOCI_TEST_RUNTIME", "")) or (
    [INSTALLED] if os.access(INSTALLED, os.X_OK) else PYTHON_RUNTIME)
# How long teardown waits for killed processes, mounts and cgroups to go away.
SETTLE_SECONDS = 5.0
INTEGRATION_FIXTURES = ("root", "bundle", "new_bundle", "pyoci", "cid")
# Any test directory made by this conftest, ours or another session's.
TEST_PATH_RE = re.compile(r"/pyoci-(?:test|bundle|rootfs)-[A-Za-z0-9_]+")
# A container id made by the ``cid`` fixture, or a cgroup parent made by ``cgparent``
# (this test's or another's).
CID_RE = re.compile(r"pyoci-(?:t|test)-[0-9a-f]{8}")


# ---------------------------------------------------------------------------------------
# config.json


def base_config(args: list[str] | None = None) -> dict:
    """The shape of runc's default spec (``runc spec``) for a busybox bundle.

    terminal is false; namespaces pid, network, ipc, uts, mount (no cgroup namespace);
    mounts /proc, /dev (tmpfs), /dev/pts, /dev/shm, /dev/mqueue and a read-only /sys.
    """
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    return {
        "ociVersion": "1.0.2-dev",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": list(args) if args is not None else ["true"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": list(caps),
                "effective": list(caps),
                "permitted": list(caps),
                "ambient": list(caps),
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "pyoci",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                            "gid=5"],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"],
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"},
                {"type": "network"},
                {"type": "ipc"},
                {"type": "uts"},
                {"type": "mount"},
            ],
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


def write_config(bundle: str | os.PathLike, cfg: dict) -> str:
    """Write ``cfg`` as ``BUNDLE/config.json``; return the file's path."""
    path = os.path.join(os.fspath(bundle), "config.json")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    return path


@pytest.fixture(name="base_config")
def _base_config_fixture():
    return base_config


@pytest.fixture(name="write_config")
def _write_config_fixture():
    return write_config


# ---------------------------------------------------------------------------------------
# filesystem helpers


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("integration test: runs real containers, which needs root")


def _build_busybox_rootfs(rootfs: str) -> None:
    applets = subprocess.run([BUSYBOX, "--list"], check=True, capture_output=True,
                             text=True).stdout.split()
    for d in ("bin", "dev", "proc", "sys", "tmp", "etc", "root", "run", "var", "home"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    os.chmod(os.path.join(rootfs, "tmp"), 0o1777)
    shutil.copy2(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
    for applet in applets:
        if applet != "busybox" and "/" not in applet:
            os.symlink("busybox", os.path.join(rootfs, "bin", applet))
    os.symlink("bin", os.path.join(rootfs, "sbin"))
    os.makedirs(os.path.join(rootfs, "usr"))
    os.symlink("../bin", os.path.join(rootfs, "usr", "bin"))
    os.symlink("../bin", os.path.join(rootfs, "usr", "sbin"))
    with open(os.path.join(rootfs, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    with open(os.path.join(rootfs, "etc", "group"), "w") as f:
        f.write("root:x:0:\nnogroup:x:65534:\n")


def _remove_tree(path: str) -> list[str]:
    """``rm -rf`` that never descends into another filesystem (a leaked mount).

    Returns the paths it had to leave behind because something is mounted there.
    """
    left: list[str] = []
    if not os.path.lexists(path):
        return left
    if os.path.islink(path) or not os.path.isdir(path):
        os.unlink(path)
        return left
    top_dev = os.lstat(path).st_dev

    def walk(d: str) -> bool:
        clean = True
        try:
            entries = list(os.scandir(d))
        except OSError:
            return False
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    if e.stat(follow_symlinks=False).st_dev != top_dev or os.path.ismount(e.path):
                        left.append(e.path)
                        clean = False
                    elif walk(e.path):
                        os.rmdir(e.path)
                    else:
                        clean = False
                else:
                    os.unlink(e.path)
            except FileNotFoundError:
                pass
            except OSError:
                clean = False
        return clean

    if walk(path):
        try:
            os.rmdir(path)
        except OSError:
            left.append(path)
    return left


# ---------------------------------------------------------------------------------------
# what the leak check looks at


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    starttime: int
    state: str
    cmdline: str


def _processes() -> dict[int, Proc]:
    procs: dict[int, Proc] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        # The command name, in parentheses, may hold spaces: split after its last ")".
        rest = stat[stat.rindex(")") + 2:].split()
        procs[pid] = Proc(pid, int(rest[1]), int(rest[19]), rest[0], cmdline)
    return procs


def _proc_alive(p: Proc) -> bool:
    try:
        with open(f"/proc/{p.pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
    except OSError:
        return False
    rest = stat[stat.rindex(")") + 2:].split()
    return int(rest[19]) == p.starttime and rest[0] not in ("Z", "X")


def _mnt_ns(pid: int | str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def _root_mount_source(pid: int) -> str | None:
    """The path (within its filesystem) mounted as the process's "/" (the container rootfs)."""
    try:
        with open(f"/proc/{pid}/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    source = None
    for line in lines:
        fields = line.split()
        if len(fields) > 4 and fields[4] == "/":
            source = fields[3].replace("\\040", " ")  # the last one mounted on / wins
    return source


def _mounts() -> dict[tuple[str, str], str]:
    """Mountinfo lines mentioning pyoci or /rootfs, keyed by (mount id, mount point)."""
    with open("/proc/self/mountinfo") as f:
        lines = f.read().splitlines()
    out = {}
    for line in lines:
        if "pyoci" in line or "/rootfs" in line:
            fields = line.split()
            out[(fields[0], fields[4])] = line
    return out


def _cgroup_dirs() -> set[str]:
    found: set[str] = set()

    def walk(d: str, depth: int) -> None:
        if depth > CGROUP_MAXDEPTH:
            return
        try:
            entries = list(os.scandir(d))
        except OSError:
            return
        for e in entries:
            if e.is_dir(follow_symlinks=False):
                found.add(e.path)
                walk(e.path, depth + 1)

    walk(CGROUP_ROOT, 1)
    return found


def _cgroup_has_procs(path: str) -> bool:
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            return bool(f.read().strip())
    except OSError:
        return False


@dataclass
class Snapshot:
    procs: set[tuple[int, int]]
    mounts: dict[tuple[str, str], str]
    cgroups: set[str]

    @classmethod
    def take(cls) -> Snapshot:
        return cls({(p.pid, p.starttime) for p in _processes().values()}, _mounts(),
                   _cgroup_dirs())


# ---------------------------------------------------------------------------------------
# per-test context: what the test made, cleanup and the leak check


@dataclass
class LeakContext:
    root: str | None = None
    bundles: list[str] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    popens: list[subprocess.Popen] = field(default_factory=list)
    before: Snapshot | None = None

    # --- attribution ---

    def _paths(self) -> list[str]:
        return ([self.root] if self.root else []) + self.bundles

    def _mentions_ours(self, text: str) -> bool:
        return any(p in text for p in self._paths())

    def _mentions_others(self, text: str) -> bool:
        """Mentions another test's directory (another session running tests at once)."""
        ours = {os.path.basename(p) for p in self._paths()}
        return any(m.group(0)[1:] not in ours for m in TEST_PATH_RE.finditer(text))

    def _our_new_procs(self) -> list[Proc]:
        assert self.before is not None
        me = os.getpid()
        my_ns = _mnt_ns("self")
        procs = _processes()
        bundle_names = [os.path.basename(b) for b in self.bundles]
        found = []
        for p in procs.values():
            if p.pid == me or (p.pid, p.starttime) in self.before.procs or p.state in "ZX":
                continue
            ours = self._mentions_ours(p.cmdline)
            if not ours:
                # a descendant of the test process?
                q, seen = p, set()
                while q.ppid > 1 and q.ppid not in seen:
                    if q.ppid == me:
                        ours = True
                        break
                    seen.add(q.ppid)
                    q = procs.get(q.ppid)
                    if q is None:
                        break
            if not ours and bundle_names:
                # a container process: another mount namespace, rooted in our bundle
                ns = _mnt_ns(p.pid)
                if ns is not None and ns != my_ns:
                    src = _root_mount_source(p.pid)
                    if src and any(f"/{n}/" in src + "/" for n in bundle_names):
                        ours = True
            if ours:
                found.append(p)
        return found

    def _new_mounts(self) -> dict[tuple[str, str], str]:
        assert self.before is not None
        return {k: v for k, v in _mounts().items()
                if k not in self.before.mounts and not self._mentions_others(v)}

    def _new_cgroups(self) -> list[str]:
        assert self.before is not None
        out = []
        for d in _cgroup_dirs() - self.before.cgroups:
            name = os.path.basename(d)
            if self._owns_cgroup_name(name):
                out.append(d)
        return sorted(out)

    def _owns_cgroup_name(self, name: str) -> bool:
        """Named after one of our container ids (``cid``, ``cid-2``, ...), or mentioning
        pyoci without being another test's id: another session may be running tests at
        the same time, and its containers' cgroups are none of ours to report or remove."""
        if name in self.ids or any(name.startswith(i + "-") for i in self.ids):
            return True
        return "pyoci" in name and not CID_RE.match(name)

    def _state_entries(self) -> list[str]:
        if not self.root or not os.path.isdir(self.root):
            return []
        return sorted(e for e in os.listdir(self.root) if not e.startswith("."))

    # --- cleanup ---

    def _reap_children(self) -> None:
        """Reap zombies that are the test process's own children (by PID, never -1)."""
        me = os.getpid()
        for p in _processes().values():
            if p.ppid == me and p.state == "Z":
                try:
                    os.waitpid(p.pid, os.WNOHANG)
                except ChildProcessError:
                    pass

    def _force_delete(self) -> list[str]:
        problems = []
        for cid in self._state_entries():
            if not os.path.isdir(os.path.join(self.root, cid)):
                continue
            cmd = [*RUNTIME, "--root", self.root, "delete", "--force", cid]
            try:
                r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                                   text=True, timeout=30)
                if r.returncode != 0:
                    problems.append(f"`pyoci delete --force {cid}` exited {r.returncode}: "
                                    f"{(r.stderr or r.stdout).strip()}")
            except subprocess.TimeoutExpired:
                problems.append(f"`pyoci delete --force {cid}` timed out")
        return problems

    def _stop_popens(self) -> None:
        deadline = time.monotonic() + SETTLE_SECONDS
        for p in self.popens:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                try:
                    p.wait(timeout=SETTLE_SECONDS)
                except subprocess.TimeoutExpired:
                    pass

    def finish(self) -> str | None:
        """Clean up after the test; return a report of what leaked, or None."""
        if self.before is None:
            return None
        problems = self._force_delete() if self.root else []
        self._stop_popens()

        # Give the kernel and the runtime a moment: killed processes exit, cgroups empty.
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            self._reap_children()
            procs, mounts = self._our_new_procs(), self._new_mounts()
            cgroups, entries = self._new_cgroups(), self._state_entries()
            if not (procs or mounts or cgroups or entries) or time.monotonic() > deadline:
                break
            time.sleep(0.1)

        report = list(problems)
        if entries:
            report.append(f"state root {self.root} still holds: {', '.join(entries)}")
        for p in procs:
            report.append(f"process {p.pid} (ppid {p.ppid}, state {p.state}): {p.cmdline!r}")
        for line in mounts.values():
            report.append(f"mount: {line}")
        for d in cgroups:
            report.append(f"cgroup: {d}")

        # Clean what leaked, so that the next test starts clean.
        for p in procs:
            if _proc_alive(p):
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for (_, mountpoint), _line in sorted(mounts.items(), key=lambda kv: -len(kv[0][1])):
            if any(mountpoint == d or mountpoint.startswith(d + "/") for d in self._paths()):
                subprocess.run(["umount", "-l", mountpoint], capture_output=True)
        if procs:
            end = time.monotonic() + SETTLE_SECONDS
            while any(_proc_alive(p) for p in procs) and time.monotonic() < end:
                self._reap_children()
                time.sleep(0.05)
        for d in sorted(cgroups, key=len, reverse=True):
            if not _cgroup_has_procs(d):
                try:
                    os.rmdir(d)
                except OSError:
                    pass

        if not report:
            return None
        return "resources leaked by this test (now cleaned up):\n  " + "\n  ".join(report)

    def remove_dirs(self) -> None:
        for d in self.bundles + ([self.root] if self.root else []):
            left = _remove_tree(d)
            if left:
                print(f"conftest: left behind (mounted?): {left}", file=sys.stderr)


@pytest.fixture(autouse=True)
def _leak_check(request):
    """Snapshot before an integration test; afterwards clean up, then fail on leaks."""
    ctx = LeakContext()
    if not any(name in request.fixturenames for name in INTEGRATION_FIXTURES):
        yield ctx
        return
    if os.geteuid() == 0:
        ctx.before = Snapshot.take()
    try:
        yield ctx
    finally:
        try:
            report = ctx.finish()
        finally:
            ctx.remove_dirs()
    if report:
        pytest.fail(report, pytrace=False)


# ---------------------------------------------------------------------------------------
# integration fixtures


@pytest.fixture(scope="session")
def busybox_rootfs():
    """A busybox rootfs built once per session; tests copy it, never use it directly."""
    _require_root()
    if not os.path.exists(BUSYBOX):
        pytest.skip(f"{BUSYBOX} not found: apt-get install busybox-static (bash .ci/setup)")
    d = tempfile.mkdtemp(prefix="pyoci-rootfs-", dir="/tmp")
    rootfs = os.path.join(d, "rootfs")
    os.mkdir(rootfs)
    _build_busybox_rootfs(rootfs)
    yield rootfs
    _remove_tree(d)


@pytest.fixture
def root(_leak_check) -> str:
    """A fresh, empty state root /tmp/pyoci-test-XXXX (removed by the leak check)."""
    _require_root()
    _leak_check.root = tempfile.mkdtemp(prefix="pyoci-test-", dir="/tmp")
    return _leak_check.root


@pytest.fixture
def new_bundle(_leak_check, busybox_rootfs):
    """Factory: ``new_bundle(args=None, config=None)`` -> path of a fresh bundle dir."""
    _require_root()

    def make(args: list[str] | None = None, config: dict | None = None) -> str:
        b = tempfile.mkdtemp(prefix="pyoci-bundle-", dir="/tmp")
        _leak_check.bundles.append(b)
        subprocess.run(["cp", "-a", busybox_rootfs, os.path.join(b, "rootfs")], check=True)
        write_config(b, config if config is not None else base_config(args))
        return b

    return make


@pytest.fixture
def bundle(new_bundle) -> str:
    """A fresh bundle (busybox rootfs copy + base_config(["true"])); see write_config."""
    return new_bundle()


@pytest.fixture
def cid(_leak_check) -> str:
    c = f"pyoci-t-{secrets.token_hex(4)}"
    _leak_check.ids.add(c)  # also when the test creates it through the Python API
    return c


class PyociRunner:
    """Runs the pyoci CLI (``pyoci --root ROOT ...``, see RUNTIME) for one test."""

    def __init__(self, root: str, ctx: LeakContext) -> None:
        self.root = root
        self._ctx = ctx

    def command(self, *args) -> list[str]:
        args = [os.fspath(a) if isinstance(a, os.PathLike) else str(a) for a in args]
        if args and args[0] in ("create", "run") and len(args) > 1:
            self._ctx.ids.add(args[-1])  # the container id comes last
        return [*RUNTIME, "--root", self.root, *args]

    def __call__(self, *args, timeout: float = DEFAULT_TIMEOUT, input: str | None = None,
                 check: bool = False, env: dict | None = None,
                 cwd: str | None = None) -> subprocess.CompletedProcess:
        cmd = self.command(*args)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.run(
                    cmd,
                    input=input.encode() if input is not None else None,
                    stdin=subprocess.DEVNULL if input is None else None,
                    stdout=out, stderr=err, timeout=timeout, env=env, cwd=cwd,
                )
                rc = proc.returncode
            except subprocess.TimeoutExpired:
                rc = None
            out.seek(0)
            err.seek(0)
            stdout = out.read().decode(errors="replace")
            stderr = err.read().decode(errors="replace")
        if rc is None:
            pytest.fail(f"timed out after {timeout}s: {' '.join(cmd)}\n"
                        f"--- stdout\n{stdout}--- stderr\n{stderr}", pytrace=False)
        result = subprocess.CompletedProcess(cmd, rc, stdout, stderr)
        if check and rc != 0:
            raise AssertionError(f"exit {rc}: {' '.join(cmd)}\n"
                                 f"--- stdout\n{stdout}--- stderr\n{stderr}")
        return result

    def popen(self, *args, **kwargs) -> subprocess.Popen:
        """Start pyoci in the background (stdin /dev/null unless given); killed at teardown."""
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.Popen(self.command(*args), **kwargs)
        self._ctx.popens.append(p)
        return p


@pytest.fixture
def pyoci(root, _leak_check) -> PyociRunner:
    return PyociRunner(root, _leak_check)
