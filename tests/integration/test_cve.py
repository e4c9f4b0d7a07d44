"""The regression suite: one test per published container escape, reproduced against
pyoci, asserting that it fails.

Races that need a second, malicious container sharing mounts with this one are
reproduced deterministically with a createContainer hook: it runs in the container's
mount namespace after the mounts and before pivot_root, which is exactly when the racing
container's swap would land.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest
from security_helpers import nothing_left, ok, one_line_error, run_script, status

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORE_PATTERN = "/proc/sys/kernel/core_pattern"
# The published exploits aim at core_pattern or sysrq-trigger (global: a host escape or
# crash).  A shared test machine must survive a regression, so these tests aim at the
# container's own UTS hostname, a procfs file that is just as writable and harmless.
TARGET = "/proc/sys/kernel/hostname"


def _hook(script: str) -> dict:
    return {"path": "/bin/sh", "args": ["sh", "-c", script]}


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _state_pid(pyoci, cid: str) -> int:
    return json.loads(ok(pyoci("state", cid)))["pid"]


# --- CVE-2019-5736: overwriting the host runtime through /proc/self/exe ---------------

ATTACKER = r"""
log=/out/log
end=$(( $(date +%s) + 25 ))
echo start >> $log
while [ $(date +%s) -lt $end ] && [ ! -e /out/stop ]; do
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    [ "$p" = 1 ] && continue
    [ "$p" = "$$" ] && continue
    exe=$(readlink $d/exe 2>/dev/null) || { [ -e $d ] && echo "denied $p" >> $log; continue; }
    case "$exe" in */busybox|"") continue;; esac
    echo "target $p $exe" >> $log
    if command exec 3< $d/exe 2>/dev/null; then  # `command`: a failed open is not fatal
      echo "opened $p $exe" >> $log
      i=0
      while [ $i -lt 100 ]; do
        if (echo PWNED > /proc/self/fd/3) 2>/dev/null; then echo "WROTE $exe" >> $log; break; fi
        i=$((i+1)); sleep 0.1
      done
      exec 3<&-
    fi
  done
done
echo done >> $log
"""


# The same attack for a short-lived target: scan the next PIDs with shell builtins only
# (no fork per probe), so that a process that lives milliseconds is still caught.
ATTACKER_FAST = r"""
log=/out/log
echo start >> $log
attack() {
  exe=$(readlink /proc/self/fd/3)
  case "$exe" in */busybox|"") return;; esac
  echo "opened $1 $exe" >> $log
  i=0
  while [ $i -lt 100 ]; do
    if (echo PWNED > /proc/self/fd/3) 2>/dev/null; then echo "WROTE $exe" >> $log; break; fi
    i=$((i+1)); sleep 0.1
  done
}
while [ ! -e /out/stop ]; do
  base=$(sh -c 'echo $$')
  n=0
  while [ $n -lt 300 ]; do
    p=$((base + 1 + n % 30))
    if command exec 3< /proc/$p/exe 2>/dev/null; then attack $p; exec 3<&-; fi
    n=$((n+1))
  done
