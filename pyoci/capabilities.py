"""Capabilities: the five sets of ``process.capabilities``, applied with python-prctl.

:func:`parse` runs in the runtime, before anything is forked, so that a bad name is a
one-line error and nothing is left behind: a name no kernel knows is an error; a name
this kernel lacks (beyond ``/proc/sys/kernel/cap_last_cap``), or one the runtime cannot
grant because it is outside its own bounding set, is ignored with a warning (as runc
does, and as the runtime-spec asks: warn, do not fail).

:func:`apply_capabilities` runs in the process that becomes the container's (init, or a
process joining it with ``exec``):

1. drop from the bounding set everything not in ``bounding`` (needs CAP_SETPCAP, so
   before the user switch);
2. switch to the configured user with PR_SET_KEEPCAPS, so permitted survives setuid;
3. set effective, permitted and inheritable in one capset(2);
4. raise the ambient set.

A missing ``capabilities`` object, or a missing set, means an empty set (runc's
behaviour: a config without capabilities runs with none).

python-prctl is called through its C module ``_prctl``: its ``prctl`` wrapper module builds
a property per capability and a function per prctl option at import, a millisecond on
the path of every container's init that none of these calls needs. Only the container's
processes import it, before they lose the host's files: init's in stage1 (its module,
:mod:`pyoci.init`, is imported there), exec's in the runtime before it forks
(:mod:`pyoci.container.exec`); the imports below find it loaded.
"""

from __future__ import annotations

from pyoci import logger
from pyoci import syscalls as sc
from pyoci.errors import ConfigError, PyociError

TYPE_CHECKING = False  # collections.abc (and collections with it) not imported at run time
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

# Capability names indexed by number, as in linux/capability.h.
CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
    "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON",
    "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
CAP_NUMBERS = {name: i for i, name in enumerate(CAPABILITIES)}
CAP_SYS_ADMIN = CAP_NUMBERS["CAP_SYS_ADMIN"]
SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")


_last_cap: list[int] = []  # the kernel's answer, once read (functools.cache: collections)


def last_cap() -> int:
    """The highest capability number the running kernel knows."""
    if not _last_cap:
        try:
            with open("/proc/sys/kernel/cap_last_cap") as f:
                _last_cap.append(int(f.read()))
        except (OSError, ValueError):
            _last_cap.append(len(CAPABILITIES) - 1)
    return _last_cap[0]


