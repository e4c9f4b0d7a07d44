"""``linux.resources`` as the cgroup backends use it, with runc's conversions.

:func:`from_spec` turns the OCI object into a flat dict shaped like runc's
``configs.Resources`` (0 or None means "leave alone"), keeping the JSON path of
each field for error messages.  :class:`DeviceRules` is the devices-cgroup v1
semantics (runc's emulator): the rules applied in order give a default (allow or
deny) and a set of exceptions, which v1 writes to devices.allow/deny and v2
compiles into a BPF program.
"""

from __future__ import annotations

import os

from pyoci import logger
from pyoci.cgroups import CgroupError

R = "linux.resources"
FIELDS = {
    "memory": f"{R}.memory.limit",
    "memory_reservation": f"{R}.memory.reservation",
    "memory_swap": f"{R}.memory.swap",
    "memory_swappiness": f"{R}.memory.swappiness",
    "oom_kill_disable": f"{R}.memory.disableOOMKiller",
    "memory_check_before_update": f"{R}.memory.checkBeforeUpdate",
    "cpu_shares": f"{R}.cpu.shares",
    "cpu_weight": f"{R}.cpu.shares",
    "cpu_quota": f"{R}.cpu.quota",
    "cpu_period": f"{R}.cpu.period",
    "cpu_burst": f"{R}.cpu.burst",
    "cpu_rt_runtime": f"{R}.cpu.realtimeRuntime",
    "cpu_rt_period": f"{R}.cpu.realtimePeriod",
    "cpuset_cpus": f"{R}.cpu.cpus",
    "cpuset_mems": f"{R}.cpu.mems",
    "cpu_idle": f"{R}.cpu.idle",
    "pids_limit": f"{R}.pids.limit",
    "blkio_weight": f"{R}.blockIO.weight",
    "blkio_leaf_weight": f"{R}.blockIO.leafWeight",
    "blkio_weight_device": f"{R}.blockIO.weightDevice",
    "throttle_read_bps": f"{R}.blockIO.throttleReadBpsDevice",
    "throttle_write_bps": f"{R}.blockIO.throttleWriteBpsDevice",
    "throttle_read_iops": f"{R}.blockIO.throttleReadIOPSDevice",
    "throttle_write_iops": f"{R}.blockIO.throttleWriteIOPSDevice",
    "hugetlb": f"{R}.hugepageLimits",
    "net_cls_classid": f"{R}.network.classID",
    "net_prio_ifpriomap": f"{R}.network.priorities",
    "rdma": f"{R}.rdma",
    "unified": f"{R}.unified",
    "devices": f"{R}.devices",
}


def empty() -> dict:
    return {
        "memory": 0, "memory_reservation": 0, "memory_swap": 0, "memory_swappiness": None,
        "oom_kill_disable": False, "memory_check_before_update": False,
        "cpu_shares": 0, "cpu_weight": 0, "cpu_quota": 0, "cpu_period": 0, "cpu_burst": None,
        "cpu_rt_runtime": 0, "cpu_rt_period": 0, "cpuset_cpus": "", "cpuset_mems": "",
        "cpu_idle": None, "pids_limit": None,
        "blkio_weight": 0, "blkio_leaf_weight": 0, "blkio_weight_device": [],
        "throttle_read_bps": [], "throttle_write_bps": [], "throttle_read_iops": [],
        "throttle_write_iops": [],
        "hugetlb": [], "net_cls_classid": 0, "net_prio_ifpriomap": [], "rdma": {},
        "unified": {}, "devices": [],
    }


# runc's specconv.AllowedDevices rules, appended after the config's own.
# (type, major, minor, access, path or None)
DEFAULT_ALLOWED = [
    ("c", -1, -1, "m", None),
    ("b", -1, -1, "m", None),
    ("c", 1, 3, "rwm", "/dev/null"),
    ("c", 1, 8, "rwm", "/dev/random"),
    ("c", 1, 7, "rwm", "/dev/full"),
    ("c", 5, 0, "rwm", "/dev/tty"),
    ("c", 1, 5, "rwm", "/dev/zero"),
    ("c", 1, 9, "rwm", "/dev/urandom"),
    ("c", 136, -1, "rwm", None),
    ("c", 5, 2, "rwm", None),
    ("c", 10, 200, "rwm", None),
]