done
echo done >> $log
"""


def _install_runtime_libs(rootfs: str, binary: str) -> None:
    """Give the image the shared libraries (and loader) the host's interpreter needs, as a
    glibc image has: otherwise a host runtime exec'd in the container could not even
    start, and the exploit would fail for a reason that protects nobody."""
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    for line in out.splitlines():
        path = line.split("=>")[-1].split("(")[0].strip()
        if path.startswith("/"):
            dest = os.path.join(rootfs, path.lstrip("/"))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copy2(os.path.realpath(path), dest)


def test_cve_2019_5736_runtime_binary_not_overwritable(pyoci, new_bundle, cid, base_config,
                                                       write_config):
    """An attacker in a container whose PID namespace a new container joins watches for
    the runtime in /proc and tries to rewrite its binary through /proc/<pid>/exe, while
    the new container's entrypoint is ``#!/proc/self/exe``.  The runtime runs from a
    private copy of the interpreter so that nothing else keeps it busy (ETXTBSY)."""
    attacker, victim = new_bundle(), new_bundle()
    out_dir = os.path.join(attacker, "out")
    os.mkdir(out_dir)
    cfg = base_config(["sh", "-c", ATTACKER])
    cfg["root"]["readonly"] = False
    cfg["mounts"].append({"destination": "/out", "type": "bind", "source": out_dir,
                          "options": ["rbind"]})
    write_config(attacker, cfg)
    ok(pyoci("create", "--bundle", attacker, cid + "-a"))
    ok(pyoci("start", cid + "-a"))
    pid_a = _state_pid(pyoci, cid + "-a")

    host_python = os.path.join(victim, "host-python")
    shutil.copy2(os.path.realpath(sys.executable), host_python)
    before = _sha256(host_python)
    _install_runtime_libs(os.path.join(victim, "rootfs"), host_python)
    evil = os.path.join(victim, "rootfs", "evil")
    with open(evil, "w") as f:
        f.write("#!/proc/self/exe\n")
    os.chmod(evil, 0o755)
    vcfg = base_config(["/evil"])
    vcfg["linux"]["namespaces"] = [ns if ns["type"] != "pid" else
                                   {"type": "pid", "path": f"/proc/{pid_a}/ns/pid"}
                                   for ns in vcfg["linux"]["namespaces"]]
    write_config(victim, vcfg)
    site = [p for p in sys.path if p.endswith("site-packages")]
    env = {**os.environ, "PYTHONPATH": ":".join([REPO, *site])}
    runtime = [host_python, "-m", "pyoci", "--root", pyoci.root]
    try:
        create = subprocess.run([*runtime, "create", "--bundle", victim, cid + "-v"],
                                env=env, capture_output=True, text=True, timeout=60,
                                stdin=subprocess.DEVNULL)
        assert create.returncode == 0, create.stderr
        time.sleep(3)  # the created container's init is visible to the attacker
        subprocess.run([*runtime, "start", cid + "-v"], env=env, capture_output=True,
                       timeout=60, stdin=subprocess.DEVNULL)
        time.sleep(1)
        subprocess.run([*runtime, "delete", "--force", cid + "-v"], env=env,
                       capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        time.sleep(6)  # nothing runs the copy now: a held fd could write it
    finally:
        open(os.path.join(out_dir, "stop"), "w").close()
        time.sleep(1)
        pyoci("delete", "--force", cid + "-a")
    log = _read(os.path.join(out_dir, "log"))
    assert "start" in log, log
    assert "WROTE" not in log, log
    assert host_python not in log and "python" not in log, log
    assert _sha256(host_python) == before


def test_cve_2019_5736_through_exec(pyoci, new_bundle, cid, base_config, write_config):
    """The original exploit: the container's program is replaced by ``#!/proc/self/exe``
    and the runtime is made to exec it (``docker exec``, here ``pyoci exec``) while a
    process of the container waits to rewrite the runtime's binary."""
    bundle = new_bundle()
    out_dir = os.path.join(bundle, "out")
    os.mkdir(out_dir)
    evil = os.path.join(bundle, "rootfs", "evil")
    with open(evil, "w") as f:
        f.write("#!/proc/self/exe\n")
    os.chmod(evil, 0o755)
    cfg = base_config(["sh", "-c", ATTACKER_FAST])
    cfg["root"]["readonly"] = False
    cfg["mounts"].append({"destination": "/out", "type": "bind", "source": out_dir,
                          "options": ["rbind"]})
    write_config(bundle, cfg)
    host_python = os.path.join(bundle, "host-python")
    shutil.copy2(os.path.realpath(sys.executable), host_python)
    _install_runtime_libs(os.path.join(bundle, "rootfs"), host_python)
    before = _sha256(host_python)
    site = [p for p in sys.path if p.endswith("site-packages")]
    env = {**os.environ, "PYTHONPATH": ":".join([REPO, *site])}
    runtime = [host_python, "-m", "pyoci", "--root", pyoci.root]
    ok(pyoci("create", "--bundle", bundle, cid))
    try:
        ok(pyoci("start", cid))
        time.sleep(1)
        for _ in range(3):
            subprocess.run([*runtime, "exec", cid, "/evil"], env=env, capture_output=True,
                           timeout=60, stdin=subprocess.DEVNULL)
            time.sleep(0.5)
        time.sleep(6)  # the copy runs nowhere now: a held fd could write it
    finally:
        open(os.path.join(out_dir, "stop"), "w").close()
        time.sleep(1)
        pyoci("delete", "--force", cid)
    log = _read(os.path.join(out_dir, "log"))
    assert "start" in log, log
    assert "WROTE" not in log and "python" not in log, log
    assert _sha256(host_python) == before


