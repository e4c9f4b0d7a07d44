"""The pure cgroup-v2 lane: boot Debian's kernel under qemu and run the cgroup tests there.

    python tests/cgroupv2/lane.py [pytest args...]      (as root; exit status = the tests')

The guest is the host's own filesystem: ``/`` is shared read-only over virtio-9p and
a tmpfs overlay on top makes it writable, so the guest runs this very checkout and
its .venv.  The kernel boots with ``cgroup_no_v1=all``; the init script mounts
cgroup2 at /sys/fs/cgroup and enables every controller in the root's
``cgroup.subtree_control`` (as systemd does), then runs pytest and reports its exit
status on the console.

Facts of this machine that shape it: /dev/kvm is a nested PVM device that cannot run
a stock kernel, so qemu runs on TCG.  The kernel is booted uncompressed (vmlinux,
through PVH) with a tiny busybox initramfs carrying the 9p, virtio and overlay
modules.  Measured here (qemu 7.2, Debian 6.1 kernel): the ``microvm`` machine hangs
at boot (with no PIT/HPET the kernel cannot calibrate its timers under TCG), so the
``pc`` machine is used: about 8 s to /init, 15 s boot-to-poweroff.  Where qemu, the
kernel or busybox is missing, :func:`unavailable` says why and the lane is skipped.
qemu is always ended (by its PID) before this returns, and dies with the lane's
process if that is killed.
"""

from __future__ import annotations

import glob
import lzma
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QEMU = "qemu-system-x86_64"
BUSYBOX = "/bin/busybox"
CACHE = "/var/tmp/pyoci-cgroupv2-lane"
LOG = os.path.join(CACHE, "last-run.log")  # the console output of the last run
EXIT_MARK = "PYOCI-LANE-EXIT="
# Load order (modules.dep): virtio-pci transport, 9p over virtio, overlayfs.
MODULES = ["virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
           "virtio_pci", "netfs", "fscache", "9pnet", "9pnet_virtio", "9p", "overlay"]
# What the lane runs by default: every cgroup behaviour once (the guest is ~15x slower
# than the host, so variants already covered elsewhere are left to the hybrid host).
_I = "tests/integration/test_cgroups.py::"
_S = "spec-tests/test_config_linux_cgroups.py::"
DEFAULT_TESTS = [
    "tests/integration/test_cgroups_bpf.py",
    _I + "test_limits_read_back_and_processes_in_cgroup",
    _I + "test_memory_limit_oom_kills",
    _I + "test_pids_limit_stops_fork_bomb",
    _I + "test_devices_deny_rule_blocks_mknod_and_open",
    _I + "test_pause_freezes_and_resume_thaws",
    _I + "test_update_changes_live_limits",
    _I + "test_cgroup_namespace_and_mount_show_own_cgroup",
    _I + "test_kill_all_and_delete_with_lingering_processes",
    _I + "test_bad_resources_one_line_error_nothing_left[resources0-linux.resources.cpu.cpus]",
    _I + "test_controller_the_host_lacks",
    _I + "test_unified_key_for_a_missing_controller",
    _I + "test_cgroups_path_in_use_is_refused",
    _I + "test_hugetlb_and_io_weight",
    _S + "test_absolute_cgroups_path_is_relative_to_the_mount_point",
    _S + "test_check_before_update_rejects_a_limit_below_usage",
    _S + "test_unified_needed_controllers_are_enabled",
    _S + "test_unconvertible_v1_configuration_is_an_error",
]
TIMEOUT = 900


def find_kernel() -> tuple[str, str] | None:
    """(vmlinuz, modules dir) of the newest installed Debian kernel with its modules."""
    found = []
    for vmlinuz in glob.glob("/boot/vmlinuz-*"):
        version = vmlinuz[len("/boot/vmlinuz-"):]
        moddir = f"/lib/modules/{version}"
        if os.path.isdir(moddir):
            found.append((os.path.getmtime(vmlinuz), vmlinuz, moddir))
    if not found:
        return None
    _, vmlinuz, moddir = max(found)
    return vmlinuz, moddir