def own_bounding() -> frozenset[int]:
    """The capabilities this process (the runtime) may ever hold."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    mask = int(line.split()[1], 16)
                    return frozenset(i for i in range(64) if mask >> i & 1)
    except (OSError, ValueError):
        pass
    return frozenset(range(last_cap() + 1))


class CapSets:
    """The five sets as capability numbers (all within the kernel's range).

    A plain class compared by value, never changed once made: dataclasses would cost
    every create the import of inspect and ast, namedtuple that of collections.
    """

    __slots__ = SETS

    def __init__(self, bounding: frozenset[int] = frozenset(),
                 effective: frozenset[int] = frozenset(),
                 inheritable: frozenset[int] = frozenset(),
                 permitted: frozenset[int] = frozenset(),
                 ambient: frozenset[int] = frozenset()) -> None:
        self.bounding = bounding
        self.effective = effective
        self.inheritable = inheritable
        self.permitted = permitted
        self.ambient = ambient

    def _sets(self) -> tuple[frozenset[int], ...]:
        return tuple(getattr(self, name) for name in SETS)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CapSets):
            return NotImplemented
        return self._sets() == other._sets()

    def __hash__(self) -> int:
        return hash(self._sets())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in SETS)
        return f"CapSets({fields})"

    @staticmethod
    def mask(caps: Iterable[int]) -> int:
        bits = 0
        for cap in caps:
            bits |= 1 << cap
        return bits

    def words(self) -> list[int]:
        """effective, permitted, inheritable as capset(2) low/high 32-bit words."""
        eff, perm = self.mask(self.effective), self.mask(self.permitted)
        out = []
        for m in (eff, perm, self.mask(self.inheritable)):
            out += [m & 0xFFFFFFFF, (m >> 32) & 0xFFFFFFFF]
        return out


def parse(caps: dict | None, where: str = "process.capabilities") -> CapSets:
    """Names to numbers; unknown names are a ConfigError, unavailable ones a warning."""
    if caps is None:
        return CapSets()
    if not isinstance(caps, dict):
        raise ConfigError(f"{where}: must be an object")
    last = last_cap()
    sets: dict[str, frozenset[int]] = {}
    unavailable: set[str] = set()
    for name in SETS:
        values = caps.get(name) or []
        if not isinstance(values, list):
            raise ConfigError(f"{where}.{name}: must be a list of capability names")
        nums = set()
        for cap in values:
            key = cap if isinstance(cap, str) else ""
            if key not in CAP_NUMBERS:
                raise ConfigError(f"{where}.{name}: unknown capability {cap!r}")
            if CAP_NUMBERS[key] > last:
                unavailable.add(key)
                continue
            nums.add(CAP_NUMBERS[key])
        sets[name] = frozenset(nums)
    if unavailable:
        logger.warning("ignoring capabilities the kernel does not support: %s",
                    ", ".join(sorted(unavailable)))
    # What the runtime itself may never hold (outside its bounding set) cannot be granted:
    # the runtime-spec asks for a warning, not a failure ("a restricted environment").
    own = own_bounding()
    cannot = sorted(set().union(*(sets[n] for n in SETS)) - own)
    if cannot:
        logger.warning("ignoring capabilities that cannot be granted (not in the runtime's "
                    "bounding set): %s", ", ".join(CAPABILITIES[c] for c in cannot))
        sets = {n: v & own for n, v in sets.items()}
    # An ambient capability must be permitted and inheritable or the kernel refuses it.
    ambient = sets["ambient"] & sets["permitted"] & sets["inheritable"]
    dropped = sets["ambient"] - ambient
    if dropped:
        logger.debug("%s.ambient: not raised (not in permitted and inheritable): %s", where,
                  ", ".join(CAPABILITIES[c] for c in sorted(dropped)))
    return CapSets(sets["bounding"], sets["effective"], sets["inheritable"],
                   sets["permitted"], ambient)


def to_caps(caps: dict | CapSets | None) -> CapSets:
    return caps if isinstance(caps, CapSets) else parse(caps)


def drop_bounding(caps: CapSets, keep: Iterable[int] = ()) -> None:
    """Drop from the bounding set every capability not configured in it (or kept)."""
    import _prctl

    kept = caps.bounding | frozenset(keep)
    for cap in range(last_cap() + 1):
        if cap not in kept:
            try:
                _prctl.prctl(_prctl.PR_CAPBSET_DROP, cap)
            except OSError as e:
                raise PyociError(f"drop {CAPABILITIES[cap]} from the bounding set: "
                                 f"{e.strerror}") from None


def set_caps(caps: CapSets, keep: Iterable[int] = ()) -> None:
    """effective/permitted/inheritable in one capset, then the ambient set.

    ``keep`` is added to every set, ambient included, so that it survives the execve of
    the final step's trampoline whatever the user (see :func:`apply_capabilities`).
    """
    import _prctl

    extra = frozenset(keep)
    every = range(last_cap() + 1)
    wanted = (caps.effective | extra, caps.permitted | extra, caps.inheritable | extra)
    raised = [[c for c in every if c in on] for on in wanted]
    dropped = [[c for c in every if c not in on] for on in wanted]
    try:
        _prctl.set_caps(*raised, *dropped)  # one capset(2): (e, p, i) raised, then dropped
    except OSError as e:
        raise PyociError(f"set capabilities: {e.strerror}") from None
    try:
        sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_CLEAR_ALL)
        for cap in sorted(caps.ambient | extra):
            sc.prctl(sc.PR_CAP_AMBIENT, sc.PR_CAP_AMBIENT_RAISE, cap)
    except OSError as e:
        raise PyociError(f"raise ambient capabilities: {e.strerror}") from None


def apply_capabilities(caps: dict | CapSets | None, *,
                       switch_user: Callable[[], None] | None = None,
                       keep: Iterable[int] = ()) -> CapSets:
    """Bounding set, then ``switch_user()`` keeping permitted caps, then the other sets.

    ``keep`` stays in every set beyond the config: init keeps CAP_SYS_ADMIN (and
    CAP_SETPCAP) when a seccomp filter must be loaded without no_new_privs; the final
    exec step drops them right after loading.  Returns the parsed sets.
    """
    import _prctl

    sets = to_caps(caps)
    drop_bounding(sets, keep)
    if switch_user is not None:
        _prctl.prctl(_prctl.PR_SET_KEEPCAPS, True)
        try:
            switch_user()
        finally:
            _prctl.prctl(_prctl.PR_SET_KEEPCAPS, False)
    set_caps(sets, keep)
    return sets


def set_no_new_privs() -> None:
    import _prctl

    try:
        _prctl.prctl(_prctl.PR_SET_NO_NEW_PRIVS, True)
    except OSError as e:
        raise PyociError(f"set no_new_privs: {e.strerror}") from None


def set_dumpable(dumpable: bool) -> None:
    """PR_SET_DUMPABLE: a non-dumpable process's /proc files (exe, fd, mem, environ)
    are out of reach of processes without CAP_SYS_PTRACE over the host, and it cannot
    be ptrace-attached (CVE-2016-9962, CVE-2019-5736)."""
    import _prctl

    _prctl.prctl(_prctl.PR_SET_DUMPABLE, dumpable)


def names(mask: int) -> list[str]:
    """Capability names of a /proc/<pid>/status Cap* mask (for messages and tests)."""
    return [CAPABILITIES[i] if i < len(CAPABILITIES) else f"CAP_{i}"
            for i in range(64) if mask >> i & 1]