# --- CVE-2024-21626: leaked fds and a working directory in the host --------------------


def test_cve_2024_21626_cwd_through_leaked_fd(pyoci, bundle, cid, base_config,
                                              write_config):
    """process.cwd = /proc/self/fd/N for every plausible N: the container either fails to
    start with one line, or starts inside its own root; never in a host directory."""
    secret = secrets.token_hex(8)
    marker = os.path.join(bundle, "host-secret")
    with open(marker, "w") as f:
        f.write(secret)
    up = "../" * 12 + marker.lstrip("/")
    for n in range(3, 16):
        cfg = base_config()
        cfg["process"]["cwd"] = f"/proc/self/fd/{n}"
        r = run_script(pyoci, bundle, f"{cid}-{n}", cfg,
                       f"pwd; cat {up} 2>&1; ls -d /proc/self/cwd/../../../.. 2>&1; true",
                       write_config)
        assert secret not in r.stdout + r.stderr, (n, r.stdout)
        if r.returncode == 0:
            assert "unreachable" not in r.stdout, (n, r.stdout)
        else:
            lines = [x for x in r.stderr.splitlines() if x.strip()]
            assert len(lines) == 1, (n, r.stderr)
    nothing_left(pyoci.root)


def test_cve_2024_21626_no_runtime_fd_in_the_container(pyoci, bundle, cid, base_config,
                                                       write_config):
    """Only 0, 1, 2 reach the program (and --preserve-fds ones): no O_PATH fd of a host
    directory to escape through, also for a process that is not root."""
    cfg = base_config()
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    out = ok(run_script(pyoci, bundle, cid, cfg,
                        "ls /proc/self/fd | tr '\\n' ' '; echo; "
                        "for f in /proc/1/fd/*; do readlink $f; done; true", write_config))
    fds = out.splitlines()[0].split()
    assert set(fds) <= {"0", "1", "2", "3"}, out  # 3: ls's own directory fd
    assert "/sys/fs/cgroup" not in out and "pyoci-test" not in out


# --- CVE-2019-19921: /proc from a volume, LSM labels written into it ------------------


def test_cve_2019_19921_volume_over_proc_refused(pyoci, bundle, cid, base_config,
                                                 write_config):
    vol = os.path.join(bundle, "volume")
    os.makedirs(os.path.join(vol, "self", "attr"))
    with open(os.path.join(vol, "self", "attr", "exec"), "w") as f:
        f.write("")
    cfg = base_config()
    cfg["mounts"].append({"destination": "/proc", "type": "bind", "source": vol,
                          "options": ["rbind"]})
    write_config(bundle, cfg)
    one_line_error(pyoci("run", "--bundle", bundle, cid), "not of type proc")
    nothing_left(pyoci.root)
    for dest in ("/proc/self/attr", "/proc/sys/kernel"):
        cfg["mounts"][-1]["destination"] = dest
        write_config(bundle, cfg)
        one_line_error(pyoci("run", "--bundle", bundle, cid), "inside /proc")
        nothing_left(pyoci.root)


