"""seccomp: ``linux.seccomp`` compiled with libseccomp (pyseccomp), loaded right before exec.

The runtime compiles the filter before it forks anything (:func:`compile_filter`), so
a malformed rule is a one-line error and nothing is left behind, and libseccomp is
never imported in the container.  The BPF program travels to init by fork; init
hands it to the final exec step (:func:`pyoci.final.exec_final`), which loads it with seccomp(2)
from C as the very last thing before execve(2): none of the runtime's own system
calls (Python's included) ever runs under the container's filter.

The final step runs in a tiny freestanding trampoline (``csrc/pyoci_exec.c``) that
init execs from a sealed memfd, so the host's interpreter is never the container's
``/proc/self/exe`` (CVE-2019-5736).  With ``SCMP_ACT_NOTIFY`` the filter is loaded
with SECCOMP_FILTER_FLAG_NEW_LISTENER and the trampoline sends the listener fd, with
the container process state as the runtime-spec describes, over a socket the runtime
connected to ``listenerPath`` when the container was created.

Rule semantics follow runc: unknown syscall names are skipped, a rule whose action is
the default action is skipped, ``args`` on distinct indexes are ANDed in one rule and
args repeating an index become one rule each (ORed), ``errnoRet`` defaults to EPERM.
"""

from __future__ import annotations

import errno
import os
import sys

from pyoci import jsonio, logger, unixsock
from pyoci import syscalls as sc
from pyoci.errors import ConfigError, PyociError

TYPE_CHECKING = False  # collections.abc (and collections with it) not imported at run time
if TYPE_CHECKING:
    from collections.abc import Iterable

_KILL_PROCESS = 0x80000000
_KILL_THREAD = 0x00000000
_TRAP = 0x00030000
_ERRNO = 0x00050000
_TRACE = 0x7FF00000
_LOG = 0x7FFC0000
_ALLOW = 0x7FFF0000
_NOTIFY = 0x7FC00000

ACTIONS = {
    "SCMP_ACT_KILL": _KILL_THREAD,
    "SCMP_ACT_KILL_THREAD": _KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": _KILL_PROCESS,
    "SCMP_ACT_TRAP": _TRAP,
    "SCMP_ACT_ERRNO": _ERRNO,
    "SCMP_ACT_TRACE": _TRACE,
    "SCMP_ACT_ALLOW": _ALLOW,
    "SCMP_ACT_LOG": _LOG,
    "SCMP_ACT_NOTIFY": _NOTIFY,
}

# name -> (seccomp(2) flag, pyoci needs it only with a listener)
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32,
}
FLAG_NEW_LISTENER = 8
FLAG_WAIT_KILLABLE_RECV = 32

OPERATORS = {
    "SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7,
}

ARCHES = {
    "SCMP_ARCH_X86": "X86", "SCMP_ARCH_X86_64": "X86_64", "SCMP_ARCH_X32": "X32",
    "SCMP_ARCH_ARM": "ARM", "SCMP_ARCH_AARCH64": "AARCH64", "SCMP_ARCH_MIPS": "MIPS",
    "SCMP_ARCH_MIPS64": "MIPS64", "SCMP_ARCH_MIPS64N32": "MIPS64N32",
    "SCMP_ARCH_MIPSEL": "MIPSEL", "SCMP_ARCH_MIPSEL64": "MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32": "MIPSEL64N32", "SCMP_ARCH_PPC": "PPC", "SCMP_ARCH_PPC64": "PPC64",
    "SCMP_ARCH_PPC64LE": "PPC64LE", "SCMP_ARCH_S390": "S390", "SCMP_ARCH_S390X": "S390X",
    "SCMP_ARCH_PARISC": "PARISC", "SCMP_ARCH_PARISC64": "PARISC64",
    "SCMP_ARCH_RISCV64": "RISCV64",
}

# Syscalls the final step makes after loading the filter with a listener: if the
# listener itself had to answer them, nobody would (it gets its fd through sendmsg).
NOTIFY_FORBIDDEN = ("sendmsg",)

_NR_SCMP_ERROR = -1
_MAX_ARG_INDEX = 5


