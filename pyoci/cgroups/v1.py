"""The cgroup v1 backend, for legacy and hybrid hosts: one directory per hierarchy.

Each controller is used where it is mounted.  On a hybrid host the cgroup2 mount is
one more hierarchy: the container joins it too, ``unified`` keys are written
there, and a controller that only v2 holds (hugetlb, on some hosts) is used there.
"""

from __future__ import annotations

import _signal  # signal's C core: signal.py's enums import enum, functools, collections
import os

from pyoci.cgroups import CgroupError, cgroup_pids
from pyoci.cgroups import common as c
from pyoci.cgroups.resources import FIELDS, DeviceRules

R = "linux.resources"


class V1Manager:
    version = 1

    def __init__(self, paths: dict[str, tuple[list[str], str]]) -> None:
        # mount point -> (controllers, the container's directory); [] is the v2 mount
        self.paths = {mnt: (list(ctrls), d) for mnt, (ctrls, d) in paths.items()}
        self.created: list[str] = []
        self.claimed = False
        self.unified = None
        for mnt, (ctrls, d) in self.paths.items():
            if not ctrls:
                from pyoci.cgroups.v2 import V2Manager

                self.unified = V2Manager(d, mountpoint=mnt)

    # --- layout ---

    def dir_of(self, controller: str) -> str | None:
        for ctrls, d in self.paths.values():
            if controller in ctrls:
                return d
        return None

    def dirs(self) -> list[str]:
        return [d for _ctrls, d in self.paths.values()]

    def procs_dir(self) -> str:
        for ctrl in ("pids", "freezer", "devices", "memory", "cpu"):
            d = self.dir_of(ctrl)
            if d:
                return d
        return self.dirs()[0]

    def mount_dirs(self) -> dict[str, str]:
        return {mnt: d for mnt, (_ctrls, d) in self.paths.items()}

    def freezer_file(self) -> str | None:
        d = self.dir_of("freezer")
        if d:
            return os.path.join(d, "freezer.state")
        return self.unified.freezer_file() if self.unified else None

    def to_state(self) -> dict:
        return {"version": 1, "paths": {mnt: [ctrls, d] for mnt, (ctrls, d) in self.paths.items()},
                "procs": self.procs_dir()}

    # --- create ---

    def create(self) -> None:
        for mnt, (ctrls, d) in self.paths.items():
            if not ctrls:
                assert self.unified is not None
                self.unified.create()
                self.created += self.unified.created
                continue
            on_new = _copy_cpuset if "cpuset" in ctrls else None
            c.make_dirs(d, mnt, self.created, on_new)
            # one just made is empty; one that was there may hold another container
            pids = cgroup_pids(d) if d not in self.created else []
            if pids:
                raise CgroupError(f"linux.cgroupsPath: container's cgroup {d} is not empty: "
                                  f"{len(pids)} process(es) found")
        freezer = self.dir_of("freezer")
        if freezer and c.read_file(os.path.join(freezer, "freezer.state")).strip() != "THAWED":
            raise CgroupError(f"linux.cgroupsPath: container's cgroup {freezer} is "
                              "unexpectedly frozen")
        self.claimed = True

    def abort(self) -> None:
        """Undo a failed create: kill its processes, remove the directories it made."""
        c.abort(self)

    def join(self, pid: int, *, defer: bool = False) -> c.DeferredJoin | None:
        """Move ``pid`` into every hierarchy.  With ``defer``, the join of the cgroup2
        mount is left to the DeferredJoin returned."""
        v1 = [d for ctrls, d in self.paths.values() if ctrls]
        c.join_self_v1(v1, pid)
        if self.unified is None:
            return None
        return self.unified.join(pid, defer=defer)

    # --- resources ---

    def check(self, res: dict) -> None:
        for ctrl, field in self._needed(res):
            if self.dir_of(ctrl) is None and not self._in_unified(ctrl):
                raise CgroupError(f"{field}: the {ctrl} cgroup controller is not available "
                                  "on this host")
        w = c.missing(self.writes(res, dry_run=True))
        if w is not None:
            raise c.not_supported(w)

    def _in_unified(self, ctrl: str) -> bool:
        from pyoci.cgroups import v2_controllers

        return self.unified is not None and ctrl in v2_controllers(self.unified.path)

    def _needed(self, res: dict) -> list[tuple[str, str]]:
        need = []
        if res["memory"] or res["memory_reservation"] or res["memory_swap"] \
                or res["oom_kill_disable"] or res["memory_swappiness"] not in (None, -1):
            need.append(("memory", FIELDS["memory"]))
        if res["pids_limit"] is not None:
            need.append(("pids", FIELDS["pids_limit"]))
        for key in ("cpu_shares", "cpu_quota", "cpu_period", "cpu_rt_runtime",
                    "cpu_rt_period"):
            if res[key]:
                need.append(("cpu", FIELDS[key]))
        for key in ("cpu_burst", "cpu_idle"):
            if res[key] is not None:
                need.append(("cpu", FIELDS[key]))
        if res["cpuset_cpus"] or res["cpuset_mems"]:
            need.append(("cpuset", FIELDS["cpuset_cpus"]))
        for key in ("blkio_weight", "blkio_leaf_weight", "blkio_weight_device",
                    "throttle_read_bps", "throttle_write_bps", "throttle_read_iops",
                    "throttle_write_iops"):
            if res[key]:
                need.append(("blkio", FIELDS[key]))
        if res["hugetlb"]:
            need.append(("hugetlb", FIELDS["hugetlb"]))
        if res["net_cls_classid"]:
            need.append(("net_cls", FIELDS["net_cls_classid"]))
        if res["net_prio_ifpriomap"]:
            need.append(("net_prio", FIELDS["net_prio_ifpriomap"]))
        if res["rdma"]:
            need.append(("rdma", FIELDS["rdma"]))
        if res["devices"]:
            need.append(("devices", FIELDS["devices"]))
        if res["unified"] and self.unified is None:
            key = next(iter(res["unified"]))
            raise CgroupError(f"{R}.unified[{key!r}]: cgroup v2 is not mounted on this host "
                              "(cgroup v1 only)")
        for key in res["unified"]:
            ctrl = key.split(".", 1)[0]
            if ctrl != "cgroup" and not self._in_unified(ctrl):
                raise CgroupError(f"{R}.unified[{key!r}]: the {ctrl} controller is not "
                                  "available on this host's cgroup v2 mount")
        return need

    def writes(self, res: dict, dry_run: bool = False) -> list[c.Write]:
        W = c.Write
        out: list[c.Write] = []
        d = self.dir_of("cpuset")
        if d:
            if res["cpuset_cpus"]:
                out.append(W(FIELDS["cpuset_cpus"], d, "cpuset.cpus", res["cpuset_cpus"]))
            if res["cpuset_mems"]:
                out.append(W(FIELDS["cpuset_mems"], d, "cpuset.mems", res["cpuset_mems"]))
        d = self.dir_of("cpu")
        if d:
            out += _cpu_writes(d, res)
        d = self.dir_of("memory")
        if d:
            out += _memory_writes(d, res, dry_run)
        d = self.dir_of("pids")
        if d and res["pids_limit"] is not None:
            limit = res["pids_limit"]
            out.append(W(FIELDS["pids_limit"], d, "pids.max", "max" if limit < 0 else limit))
        d = self.dir_of("blkio")
        if d:
            out += _blkio_writes(d, res)
        d = self.dir_of("hugetlb")
        if d:
            for i, (size, limit) in enumerate(res["hugetlb"]):
                field = f"{R}.hugepageLimits[{i}]"
                out.append(W(field, d, f"hugetlb.{size}.limit_in_bytes", limit))
                out.append(W(field, d, f"hugetlb.{size}.rsvd.limit_in_bytes", limit,
                             optional=True))
        d = self.dir_of("net_cls")
        if d and res["net_cls_classid"]:
            out.append(W(FIELDS["net_cls_classid"], d, "net_cls.classid",
                         res["net_cls_classid"]))
        d = self.dir_of("net_prio")
        if d:
            for i, (name, prio) in enumerate(res["net_prio_ifpriomap"]):
                out.append(W(f"{FIELDS['net_prio_ifpriomap']}[{i}]", d, "net_prio.ifpriomap",
                             f"{name} {prio}"))
        d = self.dir_of("rdma")
        if d:
            for name, (handles, objects) in res["rdma"].items():
                parts = [name] + ([f"hca_handle={handles}"] if handles is not None else []) \
                    + ([f"hca_object={objects}"] if objects is not None else [])
                out.append(W(f"{R}.rdma[{name!r}]", d, "rdma.max", " ".join(parts)))
        if self.unified is not None:
            rest = {"unified": res["unified"],
                    "hugetlb": res["hugetlb"] if self.dir_of("hugetlb") is None else []}
            out += self.unified.writes(_only(rest), dry_run)
        return out

    def apply(self, res: dict, *, devices: bool = True) -> None:
        c.perform(self.writes(res))
        d = self.dir_of("devices")
        if devices and d and res["devices"]:
            rules = DeviceRules.build(res["devices"])
            c.perform([c.Write(FIELDS["devices"], d, f, line) for f, line in rules.v1_lines()])

    # --- freezer, processes ---

    def freeze(self) -> None:
        d = self.dir_of("freezer")
        if d is None:
            if self.unified is None:
                raise CgroupError("the freezer cgroup controller is not available on this host")
            return self.unified.freeze()
        state = os.path.join(d, "freezer.state")
        for _attempt in range(100):
            c.write_file(state, "FROZEN")
            try:
                c.wait_for(lambda: c.read_file(state).strip() == "FROZEN", 0.1, "")
                return
            except CgroupError:
                # Stuck in FREEZING (a task in an uninterruptible sleep): thaw, try again.
                c.write_file(state, "THAWED")
        c.write_file(state, "THAWED")
        raise CgroupError(f"cannot freeze {d}: still FREEZING")

    def thaw(self) -> None:
        d = self.dir_of("freezer")
        if d is None:
            if self.unified is not None:
                self.unified.thaw()
            return
        state = os.path.join(d, "freezer.state")
        c.write_file(state, "THAWED")
        c.wait_for(lambda: c.read_file(state).strip() == "THAWED", 10.0, f"cannot thaw {d}")

    def is_frozen(self) -> bool:
        d = self.dir_of("freezer")
        if d is None:
            return bool(self.unified and self.unified.is_frozen())
        try:
            return c.read_file(os.path.join(d, "freezer.state")).strip() != "THAWED"
        except OSError:
            return False

    def pids(self) -> list[int]:
        return cgroup_pids(self.procs_dir())

    def signal_all(self, sig: int) -> None:
        if sig == _signal.SIGKILL and self.unified is not None:
            try:
                c.write_file(os.path.join(self.unified.path, "cgroup.kill"), "1")
                # v1 freezer: frozen tasks only die once thawed
                if self.is_frozen():
                    self.thaw()
                return
            except FileNotFoundError:
                pass
        c.signal_frozen(self, sig)

    def destroy(self, timeout: float = 10.0) -> None:
        c.kill_and_remove(self, timeout)

    def stats(self) -> dict:
        from pyoci.cgroups.stats import v1_stats

        return v1_stats(self)