def unavailable() -> str | None:
    """Why the lane cannot run here, or None."""
    if os.geteuid() != 0:
        return "the cgroup v2 lane needs root"
    if shutil.which(QEMU) is None:
        return f"{QEMU} not found (apt-get install qemu-system-x86)"
    if not os.path.exists(BUSYBOX):
        return f"{BUSYBOX} not found (apt-get install busybox-static)"
    kernel = find_kernel()
    if kernel is None:
        return "no kernel with modules in /boot (apt-get install linux-image-amd64)"
    for mod in MODULES:
        if _module_path(kernel[1], mod) is None:
            return f"kernel module {mod} not found in {kernel[1]}"
    return None


def _module_path(moddir: str, name: str) -> str | None:
    with open(os.path.join(moddir, "modules.dep")) as f:
        for line in f:
            path = line.split(":", 1)[0]
            base = os.path.basename(path)
            if re.fullmatch(re.escape(name) + r"\.ko(\.xz|\.zst|\.gz)?", base):
                return os.path.join(moddir, path)
    return None


def vmlinux(vmlinuz: str) -> str:
    """The uncompressed kernel (ELF, PVH-bootable) inside a bzImage, cached."""
    st = os.stat(vmlinuz)
    out = os.path.join(CACHE, f"vmlinux-{os.path.basename(vmlinuz)}-{int(st.st_mtime)}")
    if os.path.exists(out):
        return out
    with open(vmlinuz, "rb") as f:
        data = f.read()
    off = data.find(b"\xfd7zXZ\x00")
    if off < 0:
        raise RuntimeError(f"{vmlinuz}: no xz-compressed kernel inside")
    elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(data[off:])
    if not elf.startswith(b"\x7fELF"):
        raise RuntimeError(f"{vmlinuz}: the xz payload is not an ELF kernel")
    os.makedirs(CACHE, exist_ok=True)
    tmp = f"{out}.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(elf)
    os.replace(tmp, out)
    return out


def _read_module(path: str) -> bytes:
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".xz"):
        data = lzma.decompress(data)
    return data


INIT = r"""#!/bin/busybox sh
B=/bin/busybox
$B mkdir -p /proc /sys /dev /host /upper /newroot
$B mount -t proc proc /proc
$B mount -t sysfs sysfs /sys
$B mount -t devtmpfs devtmpfs /dev
for m in MODULES; do $B insmod /modules/$m.ko || echo "lane: insmod $m failed"; done
$B mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot /host \
  || { echo "lane: cannot mount the host's / over 9p"; echo EXIT_MARK 97; $B reboot -f; }
$B mount -t tmpfs -o size=75% tmpfs /upper
$B mkdir -p /upper/u /upper/w
$B mount -t overlay overlay -o lowerdir=/host,upperdir=/upper/u,workdir=/upper/w /newroot \
  || { echo "lane: overlay mount failed"; echo EXIT_MARK 97; $B reboot -f; }
$B mkdir -p /newroot/run
$B mount -t tmpfs -o mode=755 tmpfs /newroot/run
$B cp /lane.sh /newroot/run/lane.sh
exec $B switch_root /newroot /bin/busybox sh /run/lane.sh
"""

STAGE2 = r"""
B=/bin/busybox
$B mount -t proc proc /proc
$B mount -t sysfs sysfs /sys
$B mount -t devtmpfs devtmpfs /dev
$B mkdir -p /dev/pts /dev/shm
$B mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
$B mount -t tmpfs tmpfs /dev/shm
# A fresh /tmp, with the checkout kept at its own path even when it lives under /tmp.
$B mkdir -p /run/repo && $B mount --bind REPO /run/repo
$B mount -t tmpfs -o mode=1777 tmpfs /tmp
$B mkdir -p REPO && $B mount --bind /run/repo REPO
$B mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup
for c in $($B cat /sys/fs/cgroup/cgroup.controllers); do
  echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control
done
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
export CI=true PYOCI_CGROUPV2_LANE=1 PY_COLORS=0 TERM=dumb
echo "lane: $(uname -r), cgroup2 controllers: $($B cat /sys/fs/cgroup/cgroup.subtree_control)"
$B grep -q ' cgroup ' /proc/mounts && echo "lane: WARNING: a cgroup v1 hierarchy is mounted"
cd REPO
.venv/bin/python -m pytest -p no:cacheprovider ARGS </dev/null 2>&1
echo "EXIT_MARK$?"
$B sync
$B reboot -f
"""


