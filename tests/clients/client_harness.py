"""The machinery behind tests/clients/conftest.py (see its docstring): the runtime
wrapper, images, podman and containerd drivers, pty sessions and leak checks."""


from __future__ import annotations

import hashlib
import io
import json
import os
import pty
import re
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time

import pytest


def _default_runtime() -> str:
    """.venv/bin/pyoci; or the suite-wide switch PYOCI_TEST_RUNTIME (e.g. "runc")."""
    other = os.environ.get("PYOCI_TEST_RUNTIME", "").split()
    if len(other) == 1 and shutil.which(other[0]):
        return shutil.which(other[0])
    beside = os.path.join(os.path.dirname(sys.executable), "pyoci")
    if os.access(beside, os.X_OK):
        return beside
    return shutil.which("pyoci") or beside


RUNTIME = os.path.abspath(os.environ.get("PYOCI_CLIENT_RUNTIME") or _default_runtime())
IS_PYOCI = "runc" not in os.path.basename(RUNTIME) and "crun" not in os.path.basename(RUNTIME)
IMAGE = "localhost/pyoci-busybox:latest"
CTR_IMAGE = "docker.io/library/pyoci-busybox:latest"
CTR_NS = "clients"
CMD_TIMEOUT = 60.0


def xfail_pyoci(reason: str):
    """Expected to fail with pyoci only while a feature of another issue is missing."""
    return pytest.mark.xfail(IS_PYOCI, reason=reason, strict=False)


# ---------------------------------------------------------------------------------------
# helpers