def _only(part: dict) -> dict:
    from pyoci.cgroups.resources import empty

    res = empty()
    res.update(part)
    return res


def _copy_cpuset(path: str) -> None:
    """A new v1 cpuset cgroup is empty: give it its parent's cpus and mems."""
    parent = os.path.dirname(path)
    for name in ("cpuset.cpus", "cpuset.mems"):
        try:
            if not c.read_file(os.path.join(path, name)).strip():
                c.write_file(os.path.join(path, name), c.read_file(os.path.join(parent, name)))
        except OSError as e:
            raise CgroupError(f"cannot set up cpuset cgroup {path}: {name}: {e.strerror}") \
                from None


def _cpu_writes(d: str, res: dict) -> list[c.Write]:
    W = c.Write
    out = []
    if res["cpu_shares"]:
        out.append(W(FIELDS["cpu_shares"], d, "cpu.shares", res["cpu_shares"], readback=True))
    if res["cpu_period"]:
        out.append(W(FIELDS["cpu_period"], d, "cpu.cfs_period_us", res["cpu_period"],
                     retry=bool(res["cpu_quota"])))
    if res["cpu_quota"]:
        out.append(W(FIELDS["cpu_quota"], d, "cpu.cfs_quota_us", res["cpu_quota"]))
    if res["cpu_burst"] is not None:
        out.append(W(FIELDS["cpu_burst"], d, "cpu.cfs_burst_us", res["cpu_burst"]))
    if res["cpu_rt_period"]:
        out.append(W(FIELDS["cpu_rt_period"], d, "cpu.rt_period_us", res["cpu_rt_period"]))
    if res["cpu_rt_runtime"]:
        out.append(W(FIELDS["cpu_rt_runtime"], d, "cpu.rt_runtime_us", res["cpu_rt_runtime"]))
    if res["cpu_idle"] is not None:
        out.append(W(FIELDS["cpu_idle"], d, "cpu.idle", res["cpu_idle"]))
    return out