def _in_netns(pid: int, path: str) -> str:
    """Read ``path`` (under /proc/sys/net) as seen from the network namespace of ``pid``."""
    from pyoci import syscalls as sc

    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(r)
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
            sc.setns(fd, sc.CLONE_NEWNET)
            os.write(w, _read(path).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 4096):
        data += chunk
    os.close(r)
    os.waitpid(child, 0)
    return data.decode()


def test_cve_2019_19921_proc_swapped_for_a_volume(pyoci, bundle, cid, base_config,
                                                  write_config):
    """The image's /proc is a symlink into a volume; a racing container then uncovers a
    fake procfs tree there.  The runtime's procfs writes (sysctls, and LSM labels where
    an LSM is enabled) must still reach the real procfs, not the volume."""
    vol = os.path.join(bundle, "volume")
    fake = os.path.join(vol, "proc", "sys", "net", "ipv4")
    os.makedirs(fake)
    with open(os.path.join(fake, "ip_forward"), "w") as f:
        f.write("FAKE\n")
    rootfs = os.path.join(bundle, "rootfs")
    os.rmdir(os.path.join(rootfs, "proc"))
    os.symlink("/vol/proc", os.path.join(rootfs, "proc"))
    cfg = base_config(["sleep", "30"])
    cfg["mounts"].insert(0, {"destination": "/vol", "type": "bind", "source": vol,
                             "options": ["rbind"]})
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    cfg["hooks"] = {"createContainer": [_hook(f"umount -l {rootfs}/vol/proc")]}
    write_config(bundle, cfg)
    r = pyoci("create", "--bundle", bundle, cid)
    try:
        if r.returncode != 0:
            one_line_error(r)
        else:
            pid = _state_pid(pyoci, cid)
            assert _in_netns(pid, "/proc/sys/net/ipv4/ip_forward").strip() == "1"
    finally:
        pyoci("delete", "--force", cid)
    assert _read(os.path.join(fake, "ip_forward")) == "FAKE\n"


# --- CVE-2021-30465: mount destinations swapped for symlinks ---------------------------


def test_cve_2021_30465_symlink_exchange_race(pyoci, bundle, cid, base_config,
                                              write_config):
    """A mount whose destination lies in a volume while another container swaps a
    directory of that volume with a symlink to the host's / (renameat2 EXCHANGE) in a
    tight loop: no mount may ever land outside the container's rootfs."""
    libc = ctypes.CDLL(None, use_errno=True)
    vol = os.path.join(bundle, "volume")
    os.makedirs(os.path.join(vol, "sub"))
    os.symlink("/", os.path.join(vol, "link"))
    host_dir = tempfile.mkdtemp(prefix="pyoci-test-host-", dir="/tmp")
    os.mkdir(os.path.join(host_dir, "target"))
    rootfs = os.path.realpath(os.path.join(bundle, "rootfs"))
    dumps = os.path.join(bundle, "dumps")
    os.mkdir(dumps)
    stop = threading.Event()
    swaps = [0]

    def swapper() -> None:
        a, b = os.path.join(vol, "sub").encode(), os.path.join(vol, "link").encode()
        while not stop.is_set():
            libc.renameat2(-100, a, -100, b, 2)  # RENAME_EXCHANGE
            swaps[0] += 1

    t = threading.Thread(target=swapper, daemon=True)
    t.start()
    try:
        for i in range(12):
            cfg = base_config(["true"])
            cfg["mounts"] += [
                {"destination": "/vol", "type": "bind", "source": vol, "options": ["rbind"]},
                {"destination": f"/vol/sub{host_dir}/target", "type": "tmpfs",
                 "source": "tmpfs", "options": ["size=1m"]},
            ]
            cfg["hooks"] = {"createContainer": [
                _hook(f"cat /proc/self/mountinfo > {dumps}/{i}")]}
            write_config(bundle, cfg)
            r = pyoci("run", "--bundle", bundle, f"{cid}-{i}")
            if r.returncode != 0:
                one_line_error(r)
    finally:
        stop.set()
        t.join(5)
        shutil.rmtree(host_dir, ignore_errors=True)
    assert swaps[0] > 100
    for name in os.listdir(dumps):
        for line in _read(os.path.join(dumps, name)).splitlines():
            fields = line.split()
            if fields[fields.index("-") + 1] == "tmpfs" and "target" in fields[4]:
                assert fields[4].startswith(rootfs + "/"), line
    nothing_left(pyoci.root)