class Filter:
    """A compiled filter: BPF and the seccomp(2) flags to load it with.

    A plain class: importing dataclasses (and inspect, ast, dis) costs every create.
    """

    def __init__(self, bpf: bytes, flags: int = 0, notify: bool = False,
                 listener_path: str = "", listener_metadata: str = "",
                 skipped: list[str] | None = None) -> None:
        self.bpf = bpf
        self.flags = flags
        self.notify = notify
        self.listener_path = listener_path
        self.listener_metadata = listener_metadata
        self.skipped = skipped if skipped is not None else []
        self.to_cache: tuple | None = None  # what seccomp_cache.store keeps, once created

    def __repr__(self) -> str:
        return (f"Filter({self.instructions} instructions, flags={self.flags}, "
                f"notify={self.notify})")

    @property
    def instructions(self) -> int:
        return len(self.bpf) // 8


def _action(name: object, errno_ret: object, where: str) -> int:
    if name not in ACTIONS:
        raise ConfigError(f"{where}: unknown seccomp action {name!r}")
    base = ACTIONS[name]  # type: ignore[index]
    if errno_ret is not None and base not in (_ERRNO, _TRACE):
        # runtime-spec: "When the action doesn't support an errno, the runtime MUST print
        # and error and fail."
        raise ConfigError(f"{where}: errnoRet is only supported with SCMP_ACT_ERRNO and "
                          f"SCMP_ACT_TRACE, not {name}")
    if base in (_ERRNO, _TRACE):
        ret = errno.EPERM if errno_ret is None else errno_ret
        if not isinstance(ret, int) or isinstance(ret, bool) or not 0 <= ret <= 0xFFFF:
            raise ConfigError(f"{where}: errnoRet must be an integer from 0 to 65535, "
                              f"not {errno_ret!r}")
        return base | ret
    return base


def _args(rule: dict, where: str) -> list[tuple[int, int, int, int]]:
    out = []
    for i, arg in enumerate(rule.get("args") or []):
        here = f"{where}.args[{i}]"
        if not isinstance(arg, dict):
            raise ConfigError(f"{here}: must be an object")
        index, op = arg.get("index"), arg.get("op")
        if not isinstance(index, int) or isinstance(index, bool) or \
                not 0 <= index <= _MAX_ARG_INDEX:
            raise ConfigError(f"{here}.index: must be 0 to {_MAX_ARG_INDEX}, not {index!r}")
        if op not in OPERATORS:
            raise ConfigError(f"{here}.op: unknown seccomp operator {op!r}")
        values = []
        for key in ("value", "valueTwo"):
            v = arg.get(key, 0)
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 1 << 64:
                raise ConfigError(f"{here}.{key}: must be an unsigned 64-bit integer")
            values.append(v)
        out.append((index, OPERATORS[op], values[0], values[1]))  # type: ignore[index]
    return out


def _flags(names: Iterable[object], notify: bool, where: str) -> int:
    flags = 0
    for name in names:
        if name not in FLAGS:
            raise ConfigError(f"{where}.flags: unknown seccomp flag {name!r}")
        flag = FLAGS[name]  # type: ignore[index]
        if not sc.seccomp_flag_supported(flag):
            raise ConfigError(f"{where}.flags: {name} is not supported by the running kernel")
        if flag == FLAG_WAIT_KILLABLE_RECV and not notify:
            continue  # it only means something for a listener, as in libseccomp
        flags |= flag
    return flags


# What ctypes.util.find_library answers on Linux for the two libraries pyseccomp loads:
# their sonames, which dlopen finds on the usual search path.
SONAMES = {"c": "libc.so.6", "seccomp": "libseccomp.so.2"}


def _pyseccomp():  # -> the pyseccomp module
    """pyseccomp, imported without ctypes.util.find_library's `ldconfig -p`.

    pyseccomp looks libc and libseccomp up with ctypes.util.find_library when it is
    imported, which imports subprocess, shutil and tempfile and runs ldconfig in a new
    process, twice: about 30 ms of every create with a seccomp profile (podman always
    sends one), to learn two sonames. While pyseccomp is imported, ctypes.util is a
    module whose find_library answers those from :data:`SONAMES` (and hands any other
    name to the real ctypes.util); the real module, if it was loaded, is put back.
    """
    module = sys.modules.get("pyseccomp")
    if module is not None:
        return module
    import ctypes

    def find_library(name: str) -> str | None:
        if name in SONAMES:
            return SONAMES[name]
        del sys.modules["ctypes.util"]  # the real one, for a name pyseccomp did not ask
        from ctypes.util import find_library as real

        return real(name)

    real_util = sys.modules.get("ctypes.util")
    stand_in = type(sys)("ctypes.util")
    stand_in.find_library = find_library  # type: ignore[attr-defined]
    sys.modules["ctypes.util"] = ctypes.util = stand_in  # type: ignore[attr-defined]
    try:
        import pyseccomp
    finally:
        if real_util is not None:
            sys.modules["ctypes.util"] = ctypes.util = real_util  # type: ignore[attr-defined]
        else:
            sys.modules.pop("ctypes.util", None)
            del ctypes.util  # type: ignore[attr-defined]
    return pyseccomp