def _memory_writes(d: str, res: dict, dry_run: bool) -> list[c.Write]:
    W = c.Write
    mem, swap = res["memory"], res["memory_swap"]
    memsw = os.path.join(d, "memory.memsw.limit_in_bytes")
    if mem == -1 and swap == 0 and os.path.exists(memsw):
        swap = -1  # unlimited memory means unlimited swap too
    if res["memory_check_before_update"] and not dry_run:
        usage = c.read_int(os.path.join(d, "memory.usage_in_bytes"), -1)
        for field, limit in (("memory_swap", swap), ("memory", mem)):
            if limit > 0 and usage >= 0 and limit <= usage:
                raise CgroupError(f"{FIELDS[field]}: rejecting limit {limit} <= current "
                                  f"usage {usage} (checkBeforeUpdate)")
    lim = W(FIELDS["memory"], d, "memory.limit_in_bytes", mem)
    sw = W(FIELDS["memory_swap"], d, "memory.memsw.limit_in_bytes", swap)
    out = []
    if mem and swap:
        # The kernel wants memory <= memory+swap at every step: order the two writes.
        current = c.read_int(os.path.join(d, "memory.limit_in_bytes")) if not dry_run else 0
        out += [sw, lim] if swap == -1 or current < swap else [lim, sw]
    elif mem:
        out.append(lim)
    elif swap:
        out.append(sw)
    if res["memory_reservation"]:
        out.append(W(FIELDS["memory_reservation"], d, "memory.soft_limit_in_bytes",
                     res["memory_reservation"]))
    if res["oom_kill_disable"]:
        out.append(W(FIELDS["oom_kill_disable"], d, "memory.oom_control", 1))
    if res["memory_swappiness"] not in (None, -1):
        out.append(W(FIELDS["memory_swappiness"], d, "memory.swappiness",
                     res["memory_swappiness"]))
    return out