def from_spec(config: dict) -> dict:
    """The config's ``linux.resources`` (and the default device rules), normalised."""
    linux = config.get("linux") or {}
    r = linux.get("resources") or {}
    res = empty()
    for i, d in enumerate(r.get("devices") or []):
        access = d.get("access") or ""
        if not access:
            raise CgroupError(f"{R}.devices[{i}].access: device access cannot be empty")
        if set(access) - set("rwm"):
            raise CgroupError(f"{R}.devices[{i}].access: invalid access {access!r} "
                              "(a combination of r, w and m)")
        dtype = d.get("type") or "a"
        if dtype not in ("a", "b", "c"):
            raise CgroupError(f"{R}.devices[{i}].type: invalid cgroup device type {dtype!r}")
        major = d.get("major", -1)
        minor = d.get("minor", -1)
        res["devices"].append([dtype, -1 if major is None else major,
                               -1 if minor is None else minor, access, bool(d.get("allow"))])
    spec_paths = {d.get("path") for d in linux.get("devices") or []}
    for dtype, major, minor, access, path in DEFAULT_ALLOWED:
        if path is None or path not in spec_paths:
            res["devices"].append([dtype, major, minor, access, True])
    mem = r.get("memory") or {}
    res["memory"] = mem.get("limit") or 0
    res["memory_reservation"] = mem.get("reservation") or 0
    res["memory_swap"] = mem.get("swap") or 0
    if mem.get("kernel") is not None or mem.get("kernelTCP") is not None:
        logger.warning("kernel memory settings are ignored and will be removed")
    res["memory_swappiness"] = mem.get("swappiness")
    res["oom_kill_disable"] = bool(mem.get("disableOOMKiller"))
    res["memory_check_before_update"] = bool(mem.get("checkBeforeUpdate"))
    cpu = r.get("cpu") or {}
    if cpu.get("shares") is not None:
        res["cpu_shares"] = cpu["shares"]
        res["cpu_weight"] = shares_to_weight(cpu["shares"])
    res["cpu_quota"] = cpu.get("quota") or 0
    res["cpu_burst"] = cpu.get("burst")
    res["cpu_period"] = cpu.get("period") or 0
    res["cpu_rt_runtime"] = cpu.get("realtimeRuntime") or 0
    res["cpu_rt_period"] = cpu.get("realtimePeriod") or 0
    res["cpuset_cpus"] = cpu.get("cpus") or ""
    res["cpuset_mems"] = cpu.get("mems") or ""
    res["cpu_idle"] = cpu.get("idle")
    if (r.get("pids") or {}).get("limit") is not None:
        res["pids_limit"] = r["pids"]["limit"]
    bio = r.get("blockIO") or {}
    res["blkio_weight"] = bio.get("weight") or 0
    res["blkio_leaf_weight"] = bio.get("leafWeight") or 0
    res["blkio_weight_device"] = [[w["major"], w["minor"], w.get("weight") or 0,
                                   w.get("leafWeight") or 0]
                                  for w in bio.get("weightDevice") or []]
    for key, name in (("throttle_read_bps", "throttleReadBpsDevice"),
                      ("throttle_write_bps", "throttleWriteBpsDevice"),
                      ("throttle_read_iops", "throttleReadIOPSDevice"),
                      ("throttle_write_iops", "throttleWriteIOPSDevice")):
        res[key] = [[t["major"], t["minor"], t["rate"]] for t in bio.get(name) or []]
    res["hugetlb"] = [[h["pageSize"], h["limit"]] for h in r.get("hugepageLimits") or []]
    net = r.get("network") or {}
    res["net_cls_classid"] = net.get("classID") or 0
    res["net_prio_ifpriomap"] = [[p["name"], p["priority"]] for p in net.get("priorities") or []]
    res["rdma"] = {k: [v.get("hcaHandles"), v.get("hcaObjects")]
                   for k, v in (r.get("rdma") or {}).items()}
    res["unified"] = dict(r.get("unified") or {})
    check(res)
    return res