def compile_filter(seccomp: dict | None, where: str = "linux.seccomp",
                   state_root: str | None = None) -> Filter | None:
    """Check and compile ``linux.seccomp``; None when the config has none.

    With ``state_root``, a profile compiled before is taken from its cache (see
    :mod:`pyoci.seccomp_cache`); the flags, checked against the running kernel, never are.
    """
    if seccomp is None:
        return None
    if not isinstance(seccomp, dict):
        raise ConfigError(f"{where}: must be an object")
    compiled = None
    if state_root is not None:
        from pyoci import seccomp_cache

        compiled = seccomp_cache.load(state_root, seccomp)
    to_cache = None
    if compiled is None:
        compiled = _compile(seccomp, where)
        library = _libseccomp_path() if state_root is not None else None
        if library is not None:
            to_cache = (state_root, seccomp, compiled, library)
    if compiled.skipped:
        logger.debug("%s: unknown syscalls skipped: %s", where, ", ".join(compiled.skipped))
    flags = _flags(seccomp.get("flags") or [], compiled.notify, where)
    if compiled.notify:
        flags |= FLAG_NEW_LISTENER
        if not seccomp.get("listenerPath"):
            raise ConfigError(f"{where}.listenerPath: required when SCMP_ACT_NOTIFY is used")
    filt = Filter(bpf=compiled.bpf, flags=flags, notify=compiled.notify,
                  listener_path=seccomp.get("listenerPath") or "",
                  listener_metadata=seccomp.get("listenerMetadata") or "",
                  skipped=compiled.skipped)
    filt.to_cache = to_cache
    return filt


def remember(filt: Filter | None) -> None:
    """Cache a filter compiled for a container that now exists (see compile_filter): a
    create that fails leaves nothing behind, not even a cache entry."""
    if filt is not None and filt.to_cache is not None:
        from pyoci import seccomp_cache

        seccomp_cache.store(*filt.to_cache)
        filt.to_cache = None


def _libseccomp_path() -> str | None:
    """The file of the libseccomp pyseccomp loaded (its identity keys the cache)."""
    with open("/proc/self/maps", "rb") as f:
        for line in f:
            path = line.rstrip(b"\n").partition(b" /")[2]
            if path and b"/libseccomp.so" in path:
                return "/" + path.decode()
    return None


def _compile(seccomp: dict, where: str):  # -> seccomp_cache.Compiled
    """The rules compiled by libseccomp, every rule checked (kernel flags aside)."""
    from pyoci.seccomp_cache import Compiled

    pyseccomp = _pyseccomp()

    default_name = seccomp.get("defaultAction")
    if default_name is None:
        raise ConfigError(f"{where}.defaultAction: required")
    if default_name == "SCMP_ACT_NOTIFY":
        raise ConfigError(f"{where}.defaultAction: SCMP_ACT_NOTIFY cannot be the default "
                          "action")
    default = _action(default_name, seccomp.get("defaultErrnoRet"),
                      f"{where}.defaultErrnoRet")
    try:
        filt = pyseccomp.SyscallFilter(default)
    except OSError as e:
        raise PyociError(f"{where}: libseccomp refused the default action: {e.strerror}") \
            from None
    for arch in seccomp.get("architectures") or []:
        if arch not in ARCHES:
            raise ConfigError(f"{where}.architectures: unknown architecture {arch!r}")
        try:
            filt.add_arch(getattr(pyseccomp.Arch, ARCHES[arch]))
        except OSError as e:
            if e.errno != errno.EEXIST:
                raise PyociError(f"{where}.architectures: cannot add {arch}: "
                                 f"{e.strerror}") from None
    notify = False
    skipped: list[str] = []
    for i, rule in enumerate(seccomp.get("syscalls") or []):
        here = f"{where}.syscalls[{i}]"
        if not isinstance(rule, dict):
            raise ConfigError(f"{here}: must be an object")
        names = rule.get("names")
        if not isinstance(names, list) or not names or \
                not all(isinstance(n, str) and n for n in names):
            raise ConfigError(f"{here}.names: must be a non-empty list of syscall names")
        action = _action(rule.get("action"), rule.get("errnoRet"), f"{here}.action")
        args = _args(rule, here)
        if action == _NOTIFY:
            bad = [n for n in names if n in NOTIFY_FORBIDDEN]
            if bad:
                raise ConfigError(f"{here}: SCMP_ACT_NOTIFY cannot be used for {bad[0]}: "
                                  "pyoci hands the listener its fd with it")
            notify = True
        if action == default:
            continue  # libseccomp refuses a rule that repeats the default, runc skips it
        for name in names:
            nr = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name)
            if nr == _NR_SCMP_ERROR:
                skipped.append(name)
                continue
            _add_rule(filt, action, nr, name, args, here)
    return Compiled(_export(filt, where), notify, skipped)