def _blkio_writes(d: str, res: dict) -> list[c.Write]:
    W = c.Write
    out = []
    bfq = os.path.exists(os.path.join(d, "blkio.bfq.weight"))
    weight_file = "blkio.bfq.weight" if bfq else "blkio.weight"
    if res["blkio_weight"]:
        out.append(W(FIELDS["blkio_weight"], d, weight_file, res["blkio_weight"]))
    if res["blkio_leaf_weight"]:
        out.append(W(FIELDS["blkio_leaf_weight"], d, "blkio.leaf_weight",
                     res["blkio_leaf_weight"]))
    for i, (major, minor, weight, leaf) in enumerate(res["blkio_weight_device"]):
        field = f"{FIELDS['blkio_weight_device']}[{i}]"
        if weight:
            out.append(W(field, d, "blkio.bfq.weight_device" if bfq else "blkio.weight_device",
                         f"{major}:{minor} {weight}"))
        if leaf:
            out.append(W(field, d, "blkio.leaf_weight_device", f"{major}:{minor} {leaf}"))
    for key, name in (("throttle_read_bps", "read_bps_device"),
                      ("throttle_write_bps", "write_bps_device"),
                      ("throttle_read_iops", "read_iops_device"),
                      ("throttle_write_iops", "write_iops_device")):
        for i, (major, minor, rate) in enumerate(res[key]):
            out.append(W(f"{FIELDS[key]}[{i}]", d, f"blkio.throttle.{name}",
                         f"{major}:{minor} {rate}"))
    return out
