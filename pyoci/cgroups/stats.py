"""Container statistics shaped like runc's ``events --stats`` (runc's types.Stats)."""

from __future__ import annotations

import os

from pyoci.cgroups.common import read_file, read_int, read_kv

MAX = 2 ** 64 - 1


def empty_stats() -> dict:
    return {
        "cpu": {"usage": {"kernel": 0, "user": 0}, "throttling": {}},
        "cpuset": {"cpu_exclusive": 0, "mem_hardwall": 0, "mem_exclusive": 0,
                   "memory_migrate": 0, "memory_spread_page": 0, "memory_spread_slab": 0,
                   "memory_pressure": 0, "sched_load_balance": 0, "sched_relax_domain_level": 0},
        "memory": {"usage": {"limit": 0, "failcnt": 0}, "swap": {"limit": 0, "failcnt": 0},
                   "kernel": {"limit": 0, "failcnt": 0}, "kernelTCP": {"limit": 0, "failcnt": 0}},
        "pids": {},
        "blkio": {},
        "hugetlb": {},
        "intel_rdt": {},
        "network_interfaces": None,
    }


def _set(d: dict, key: str, value) -> None:
    """Go's omitempty: zero values and empty lists/maps are left out."""
    if value:
        d[key] = value


def parse_list(text: str) -> list[int]:
    """A cpuset list ("0-3,7") as numbers."""
    out: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def _psi(path: str) -> dict | None:
    try:
        text = read_file(path)
    except OSError:
        return None
    psi = {}
    for line in text.splitlines():
        kind, *fields = line.split()
        data = {}
        for f in fields:
            k, _, v = f.partition("=")
            data[k] = float(v) if "." in v else int(v)
        psi[kind] = data
    return psi or None


def _cpuset(s: dict, d: str, prefix: str = "cpuset.") -> None:
    try:
        _set(s["cpuset"], "cpus", parse_list(read_file(os.path.join(d, prefix + "effective_cpus"))))
        _set(s["cpuset"], "mems", parse_list(read_file(os.path.join(d, prefix + "effective_mems"))))
    except OSError:
        pass


def v2_stats(d: str) -> dict:
    s = empty_stats()
    cpu = read_kv(os.path.join(d, "cpu.stat"))
    usage = s["cpu"]["usage"]
    _set(usage, "total", cpu.get("usage_usec", 0) * 1000)
    usage["kernel"] = cpu.get("system_usec", 0) * 1000
    usage["user"] = cpu.get("user_usec", 0) * 1000
    thr = s["cpu"]["throttling"]
    _set(thr, "periods", cpu.get("nr_periods", 0))
    _set(thr, "throttledPeriods", cpu.get("nr_throttled", 0))
    _set(thr, "throttledTime", cpu.get("throttled_usec", 0) * 1000)
    if psi := _psi(os.path.join(d, "cpu.pressure")):
        s["cpu"]["psi"] = psi
    _cpuset(s, d)
    mem = s["memory"]
    raw = read_kv(os.path.join(d, "memory.stat"))
    _set(mem, "cache", raw.get("file", 0))
    events = read_kv(os.path.join(d, "memory.events"))
    usage = {"limit": read_int(os.path.join(d, "memory.max"), MAX), "failcnt": events.get("max", 0)}
    _set(usage, "usage", read_int(os.path.join(d, "memory.current")))
    _set(usage, "max", read_int(os.path.join(d, "memory.peak")))
    mem["usage"] = usage
    if os.path.exists(os.path.join(d, "memory.swap.current")):
        swap = {"limit": read_int(os.path.join(d, "memory.swap.max"), MAX), "failcnt": 0}
        _set(swap, "usage", read_int(os.path.join(d, "memory.swap.current")))
        mem["swap"] = swap
    _set(mem, "raw", raw)
    if psi := _psi(os.path.join(d, "memory.pressure")):
        mem["psi"] = psi
    mem["event_count"] = {k: events.get(k, 0) for k in ("low", "high", "max", "oom", "oom_kill")}
    _set(s["pids"], "current", read_int(os.path.join(d, "pids.current")))
    limit = read_int(os.path.join(d, "pids.max"))
    _set(s["pids"], "limit", 0 if limit == MAX else limit)
    entries = {"ioServiceBytesRecursive": [], "ioServicedRecursive": []}
    try:
        io_text = read_file(os.path.join(d, "io.stat"))
    except OSError:
        io_text = ""
    for line in io_text.splitlines():
        dev, *fields = line.split()
        major, _, minor = dev.partition(":")
        kv = dict(f.split("=", 1) for f in fields if "=" in f)
        for key, op, name in (("rbytes", "Read", "ioServiceBytesRecursive"),
                              ("wbytes", "Write", "ioServiceBytesRecursive"),
                              ("rios", "Read", "ioServicedRecursive"),
                              ("wios", "Write", "ioServicedRecursive")):
            if key in kv:
                e = {"op": op}
                _set(e, "major", int(major))
                _set(e, "minor", int(minor))
                _set(e, "value", int(kv[key]))
                entries[name].append(e)
    for name, value in entries.items():
        _set(s["blkio"], name, value)
    if psi := _psi(os.path.join(d, "io.pressure")):
        s["blkio"]["psi"] = psi
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        if name.startswith("hugetlb.") and name.endswith(".current") and ".rsvd." not in name:
            size = name[len("hugetlb."):-len(".current")]
            h = {"failcnt": read_kv(os.path.join(d, f"hugetlb.{size}.events")).get("max", 0)}
            _set(h, "usage", read_int(os.path.join(d, name)))
            s["hugetlb"][size] = h
    return s