# --- CVE-2025-31133: maskedPaths and a /dev/null that is not /dev/null -----------------


@pytest.mark.parametrize("replacement", ["symlink", "other-device"])
def test_cve_2025_31133_dev_null_replaced(pyoci, bundle, cid, base_config, write_config,
                                          replacement):
    """A racing container replaces /dev/null (a symlink to a writable procfs file, or
    another device) before masked paths are applied: the masking must not bind it
    anywhere (the exploit then writes through the "masked" path)."""
    rootfs = os.path.join(bundle, "rootfs")
    if replacement == "symlink":
        swap = f"rm -f {rootfs}/dev/null && ln -s {TARGET} {rootfs}/dev/null"
    else:
        swap = f"rm -f {rootfs}/dev/null && mknod -m 666 {rootfs}/dev/null c 1 5"
    before = _read(CORE_PATTERN)
    cfg = base_config(["sh", "-c", "echo pwned > /proc/kcore; hostname"])
    cfg["hooks"] = {"createContainer": [_hook(swap)]}
    write_config(bundle, cfg)
    r = pyoci("run", "--bundle", bundle, cid)
    one_line_error(r, "/dev/null")
    assert _read(CORE_PATTERN) == before
    nothing_left(pyoci.root)


# --- CVE-2025-52565: /dev/console --------------------------------------------------------