def run(cmd: list[str], *, env: dict | None = None, timeout: float = CMD_TIMEOUT,
        input: str | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """Run a command with output through files (a detached process may keep pipes open)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            p = subprocess.run(cmd, env=env, stdout=out, stderr=err, timeout=timeout,
                               input=input.encode() if input is not None else None,
                               stdin=subprocess.DEVNULL if input is None else None)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            rc = None
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    if rc is None:
        pytest.fail(f"timed out after {timeout}s: {' '.join(cmd)}\n--- stdout\n{stdout}"
                    f"--- stderr\n{stderr}", pytrace=False)
    res = subprocess.CompletedProcess(cmd, rc, stdout, stderr)
    if check and rc != 0:
        raise AssertionError(f"exit {rc}: {' '.join(cmd)}\n--- stdout\n{stdout}"
                             f"--- stderr\n{stderr}")
    return res


class PtySession:
    """A command whose stdin/stdout/stderr are the slave of a fresh pty; we hold the master."""

    def __init__(self, cmd: list[str], env: dict | None = None) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(cmd, env=env, stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True, close_fds=True)
        os.close(slave)
        self.buf = b""

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def expect(self, pattern: str, timeout: float = 30.0) -> re.Match:
        rx = re.compile(pattern.encode())
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.buf)
            if m:
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"pty: {pattern!r} not seen in {timeout}s; got "
                                     f"{self.buf.decode(errors='replace')!r}")
            r, _, _ = select.select([self.master], [], [], min(left, 0.5))
            if r:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # EIO: the slave side is closed
                    chunk = b""
                if not chunk:
                    if self.proc.poll() is not None:
                        m = rx.search(self.buf)
                        if m:
                            return m
                        raise AssertionError(
                            f"pty: {pattern!r} not seen; exited {self.proc.returncode}, got "
                            f"{self.buf.decode(errors='replace')!r}")
                    time.sleep(0.05)
                self.buf += chunk

    def drain(self) -> None:
        while True:
            r, _, _ = select.select([self.master], [], [], 0.1)
            if not r:
                return
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                return
            if not chunk:
                return
            self.buf += chunk

    def wait(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.drain()
            time.sleep(0.05)
        self.drain()
        if self.proc.poll() is None:
            raise AssertionError(f"pty: command still running after {timeout}s; got "
                                 f"{self.buf.decode(errors='replace')!r}")
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        try:
            os.close(self.master)
        except OSError:
            pass


def processes_mentioning(text: str) -> list[int]:
    pids = []
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{name}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state not in "ZX":
            pids.append(int(name))
    return pids


def kill_pids(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def mounts_under(path: str) -> list[str]:
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == path or mp.startswith(path + "/"):
                out.append(mp)
    return out


def unmount_under(path: str) -> None:
    for mp in sorted(mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", "-l", mp], capture_output=True)


def cgroup_dirs(parent: str) -> list[str]:
    """Every directory at or below /<parent> in every cgroup hierarchy, deepest first."""
    found = []
    for hier in sorted(os.listdir("/sys/fs/cgroup")):
        top = os.path.join("/sys/fs/cgroup", hier, parent)
        if not os.path.isdir(top):
            continue
        for dirpath, _dirs, _files in os.walk(top):
            found.append(dirpath)
    return sorted(found, key=lambda p: p.count("/"), reverse=True)


def cgroup_processes(parent: str) -> list[int]:
    pids: set[int] = set()
    for d in cgroup_dirs(parent):
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                pids.update(int(x) for x in f.read().split())
        except OSError:
            pass
    return sorted(pids)


def remove_cgroups(parent: str) -> list[str]:
    """rmdir /<parent> and below in every hierarchy (only our own directory); what is left."""
    left = []
    for d in cgroup_dirs(parent):
        for _ in range(50):
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)
        else:
            left.append(d)
    return left


def wait_until(pred, timeout: float = 10.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


# ---------------------------------------------------------------------------------------
# the session: one private directory, the runtime wrapper, the images


class Base:
    def __init__(self, path: str) -> None:
        self.path = path
        self.runtime_root = os.path.join(path, "runtime-root")
        self.calls_log = os.path.join(path, "calls.log")
        self.wrapper = os.path.join(path, "runtime")
        self.cgroup_parent = f"clients-test-{secrets.token_hex(4)}"
        self.rootfs_tar = os.path.join(path, "busybox-rootfs.tar")
        self.oci_archive = os.path.join(path, "busybox-oci.tar")

    def runtime_entries(self) -> list[str]:
        """Containers the runtime still holds state for: directories under the runtime
        root, or one level further down (containerd's shim adds ``/<namespace>``)."""
        found = []
        try:
            top = sorted(e for e in os.listdir(self.runtime_root) if not e.startswith("."))
        except FileNotFoundError:
            return []
        for name in top:
            path = os.path.join(self.runtime_root, name)
            if not os.path.isdir(path) or os.path.exists(os.path.join(path, "state.json")):
                found.append(name)
                continue
            inner = [e for e in os.listdir(path) if not e.startswith(".")]
            found += [f"{name}/{e}" for e in sorted(inner)]
        return found

    def write_owner(self) -> None:
        """Who made this base: a later run removes it once that process is gone."""
        me = os.getpid()
        with open(os.path.join(self.path, OWNER_FILE), "w") as f:
            f.write(f"{me} {_proc_starttime(me)} {self.cgroup_parent}\n")

    def calls(self) -> list[str]:
        try:
            with open(self.calls_log) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []


BASE_PREFIX = "pyoci-test-clients-"
OWNER_FILE = "owner"


def remove_base(base: Base) -> str | None:
    """Stop what is left of one base (its processes, mounts, cgroups), then remove it;
    returns why it had to be left behind, or None."""
    kill_pids(processes_mentioning(base.path))
    kill_pids(cgroup_processes(base.cgroup_parent))
    wait_until(lambda: not cgroup_processes(base.cgroup_parent), 5)
    unmount_under(base.path)
    remove_cgroups(base.cgroup_parent)
    if mounts_under(base.path):
        return f"still mounted: {mounts_under(base.path)}"
    shutil.rmtree(base.path, ignore_errors=True)
    return "could not be removed" if os.path.exists(base.path) else None


def _proc_starttime(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def remove_stale_bases() -> None:
    """Remove the bases of earlier runs whose pytest is gone (killed before teardown)."""
    for name in os.listdir("/tmp"):
        path = os.path.join("/tmp", name)
        if not name.startswith(BASE_PREFIX) or not os.path.isdir(path):
            continue
        try:
            with open(os.path.join(path, OWNER_FILE)) as f:
                pid, start, parent = f.read().split()
        except (OSError, ValueError):
            continue  # not ours to judge
        if _proc_starttime(int(pid)) == int(start):
            continue  # its run is still going
        base = Base(path)
        base.cgroup_parent = parent
        remove_base(base)


def write_wrapper(base: Base) -> None:
    with open(base.wrapper, "w") as f:
        f.write("#!/bin/sh\n"
                f"printf '%s\\n' \"$*\" >> '{base.calls_log}'\n"
                f"exec '{RUNTIME}' --root '{base.runtime_root}' \"$@\"\n")
    os.chmod(base.wrapper, 0o755)


def tar_rootfs(rootfs: str, dest: str) -> None:
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirs, files in os.walk(rootfs):
            dirs.sort()
            for name in sorted(dirs + files):
                full = os.path.join(dirpath, name)
                info = tar.gettarinfo(full, os.path.relpath(full, rootfs))
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                info.mtime = 0
                if info.isreg():
                    with open(full, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)


def write_oci_archive(layer_tar: str, dest: str, name: str) -> None:
    """An OCI image layout (one uncompressed layer), as a tar for ``ctr images import``."""
    with open(layer_tar, "rb") as f:
        layer = f.read()
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created_by": "pyoci tests/clients"}],
    }, sort_keys=True).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": len(layer)}],
    }, sort_keys=True).encode()
    manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    index = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": len(manifest),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {"io.containerd.image.name": name,
                            "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]},
        }],
    }, sort_keys=True).encode()

    def add(tar: tarfile.TarFile, path: str, data: bytes) -> None:
        info = tarfile.TarInfo(path)
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))

    with tarfile.open(dest, "w") as tar:
        add(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add(tar, "index.json", index)
        for digest, data in ((layer_digest, layer), (config_digest, config),
                             (manifest_digest, manifest)):
            add(tar, "blobs/sha256/" + digest.split(":", 1)[1], data)


def leak_report(base: Base, what: str, client_procs: str) -> list[str]:
    """Runtime state, container processes and client helpers (conmon, shims) that outlive
    a test, after the cleanup; ``client_procs`` is text in those helpers' command lines."""
    problems = []
    wait_until(lambda: not processes_mentioning(client_procs), 10)
    helpers = processes_mentioning(client_procs)
    if helpers:
        problems.append(f"{what} helper processes still running: {helpers}")
        kill_pids(helpers)
    if not wait_until(lambda: not base.runtime_entries(), 5):
        problems.append(f"runtime root still holds: {', '.join(base.runtime_entries())}")
    wait_until(lambda: not cgroup_processes(base.cgroup_parent), 5)
    procs = cgroup_processes(base.cgroup_parent)
    if procs:
        problems.append(f"processes left in the containers' cgroups: {procs}")
        kill_pids(procs)
    if problems:
        for entry in base.runtime_entries():
            ns, _, cid = entry.rpartition("/")
            run([base.wrapper, "--root", os.path.join(base.runtime_root, ns), "delete",
                 "--force", cid])
    return [f"{what}: {p}" for p in problems]


# ---------------------------------------------------------------------------------------
# podman


class Podman:
    """``podman`` with the private configuration; ``podman(*args)`` -> CompletedProcess."""

    def __init__(self, base: Base) -> None:
        self.base = base
        self.dir = os.path.join(base.path, "podman")
        self.conf = os.path.join(self.dir, "containers.conf")
        self.storage_conf = os.path.join(self.dir, "storage.conf")
        self.events_log = os.path.join(self.dir, "events.log")
        self.env = dict(os.environ, CONTAINERS_CONF=self.conf,
                        CONTAINERS_STORAGE_CONF=self.storage_conf)
        self.env.pop("CONTAINER_HOST", None)
        self.env.pop("CONTAINER_CONNECTION", None)

    def write_config(self) -> None:
        d = self.dir
        os.makedirs(os.path.join(d, "net"))
        nproc = min(4096, _hard_limit("RLIMIT_NPROC"))
        with open(self.conf, "w") as f:
            f.write(f"""\
[containers]
netns = "none"
cgroupns = "host"
default_ulimits = ["nofile=1024:1024", "nproc={nproc}:{nproc}"]
log_driver = "k8s-file"

[network]
network_config_dir = "{d}/net"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{self.events_log}"
runtime = "pyoci"
runtime_supports_json = ["crun", "runc", "kata", "runsc", "krun", "pyoci"]
tmp_dir = "{d}/tmp"
static_dir = "{d}/storage/libpod"
volume_path = "{d}/storage/volumes"
lock_type = "file"

[engine.runtimes]
pyoci = ["{self.base.wrapper}"]
""")
        with open(self.storage_conf, "w") as f:
            f.write(f"""\
[storage]
driver = "vfs"
graphroot = "{d}/storage"
runroot = "{d}/run"
""")

    def __call__(self, *args: str, timeout: float = CMD_TIMEOUT, input: str | None = None,
                 check: bool = False) -> subprocess.CompletedProcess:
        return run(self.cmd(*args), env=self.env, timeout=timeout, input=input, check=check)

    def cmd(self, *args: str) -> list[str]:
        args = list(args)
        if args and args[0] in ("run", "create"):
            args.insert(1, f"--cgroup-parent=/{self.base.cgroup_parent}")
        return ["podman", *args]

    def pty(self, *args: str) -> PtySession:
        return PtySession(self.cmd(*args), env=self.env)

    def container_ids(self) -> list[str]:
        r = self("ps", "-a", "-q", "--no-trunc")
        return r.stdout.split()

    def cleanup(self) -> None:
        if self.container_ids():
            self("rm", "-a", "-f", "-t", "0", timeout=120)


def _hard_limit(name: str) -> int:
    import resource

    return resource.getrlimit(getattr(resource, name))[1]


# ---------------------------------------------------------------------------------------
# containerd


class Containerd:
    """A private containerd; ``ctr(*args)`` runs ctr against it in namespace ``clients``."""

    def __init__(self, base: Base) -> None:
        self.base = base
        self.dir = os.path.join(base.path, "containerd")
        self.address = os.path.join(self.dir, "c.sock")
        self.config = os.path.join(self.dir, "config.toml")
        self.log = os.path.join(self.dir, "containerd.log")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        d = self.dir
        os.makedirs(d)
        with open(self.config, "w") as f:
            f.write(f"""\
version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.opt",
                    "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = "{self.address}"

[ttrpc]
  address = "{self.address}.ttrpc"

[debug]
  address = "{d}/debug.sock"
  level = "info"

[metrics]
  address = ""
""")
        logf = open(self.log, "wb")
        self.proc = subprocess.Popen(["containerd", "--config", self.config],
                                     stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                     start_new_session=True)
        logf.close()
        ok = wait_until(lambda: self.proc.poll() is not None
                        or (os.path.exists(self.address)
                            and run(["ctr", "--address", self.address, "version"],
                                    timeout=10).returncode == 0), 30, 0.2)
        if not ok or self.proc.poll() is not None:
            self.stop()
            with open(self.log) as f:
                pytest.fail(f"containerd did not start:\n{f.read()[-3000:]}", pytrace=False)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.proc = None

    def cmd(self, *args: str) -> list[str]:
        args = list(args)
        if args and args[0] == "run":
            # the runtime under test, its private root, our cgroup parent
            cid = args[args.index(CTR_IMAGE) + 1]
            args[1:1] = [f"--runc-binary={self.base.wrapper}",
                         f"--runc-root={self.base.runtime_root}",
                         f"--cgroup=/{self.base.cgroup_parent}/{cid}",
                         f"--fifo-dir={self.dir}/fifo"]
        elif args[:2] == ["tasks", "exec"]:
            args[2:2] = [f"--fifo-dir={self.dir}/fifo"]
        return ["ctr", "--address", self.address, "--namespace", CTR_NS, *args]

    def __call__(self, *args: str, timeout: float = CMD_TIMEOUT, input: str | None = None,
                 check: bool = False) -> subprocess.CompletedProcess:
        return run(self.cmd(*args), timeout=timeout, input=input, check=check)

    def pty(self, *args: str) -> PtySession:
        return PtySession(self.cmd(*args))

    def popen(self, *args: str, **kw) -> subprocess.Popen:
        kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.Popen(self.cmd(*args), **kw)

    def containers(self) -> list[str]:
        return self("containers", "list", "-q").stdout.split()

    def cleanup(self) -> None:
        for t in self("tasks", "list", "-q").stdout.split():
            self("tasks", "kill", "-s", "SIGKILL", t)
            self("tasks", "delete", "-f", t, timeout=30)
        for c in self.containers():
            self("containers", "delete", c, timeout=30)