def _cpio(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A newc cpio archive of (name, mode, data); directories have no data."""
    out = bytearray()
    for ino, (name, mode, data) in enumerate(entries + [("TRAILER!!!", 0, b"")], 1):
        raw = name.encode() + b"\0"
        header = "070701" + "".join(f"{v:08X}" for v in (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(raw), 0))
        out += header.encode() + raw
        out += b"\0" * (-len(out) % 4)
        out += data
        out += b"\0" * (-len(out) % 4)
    return bytes(out)


def initramfs(moddir: str, pytest_args: list[str], path: str) -> None:
    with open(BUSYBOX, "rb") as f:
        busybox = f.read()
    init = INIT.replace("MODULES", " ".join(MODULES)).replace("EXIT_MARK ", EXIT_MARK)
    stage2 = (STAGE2.replace("REPO", shlex.quote(REPO))
              .replace("ARGS", " ".join(shlex.quote(a) for a in pytest_args))
              .replace("EXIT_MARK", EXIT_MARK))
    entries = [("bin", 0o40755, b""), ("modules", 0o40755, b""),
               ("bin/busybox", 0o100755, busybox), ("init", 0o100755, init.encode()),
               ("lane.sh", 0o100644, stage2.encode())]
    for mod in MODULES:
        entries.append((f"modules/{mod}.ko", 0o100644,
                        _read_module(_module_path(moddir, mod))))
    with open(path, "wb") as f:
        f.write(_cpio(entries))


def qemu_command(kernel: str, initrd: str, memory_mb: int = 2048, cpus: int = 2) -> list[str]:
    return [
        QEMU, "-M", "pc,accel=tcg", "-cpu", "max", "-smp", str(cpus),
        "-m", str(memory_mb), "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
        "-serial", "stdio",
        "-kernel", kernel, "-initrd", initrd,
        "-append", "console=ttyS0 cgroup_no_v1=all panic=-1 loglevel=4 rdinit=/init",
        "-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
        "-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot",
    ]


def run(pytest_args: list[str] | None = None, timeout: float = TIMEOUT,
        echo: bool = False) -> tuple[int, str]:
    """Boot, run pytest in the guest; (its exit status, the console output).

    The status is 125 when the guest never reported one (boot failure, timeout).
    """
    why = unavailable()
    if why:
        raise RuntimeError(why)
    vmlinuz, moddir = find_kernel()  # type: ignore[misc]
    kernel = vmlinux(vmlinuz)
    args = pytest_args or ["-q", *DEFAULT_TESTS]
    with tempfile.TemporaryDirectory(prefix="pyoci-lane-") as tmp:
        initrd = os.path.join(tmp, "initramfs.cpio")
        initramfs(moddir, args, initrd)
        proc = subprocess.Popen(qemu_command(kernel, initrd), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=_die_with_parent)
        chunks: list[str] = []
        deadline = time.monotonic() + timeout
        try:
            assert proc.stdout is not None
            fd = proc.stdout.fileno()
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    chunks.append(f"\nlane: timed out after {timeout:.0f}s\n")
                    break
                ready, _, _ = select.select([fd], [], [], min(left, 1.0))
                if not ready:
                    continue
                data = os.read(fd, 65536)
                if not data:
                    break
                text = data.decode(errors="replace").replace("\r\n", "\n")
                chunks.append(text)
                if echo:
                    sys.stdout.write(text)
                    sys.stdout.flush()
        finally:
            _stop(proc)
    output = "".join(chunks)
    try:
        os.makedirs(CACHE, exist_ok=True)
        with open(LOG, "w") as f:
            f.write(output)
    except OSError:
        pass
    m = re.search(re.escape(EXIT_MARK) + r"(\d+)", output)
    return (int(m.group(1)) if m else 125), output


def _die_with_parent() -> None:
    """In the child: qemu gets SIGKILL if the lane's process dies first, however it dies."""
    import prctl

    prctl.set_pdeathsig(signal.SIGKILL)


def _stop(proc: subprocess.Popen) -> None:
    """End qemu (only the process this lane started, by its PID) and reap it."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def main(argv: list[str]) -> int:
    why = unavailable()
    if why:
        print(f"cgroup v2 lane skipped: {why}")
        return 0
    start = time.monotonic()
    code, _output = run(argv or None, echo=True)
    print(f"\nlane: guest pytest exit status {code}, {time.monotonic() - start:.0f}s in all")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