class ConsoleSocket:
    """A --console-socket receiver that keeps the pty master and reads what comes out."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="pyoci-test-console-", dir="/tmp")
        self.path = os.path.join(self.dir, "console.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(1)
        self.output = b""
        self._t = threading.Thread(target=self._serve, daemon=True)
        self._t.start()

    def _serve(self) -> None:
        self.sock.settimeout(60)
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 1024, 1)
        if not fds:
            return
        master = fds[0]
        try:
            while True:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                self.output += chunk
        finally:
            os.close(master)

    def close(self) -> str:
        self._t.join(30)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.output.decode(errors="replace")


CONSOLE_CHECK = ("stat -L -c 'console=%F %t' /dev/console; echo pwned > /dev/console; "
                 "echo host=$(hostname); sleep 0.2")


def _run_with_console(pyoci, bundle, cid, cfg, write_config):
    cfg["process"]["terminal"] = True
    write_config(bundle, cfg)
    console = ConsoleSocket()
    try:
        r = pyoci("create", "--console-socket", console.path, "--bundle", bundle, cid)
        if r.returncode == 0:
            r = pyoci("start", cid)
    finally:
        out = console.close()  # reads until the container's end closes the pty
        pyoci("delete", "--force", cid)
    return r, out


def test_cve_2025_52565_dev_console_symlink_in_image(pyoci, bundle, cid, base_config,
                                                     write_config):
    """The image's /dev/console is a symlink to a writable procfs file and /dev is the
    image's own: the console bind mount must land on a /dev/console of pyoci's making."""
    rootfs = os.path.join(bundle, "rootfs")
    os.symlink(TARGET, os.path.join(rootfs, "dev", "console"))
    before = _read(CORE_PATTERN)
    cfg = base_config(["sh", "-c", CONSOLE_CHECK])
    cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] != "/dev"]
    r, out = _run_with_console(pyoci, bundle, cid, cfg, write_config)
    assert r.returncode == 0, (r.stderr, out)
    assert "console=character special file 88" in out and "host=pyoci" in out, out
    assert _read(CORE_PATTERN) == before


def test_cve_2025_52565_dev_pts_entries_swapped(pyoci, bundle, cid, base_config,
                                                write_config):
    """A racing container covers /dev/pts with entries that are symlinks to a writable
    procfs file (keeping a working ptmx): bind-mounting "/dev/pts/N" by path would hand
    the container that file as its console.  The slave is taken by fd instead."""
    rootfs = os.path.join(bundle, "rootfs")
    keep = os.path.join(bundle, "realpts")
    os.mkdir(keep)
    links = " ".join(f"ln -s {TARGET} $P/{i};" for i in range(16))
    swap = (f"P={rootfs}/dev/pts; mount --bind $P {keep} && mount -t tmpfs tmpfs $P && "
            f"touch $P/ptmx && mount --bind {keep}/ptmx $P/ptmx && {links} true")
    before = _read(CORE_PATTERN)
    cfg = base_config(["sh", "-c", CONSOLE_CHECK])
    cfg["hooks"] = {"createContainer": [_hook(swap)]}
    r, out = _run_with_console(pyoci, bundle, cid, cfg, write_config)
    if r.returncode == 0:
        assert "console=character special file 88" in out and "host=pyoci" in out, out
    else:  # refused: the slave found by path is a symlink, not the pty's peer
        one_line_error(r, "pty slave")
    assert _read(CORE_PATTERN) == before
    nothing_left(pyoci.root)


# --- CVE-2025-52881: the runtime's procfs writes redirected ----------------------------


def test_cve_2025_52881_sysctl_write_redirected(pyoci, bundle, cid, base_config,
                                                write_config):
    """A racing container bind-mounts another procfs file (here the UTS hostname, in the
    real exploit core_pattern or sysrq-trigger) over the sysctl the runtime will write:
    the write must reach the real sysctl, not the file mounted over it."""
    rootfs = os.path.join(bundle, "rootfs")
    swap = (f"mount --bind {rootfs}/proc/sys/kernel/hostname "
            f"{rootfs}/proc/sys/net/ipv4/ip_forward")
    cfg = base_config(["sh", "-c", "hostname; cat /proc/sys/net/ipv4/conf/all/forwarding"])
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    cfg["hooks"] = {"createContainer": [_hook(swap)]}
    write_config(bundle, cfg)
    out = ok(pyoci("run", "--bundle", bundle, cid)).split()
    assert out == ["pyoci", "1"], out


# --- CVE-2016-9962: ptrace of the runtime's init ---------------------------------------


def _attack_init(pid: int, caps: list[str]) -> dict[str, str]:
    """From a process joined to the container's mount and PID namespaces with the
    container's capabilities, try what the CVE-2016-9962 exploit did to runc init."""
    import _prctl  # noqa: F401 - capabilities uses it past setns (init: before pivot_root)

    from pyoci import capabilities
    from pyoci import syscalls as sc

    libc = ctypes.CDLL(None, use_errno=True)
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(r)
            for ns, flag in (("pid", sc.CLONE_NEWPID), ("mnt", sc.CLONE_NEWNS)):
                fd = os.open(f"/proc/{pid}/ns/{ns}", os.O_RDONLY)
                sc.setns(fd, flag)
                os.close(fd)
            grandchild = os.fork()  # a member of the PID namespace
            if grandchild:
                os.waitpid(grandchild, 0)
                os._exit(0)
            capabilities.apply_capabilities({"bounding": caps, "effective": caps,
                                             "permitted": caps})
            results = {}
            for what in ("exe", "environ", "mem", "fd", "cwd", "root"):
                try:
                    path = f"/proc/1/{what}"
                    if what == "fd":  # listing is allowed to the same uid; opening is not
                        fds = os.listdir(path)
                        for n in fds:
                            os.close(os.open(f"{path}/{n}", os.O_RDONLY | os.O_NONBLOCK))
                        if not fds:
                            raise OSError(0, "no fds")
                    elif what in ("cwd", "root"):
                        os.listdir(path + "/")
                    else:
                        os.close(os.open(path, os.O_RDONLY))
                    results[what] = "ok"
                except OSError as e:
                    results[what] = e.strerror or str(e)
            ret = libc.ptrace(16, 1, None, None)  # PTRACE_ATTACH to the container's PID 1
            results["ptrace"] = "ok" if ret == 0 else os.strerror(ctypes.get_errno())
            if ret == 0:
                libc.ptrace(17, 1, None, None)  # PTRACE_DETACH
            os.write(w, json.dumps(results).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 4096):
        data += chunk
    os.close(r)
    os.waitpid(child, 0)
    return json.loads(data)