def v1_stats(manager) -> dict:
    s = empty_stats()
    d = manager.dir_of("cpuacct")
    if d:
        usage = s["cpu"]["usage"]
        _set(usage, "total", read_int(os.path.join(d, "cpuacct.usage")))
        try:
            percpu = [int(x) for x in read_file(os.path.join(d, "cpuacct.usage_percpu")).split()]
        except OSError:
            percpu = []
        _set(usage, "percpu", percpu)
        ticks = os.sysconf("SC_CLK_TCK")
        acct = read_kv(os.path.join(d, "cpuacct.stat"))
        usage["kernel"] = acct.get("system", 0) * 1_000_000_000 // ticks
        usage["user"] = acct.get("user", 0) * 1_000_000_000 // ticks
    d = manager.dir_of("cpu")
    if d:
        cpu = read_kv(os.path.join(d, "cpu.stat"))
        thr = s["cpu"]["throttling"]
        _set(thr, "periods", cpu.get("nr_periods", 0))
        _set(thr, "throttledPeriods", cpu.get("nr_throttled", 0))
        _set(thr, "throttledTime", cpu.get("throttled_time", 0))
    d = manager.dir_of("cpuset")
    if d:
        _cpuset(s, d)
    d = manager.dir_of("memory")
    if d:
        mem = s["memory"]
        raw = read_kv(os.path.join(d, "memory.stat"))
        _set(mem, "cache", raw.get("cache", 0))
        for key, name in (("usage", ""), ("swap", "memsw."), ("kernel", "kmem."),
                          ("kernelTCP", "kmem.tcp.")):
            base = os.path.join(d, f"memory.{name}")
            if not os.path.exists(base + "usage_in_bytes"):
                continue
            entry = {"limit": read_int(base + "limit_in_bytes"),
                     "failcnt": read_int(base + "failcnt")}
            _set(entry, "usage", read_int(base + "usage_in_bytes"))
            _set(entry, "max", read_int(base + "max_usage_in_bytes"))
            mem[key] = entry
        _set(mem, "raw", raw)
        oom = read_kv(os.path.join(d, "memory.oom_control"))
        mem["event_count"] = {"oom_kill": oom.get("oom_kill", 0)}
    d = manager.dir_of("pids")
    if d:
        _set(s["pids"], "current", read_int(os.path.join(d, "pids.current")))
        limit = read_int(os.path.join(d, "pids.max"))
        _set(s["pids"], "limit", 0 if limit == 2 ** 64 - 1 else limit)
    d = manager.dir_of("blkio")
    if d:
        for name, file in (("ioServiceBytesRecursive", "blkio.throttle.io_service_bytes_recursive"),
                           ("ioServicedRecursive", "blkio.throttle.io_serviced_recursive")):
            entries = []
            try:
                text = read_file(os.path.join(d, file))
            except OSError:
                text = ""
            for line in text.splitlines():
                parts = line.split()
                if len(parts) == 3 and ":" in parts[0]:
                    major, _, minor = parts[0].partition(":")
                    e = {"op": parts[1]}
                    _set(e, "major", int(major))
                    _set(e, "minor", int(minor))
                    _set(e, "value", int(parts[2]))
                    entries.append(e)
            _set(s["blkio"], name, entries)
    d = manager.dir_of("hugetlb")
    if d:
        for name in sorted(os.listdir(d)):
            if name.endswith(".usage_in_bytes") and ".rsvd." not in name:
                size = name[len("hugetlb."):-len(".usage_in_bytes")]
                h = {"failcnt": read_int(os.path.join(d, f"hugetlb.{size}.failcnt"))}
                _set(h, "usage", read_int(os.path.join(d, name)))
                _set(h, "max", read_int(os.path.join(d, f"hugetlb.{size}.max_usage_in_bytes")))
                s["hugetlb"][size] = h
    elif manager.unified is not None:
        s["hugetlb"] = v2_stats(manager.unified.path)["hugetlb"]
    return s