def _add_rule(filt, action: int, nr: int, name: str,
              args: list[tuple[int, int, int, int]], where: str) -> None:
    pyseccomp = _pyseccomp()
    conds = [pyseccomp.Arg(idx, op, a, b) for idx, op, a, b in args]
    indexes = [a[0] for a in args]
    # runc: args on distinct indexes are one rule (AND); a repeated index makes every
    # comparison a rule of its own (OR), since one rule cannot test an index twice.
    groups = [conds] if len(set(indexes)) == len(indexes) else [[c] for c in conds]
    for group in groups:
        try:
            filt.add_rule(action, nr, *group)
        except OSError as e:
            raise ConfigError(f"{where}: cannot add a rule for {name}: {e.strerror}") from None


def _export(filt, where: str) -> bytes:
    fd = os.memfd_create("pyoci-seccomp-bpf", os.MFD_CLOEXEC)
    try:
        class _F:
            def fileno(self) -> int:
                return fd

        try:
            filt.export_bpf(_F())
        except OSError as e:
            raise PyociError(f"{where}: cannot compile the filter: {e.strerror}") from None
        size = os.lseek(fd, 0, os.SEEK_CUR)
        bpf = os.pread(fd, size, 0)
    finally:
        os.close(fd)
    if len(bpf) // 8 > 4096:
        raise ConfigError(f"{where}: the filter compiles to {len(bpf) // 8} BPF instructions, "
                          "more than the kernel's limit of 4096")
    return bpf


# ---------------------------------------------------------------------------------------
# the listener (runtime side)


def connect_listener(path: str) -> int:
    """Connect to ``listenerPath`` (AF_UNIX, SOCK_STREAM); the fd, close-on-exec."""
    sock = unixsock.unix_socket()
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise PyociError(f"linux.seccomp.listenerPath: cannot connect to {path}: "
                         f"{e.strerror}") from None
    return sock.detach()


def process_state(filt: Filter, state: dict) -> bytes:
    """The runtime-spec "container process state" sent with the seccomp fd."""
    doc = {"ociVersion": state.get("ociVersion", "1.0.2"), "fds": ["seccompFd"],
           "pid": state.get("pid", 0), "metadata": filt.listener_metadata, "state": state}
    return jsonio.dumps(doc).encode()


def load_seccomp(seccomp: dict | Filter | None, state: dict | None = None,
                 listener: str | int | None = None) -> int | None:
    """Load a filter into this process now (for ``exec``'d processes).

    With SCMP_ACT_NOTIFY and a ``listener`` (path or connected fd) the listener fd is
    sent there with ``state`` and closed; otherwise it is returned.  Prefer
    :func:`pyoci.final.exec_final`, which loads the filter from C right before execve.
    """
    filt = seccomp if isinstance(seccomp, Filter) else compile_filter(seccomp)
    if filt is None:
        return None
    try:
        fd = sc.seccomp_load(filt.bpf, filt.flags)
    except OSError as e:
        raise PyociError(f"load seccomp filter: {e.strerror}") from None
    if not filt.notify:
        return None
    if listener is None:
        return fd
    sock_fd = connect_listener(listener) if isinstance(listener, str) else listener
    sock = unixsock.Socket(fileno=sock_fd)
    try:
        unixsock.send_fds(sock, [process_state(filt, state or {})], [fd])
    except OSError as e:
        raise PyociError(f"send seccomp notify fd to listenerPath: {e.strerror}") from None
    finally:
        sock.close()
        os.close(fd)
    return None