def test_cve_2016_9962_init_cannot_be_ptraced(pyoci, bundle, cid, base_config,
                                              write_config):
    """While created, init (the runtime's Python) is PID 1 of the container: a process
    in the container with the default capabilities can neither ptrace it nor reach its
    exe, fds, memory, environment, cwd or root."""
    cfg = base_config(["sleep", "30"])
    write_config(bundle, cfg)
    ok(pyoci("create", "--bundle", bundle, cid))
    try:
        pid = _state_pid(pyoci, cid)
        caps = cfg["process"]["capabilities"]["bounding"]
        results = _attack_init(pid, caps)
        assert all(v != "ok" for v in results.values()), results
        # the control: once the program runs (dumpable again), the same access works
        ok(pyoci("start", cid))
        time.sleep(0.3)
        after = _attack_init(pid, caps)
        assert after["exe"] == "ok" and after["ptrace"] == "ok", after
    finally:
        pyoci("delete", "--force", cid)


# --- what the default profile refuses ---------------------------------------------------

ESCAPES = r"""
echo > /tmp/empty.ko
t() { name=$1; shift; "$@" >/dev/null 2>&1; echo "$name=$?"; }
t unshare-mount unshare -m true
t unshare-user unshare -U true
t unshare-net unshare -n true
t mount mount -t tmpfs tmpfs /mnt
t mount-proc mount -t proc proc /mnt
t reboot reboot -f
t insmod insmod /tmp/empty.ko
t sysctl sh -c 'v=$(cat /proc/sys/kernel/panic); echo $v > /proc/sys/kernel/panic'
t sysrq sh -c 'echo h > /proc/sysrq-trigger'
t hostname hostname evil
t mknod mknod /tmp/sda b 8 0
t chroot chroot / true
true
"""


@pytest.mark.parametrize("with_seccomp", [False, True], ids=["caps-only", "seccomp"])
def test_default_profile_refuses_escapes(pyoci, bundle, cid, base_config, write_config,
                                         with_seccomp):
    """unshare, mount, reboot, module loading and /proc/sys writes under the default
    config (runc's `spec`), and with a Docker-like default seccomp profile on top."""
    from seccomp_profiles import default_profile

    cfg = base_config()
    cfg["root"]["readonly"] = False
    if with_seccomp:
        cfg["linux"]["seccomp"] = default_profile()
    out = ok(run_script(pyoci, bundle, cid, cfg, ESCAPES, write_config))
    results = dict(line.split("=", 1) for line in out.split() if "=" in line)
    allowed = {k for k, v in results.items() if v == "0"}
    # without seccomp an unprivileged user namespace is allowed, as with runc; in it the
    # process is root of nothing the host owns (no mount of proc, sysfs or devices).
    expected = set() if with_seccomp else {"unshare-user"}
    assert allowed == expected, results
    assert len(results) == 12, out


def test_default_profile_status(pyoci, bundle, cid, base_config, write_config):
    from seccomp_profiles import default_profile

    cfg = base_config()
    cfg["linux"]["seccomp"] = default_profile()
    st = status(ok(run_script(pyoci, bundle, cid, cfg,
                              "grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status",
                              write_config)))
    assert st["Seccomp"] == "2" and st["Seccomp_filters"] == "1"
    assert st["NoNewPrivs"] == "1" and int(st["CapEff"], 16) == 0x20000420


