"""The final step before execve(2), which every container process takes (init and exec).

The step runs in a tiny freestanding trampoline (``csrc/pyoci_exec.c``) that the process
execs from a sealed memfd, so the host's interpreter is never the container's
``/proc/self/exe`` (CVE-2019-5736); the trampoline loads the seccomp filter (compiled by
:mod:`pyoci.seccomp`), writes the LSM label, sets the exact capabilities and execs.

A module of its own, apart from the seccomp compiler: every init imports it, while
:mod:`pyoci.seccomp` is loaded only for a config with a profile.
"""

from __future__ import annotations

import fcntl
import os
import struct

from pyoci import logger
from pyoci import syscalls as sc
from pyoci.errors import PyociError

TYPE_CHECKING = False  # collections.abc (and collections with it) not imported at run time
if TYPE_CHECKING:
    from pyoci.seccomp import Filter


class FinalStepFailed(PyociError):
    """The final step failed and already reported it to ``report_fd``."""


_HDR = struct.Struct("=IIIIIIIIiiiI6I2I")
_MAGIC = 0x58454F50
_VERSION = 2
_F_SECCOMP, _F_NOTIFY, _F_CAPS = 1, 2, 4
_MFD_EXEC = 0x0010
_F_SEAL_EXEC = 0x0020


def final_control(path: str, *, filt: Filter | None = None, listener_fd: int = -1,
                  payload: bytes = b"", report_fd: int = -1, keep_fds: int = 3,
                  lsm_fd: int = -1, lsm_label: bytes = b"",
                  caps_words: list[int] | None = None, drop_bounding: int = 0) -> bytes:
    """The control block of csrc/pyoci_final.h."""
    flags = 0
    bpf = b""
    sflags = 0
    if filt is not None:
        flags |= _F_SECCOMP
        bpf, sflags = filt.bpf, filt.flags
        if filt.notify:
            if listener_fd < 0:
                raise PyociError("seccomp: SCMP_ACT_NOTIFY needs a listener")
            flags |= _F_NOTIFY
    if caps_words is not None:
        flags |= _F_CAPS
    raw_path = path.encode() + b"\0"
    raw_path += b"\0" * (-len(raw_path) % 8)
    hdr = _HDR.pack(_MAGIC, _VERSION, flags, sflags, len(bpf) // 8,
                    len(payload) if flags & _F_NOTIFY else 0, len(lsm_label), len(raw_path),
                    listener_fd if flags & _F_NOTIFY else -1, report_fd,
                    lsm_fd if lsm_label else -1, keep_fds, *(caps_words or [0] * 6),
                    drop_bounding & 0xFFFFFFFF, drop_bounding >> 32)
    return hdr + raw_path + bpf + (payload if flags & _F_NOTIFY else b"") + lsm_label


def trampoline_fd() -> int | None:
    """The trampoline in a sealed, executable memfd; None where memfds cannot be run."""
    flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
    try:
        fd = os.memfd_create("pyoci-exec", flags | _MFD_EXEC)
    except OSError:
        try:
            fd = os.memfd_create("pyoci-exec", flags)
        except OSError:
            return None
    try:
        image = sc.exec_image()
        view = memoryview(image)
        while view:
            view = view[os.write(fd, view):]
        os.fchmod(fd, 0o555)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK
                    | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
        try:
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _F_SEAL_EXEC)
        except OSError:
            pass  # kernels before 6.3
    except OSError:
        os.close(fd)
        return None
    return fd


def exec_final(path: str, argv: list[str], env: dict[str, str] | list[str], *,
               filt: Filter | None = None, listener_fd: int = -1, payload: bytes = b"",
               report_fd: int = -1, keep_fds: int = 3, lsm_fd: int = -1,
               lsm_label: bytes = b"", caps_words: list[int] | None = None,
               drop_bounding: int = 0) -> None:
    """Exec ``path`` through the trampoline, loading ``filt`` right before; raises on error.

    Every fd from ``keep_fds`` on is closed by the exec.  A failure after the
    trampoline started is written as ``E<message>`` to ``report_fd``.
    """
    envlist = env if isinstance(env, list) else [f"{k}={v}" for k, v in env.items()]
    ctl = final_control(path, filt=filt, listener_fd=listener_fd, payload=payload,
                        report_fd=report_fd, keep_fds=keep_fds, lsm_fd=lsm_fd,
                        lsm_label=lsm_label, caps_words=caps_words,
                        drop_bounding=drop_bounding)
    for fd in (listener_fd, report_fd, lsm_fd):
        if fd >= 0:
            os.set_inheritable(fd, True)
    image = trampoline_fd()
    if image is not None:
        ctl_fd = os.memfd_create("pyoci-exec-ctl", 0)
        try:
            os.write(ctl_fd, ctl)
            os.lseek(ctl_fd, 0, os.SEEK_SET)
            envmap = dict(e.split("=", 1) if "=" in e else (e, "") for e in envlist)
            os.execve(image, ["pyoci-exec", str(ctl_fd), *argv], envmap)
        except OSError as e:
            logger.debug("cannot exec the trampoline (%s): final step in-process", e)
        finally:
            os.close(ctl_fd)
            os.close(image)
    try:
        sc.final_exec(ctl, argv, envlist)
    except OSError as e:
        raise FinalStepFailed(f"exec {path}: {e.strerror}") from None