def check(res: dict) -> None:
    """Checks that need no cgroup: the spec's MUSTs and runc's validation."""
    quota, burst = res["cpu_quota"], res["cpu_burst"]
    if burst is not None and quota > 0 and burst > quota:
        raise CgroupError(f"{FIELDS['cpu_burst']}: burst ({burst}) must not be larger than "
                          f"quota ({quota})")
    mem, swap = res["memory"], res["memory_swap"]
    if mem > 0 and swap > 0 and swap < mem:
        raise CgroupError(f"{FIELDS['memory_swap']}: memory+swap limit ({swap}) should be "
                          f">= memory limit ({mem})")
    sw = res["memory_swappiness"]
    if sw is not None and sw != -1 and not 0 <= sw <= 100:
        raise CgroupError(f"{FIELDS['memory_swappiness']}: invalid value {sw}: valid memory "
                          "swappiness range is 0-100")
    if res["cpu_idle"] not in (None, 0, 1):
        raise CgroupError(f"{FIELDS['cpu_idle']}: invalid value {res['cpu_idle']}: "
                          "must be 0 or 1")
    for i, (size, _limit) in enumerate(res["hugetlb"]):
        if size not in hugepage_sizes():
            have = ", ".join(sorted(hugepage_sizes(), key=page_size_bytes)) or "none"
            raise CgroupError(f"{R}.hugepageLimits[{i}].pageSize: huge page size {size!r} "
                              f"is not supported by this kernel (it has: {have})")
    for key in res["unified"]:
        if "/" in key or key in (".", ".."):
            raise CgroupError(f"{R}.unified[{key!r}]: must be a file name (no slashes)")
        if "." not in key.strip("."):
            raise CgroupError(f"{R}.unified[{key!r}]: must be of the form "
                              "<controller>.<parameter>")
    for name, (handles, objects) in res["rdma"].items():
        if handles is None and objects is None:
            raise CgroupError(f"{R}.rdma[{name!r}]: at least one of hcaHandles and "
                              "hcaObjects must be set")
    DeviceRules.build(res["devices"])  # rejects rules v1 cannot express


def shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu.shares [2, 262144] to v2 cpu.weight [1, 10000] (runc's curve).

    A quadratic in log2(shares) through (2, 1), (1024, 100) and (262144, 10000).
    """
    if shares == 0:
        return 0
    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    import math  # here: most configs set no cpu shares

    lg = math.log2(shares)
    exponent = (lg * lg + 125 * lg) / 612.0 - 7.0 / 34.0
    return math.ceil(10 ** exponent)


def blkio_to_io_weight(weight: int) -> int:
    """blkio.weight [10, 1000] to io.weight [1, 10000] (runc's linear map)."""
    if weight == 0:
        return 0
    return 1 + (weight - 10) * 9999 // 990


def swap_to_v2(swap: int, memory: int) -> int:
    """v1's memory+swap limit to v2's swap-only one (runc's conversion); -1 is max."""
    if memory == -1 and swap == 0:
        return -1
    if swap in (-1, 0):
        return swap
    if memory in (0, -1):
        raise CgroupError(f"{FIELDS['memory_swap']}: unable to set swap limit without "
                          "memory limit")
    if memory < 0:
        raise CgroupError(f"{FIELDS['memory']}: invalid memory value {memory}")
    if swap < memory:
        raise CgroupError(f"{FIELDS['memory_swap']}: memory+swap limit ({swap}) should be "
                          f">= memory limit ({memory})")
    return swap - memory


# re is imported by the two functions below, on their first call: only hugepage limits
# need them, and re costs ~4 ms to import on every create.
def page_size_bytes(size: str) -> int:
    import re

    m = re.match(r"^(\d+)([KMGTP]?)B$", size)
    if not m:
        return 0
    return int(m.group(1)) * 1024 ** " KMGTP".index(m.group(2) or " ")


def hugepage_sizes() -> set[str]:
    """The kernel's huge page sizes as cgroup files name them (2MB, 1GB)."""
    import re

    sizes = set()
    try:
        names = os.listdir("/sys/kernel/mm/hugepages")
    except OSError:
        return sizes
    for name in names:
        m = re.match(r"hugepages-(\d+)kB$", name)
        if not m:
            continue
        kb = int(m.group(1))
        unit = 0
        while kb >= 1024 and kb % 1024 == 0 and unit < 3:
            kb //= 1024
            unit += 1
        sizes.add(f"{kb}{'KMGT'[unit]}B")
    return sizes


# --- devices ----------------------------------------------------------------------------


class DeviceRules:
    """The devices cgroup state the rules lead to, computed as cgroup v1 would.

    ``default_allow``: what is not an exception.  ``exceptions``: {(type, major,
    minor): access} with -1 for a wildcard; they deny in allow mode and allow in
    deny mode.  A new cgroup starts as deny-all (runc's emulator default).
    """

    def __init__(self) -> None:
        self.default_allow = False
        self.exceptions: dict[tuple[str, int, int], str] = {}

    @classmethod
    def build(cls, rules: list) -> DeviceRules:
        emu = cls()
        for i, (dtype, major, minor, access, allow) in enumerate(rules):
            try:
                emu.apply(dtype, major, minor, access, allow)
            except CgroupError as e:
                raise CgroupError(f"{R}.devices[{i}]: {e}") from None
        return emu

    def apply(self, dtype: str, major: int, minor: int, access: str, allow: bool) -> None:
        if dtype == "a":
            # "a" is always "a *:* rwm" in the kernel: it resets to allow-all or deny-all.
            self.default_allow = allow
            self.exceptions = {}
            return
        key = (dtype, major, minor)
        if allow == self.default_allow:
            self._remove(key, access)
        else:
            merged = set(self.exceptions.get(key, "")) | set(access)
            self.exceptions[key] = "".join(c for c in "rwm" if c in merged)

    def _remove(self, key: tuple[str, int, int], access: str) -> None:
        dtype, major, minor = key
        for partial in ((dtype, -1, minor), (dtype, major, -1), (dtype, -1, -1)):
            if partial == key:
                continue
            if set(self.exceptions.get(partial, "")) & set(access):
                raise CgroupError(
                    f"rule {_rule_str(dtype, major, minor, access)} cannot punch a hole in "
                    f"the wildcard rule {_rule_str(*partial, self.exceptions[partial])}")
        left = "".join(c for c in self.exceptions.get(key, "") if c not in access)
        if left:
            self.exceptions[key] = left
        else:
            self.exceptions.pop(key, None)

    def sorted_exceptions(self) -> list[tuple[str, int, int, str]]:
        return [(t, ma, mi, acc) for (t, ma, mi), acc in sorted(self.exceptions.items())]

    def v1_lines(self) -> list[tuple[str, str]]:
        """(file, line) writes taking a fresh v1 devices cgroup to this state."""
        reset = ("devices.allow", "a") if self.default_allow else ("devices.deny", "a")
        target = "devices.deny" if self.default_allow else "devices.allow"
        return [reset] + [(target, _rule_str(*e)) for e in self.sorted_exceptions()]


def _rule_str(dtype: str, major: int, minor: int, access: str) -> str:
    ma = "*" if major < 0 else str(major)
    mi = "*" if minor < 0 else str(minor)
    return f"{dtype} {ma}:{mi} {access}"
