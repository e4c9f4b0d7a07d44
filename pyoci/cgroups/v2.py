"""The cgroup v2 backend: one directory in the unified hierarchy.

Controllers are enabled in ``cgroup.subtree_control`` of each ancestor below the
mount point that lacks them (never in the hierarchy's root, which belongs to the
host's init); devices are a BPF_PROG_TYPE_CGROUP_DEVICE program.
"""

from __future__ import annotations

import _signal  # signal's C core: signal.py's enums import enum, functools, collections
import os

from pyoci import logger
from pyoci.cgroups import MOUNT_ROOT, CgroupError, cgroup_pids, v2_controllers
from pyoci.cgroups import common as c
from pyoci.cgroups.resources import FIELDS, blkio_to_io_weight, swap_to_v2

R = "linux.resources"


class V2Manager:
    version = 2

    def __init__(self, path: str, mountpoint: str = MOUNT_ROOT) -> None:
        self.path = path
        self.mountpoint = mountpoint
        self.created: list[str] = []
        self.claimed = False

    # --- layout ---

    def dirs(self) -> list[str]:
        return [self.path]

    def procs_dir(self) -> str:
        return self.path

    def mount_dirs(self) -> dict[str, str]:
        return {self.mountpoint: self.path}

    def freezer_file(self) -> str:
        return os.path.join(self.path, "cgroup.freeze")

    def to_state(self) -> dict:
        return {"version": 2, "path": self.path, "mountpoint": self.mountpoint,
                "procs": self.path}

    # --- create ---

    def create(self) -> None:
        c.make_dirs(self.path, self.mountpoint, self.created)
        self._enable_controllers()
        kind = _read(os.path.join(self.path, "cgroup.type")).strip()
        if kind == "domain invalid":
            raise CgroupError(f"linux.cgroupsPath: cgroup {self.path} is in an invalid state "
                              "(domain invalid: a parent holds processes)")
        # one just made is empty; one that was there may hold another container
        pids = cgroup_pids(self.path) if self.path not in self.created else []
        if pids:
            raise CgroupError(f"linux.cgroupsPath: container's cgroup {self.path} is not "
                              f"empty: {len(pids)} process(es) found")
        if _read(self.freezer_file()).strip() == "1":
            raise CgroupError(f"linux.cgroupsPath: container's cgroup {self.path} is "
                              "unexpectedly frozen")
        self.claimed = True

    def _enable_controllers(self) -> None:
        """Enable in each ancestor (below the mount point) what its parent offers."""
        rel = os.path.relpath(os.path.dirname(self.path), self.mountpoint)
        if rel == ".":
            return
        current = self.mountpoint
        for part in rel.split("/"):
            current = os.path.join(current, part)
            have = v2_controllers(current)
            enabled = set(_read(os.path.join(current, "cgroup.subtree_control")).split())
            for ctrl in sorted(have - enabled):
                try:
                    c.write_file(os.path.join(current, "cgroup.subtree_control"), f"+{ctrl}")
                except OSError as e:
                    logger.debug("cannot enable %s in %s: %s", ctrl, current, e.strerror)

    def abort(self) -> None:
        """Undo a failed create: kill its processes, remove the directories it made."""
        c.abort(self)

    def join(self, pid: int, *, defer: bool = False) -> c.DeferredJoin | None:
        """Move ``pid`` into the cgroup; with ``defer``, the DeferredJoin that puts the
        caller's next child there instead."""
        if defer:
            return c.DeferredJoin(self.path, accounts=c.has_controllers(self.path))
        c.join(self.path, pid)
        return None

    # --- resources ---

    def check(self, res: dict) -> None:
        """Fail before any process exists if the host can't do what ``res`` asks."""
        self._unsupported(res)
        have = v2_controllers(self.path)
        for ctrl, field in self._needed(res):
            if ctrl not in have:
                raise CgroupError(f"{field}: the {ctrl} controller is not available in "
                                  f"{self.path} (available: {' '.join(sorted(have)) or 'none'})")
        w = c.missing(self.writes(res, dry_run=True))
        if w is not None:
            raise c.not_supported(w)

    def apply(self, res: dict, *, devices: bool = True) -> None:
        c.perform(self.writes(res))
        if devices and res["devices"]:
            from pyoci.cgroups.devices_bpf import apply_rules

            apply_rules(self.path, res["devices"])

    def _unsupported(self, res: dict) -> None:
        if res["cpu_rt_period"] or res["cpu_rt_runtime"]:
            field = FIELDS["cpu_rt_runtime" if res["cpu_rt_runtime"] else "cpu_rt_period"]
            raise CgroupError(f"{field}: realtime scheduling is not supported on cgroup v2")
        if res["net_cls_classid"] or res["net_prio_ifpriomap"]:
            field = FIELDS["net_cls_classid" if res["net_cls_classid"] else "net_prio_ifpriomap"]
            raise CgroupError(f"{field}: net_cls/net_prio are cgroup v1 controllers, not "
                              "available on cgroup v2")
        for key, what in (("memory_swappiness", "memory swappiness"),):
            if res[key] not in (None, -1):
                logger.warning("%s is not supported on cgroup v2: ignored", what)
        if res["oom_kill_disable"]:
            logger.warning("disableOOMKiller is not supported on cgroup v2: ignored")
        if res["blkio_leaf_weight"]:
            logger.warning("blockIO.leafWeight is not supported on cgroup v2: ignored")

    def _needed(self, res: dict) -> list[tuple[str, str]]:
        need = []
        if res["memory"] or res["memory_reservation"] or res["memory_swap"]:
            need.append(("memory", FIELDS["memory"]))
        if res["pids_limit"] is not None:
            need.append(("pids", FIELDS["pids_limit"]))
        if (res["cpu_weight"] or res["cpu_quota"] or res["cpu_period"]
                or res["cpu_burst"] is not None or res["cpu_idle"] is not None):
            need.append(("cpu", FIELDS["cpu_shares"] if res["cpu_weight"] else
                         FIELDS["cpu_quota"]))
        if res["cpuset_cpus"] or res["cpuset_mems"]:
            need.append(("cpuset", FIELDS["cpuset_cpus"]))
        if _io_set(res):
            need.append(("io", f"{R}.blockIO"))
        if res["hugetlb"]:
            need.append(("hugetlb", FIELDS["hugetlb"]))
        if res["rdma"]:
            need.append(("rdma", FIELDS["rdma"]))
        for key in res["unified"]:
            ctrl = key.split(".", 1)[0]
            if ctrl != "cgroup":
                need.append((ctrl, f"{R}.unified[{key!r}]"))
        return need

    def writes(self, res: dict, dry_run: bool = False) -> list[c.Write]:
        d = self.path
        W = c.Write
        out: list[c.Write] = []
        if res["pids_limit"] is not None:
            limit = res["pids_limit"]
            out.append(W(FIELDS["pids_limit"], d, "pids.max", "max" if limit < 0 else limit))
        out += self._memory_writes(res, dry_run)
        if res["cpu_weight"]:
            out.append(W(FIELDS["cpu_shares"], d, "cpu.weight", res["cpu_weight"]))
        if res["cpu_idle"] is not None:
            out.append(W(FIELDS["cpu_idle"], d, "cpu.idle", res["cpu_idle"]))
        if res["cpu_burst"] is not None:
            out.append(W(FIELDS["cpu_burst"], d, "cpu.max.burst", res["cpu_burst"],
                         retry=bool(res["cpu_quota"])))
        if res["cpu_quota"] or res["cpu_period"]:
            value = str(res["cpu_quota"]) if res["cpu_quota"] > 0 else "max"
            if res["cpu_period"]:
                value += f" {res['cpu_period']}"
            out.append(W(FIELDS["cpu_quota"], d, "cpu.max", value))
        if res["cpuset_cpus"]:
            out.append(W(FIELDS["cpuset_cpus"], d, "cpuset.cpus", res["cpuset_cpus"]))
        if res["cpuset_mems"]:
            out.append(W(FIELDS["cpuset_mems"], d, "cpuset.mems", res["cpuset_mems"]))
        out += self._io_writes(res)
        for i, (size, limit) in enumerate(res["hugetlb"]):
            field = f"{R}.hugepageLimits[{i}]"
            out.append(W(field, d, f"hugetlb.{size}.max", limit))
            out.append(W(field, d, f"hugetlb.{size}.rsvd.max", limit, optional=True))
        for name, (handles, objects) in res["rdma"].items():
            parts = [name]
            if handles is not None:
                parts.append(f"hca_handle={handles}")
            if objects is not None:
                parts.append(f"hca_object={objects}")
            out.append(W(f"{R}.rdma[{name!r}]", d, "rdma.max", " ".join(parts)))
        for key, value in res["unified"].items():
            out.append(W(f"{R}.unified[{key!r}]", d, key, value))
        return out

    def _memory_writes(self, res: dict, dry_run: bool) -> list[c.Write]:
        d, W = self.path, c.Write
        mem, swap, low = res["memory"], res["memory_swap"], res["memory_reservation"]
        if not (mem or swap or low):
            return []
        if res["memory_check_before_update"] and not dry_run:
            usage = c.read_int(os.path.join(d, "memory.current"), -1)
            for field, limit in (("memory_swap", swap), ("memory", mem)):
                if limit > 0 and usage >= 0 and limit <= usage:
                    raise CgroupError(f"{FIELDS[field]}: rejecting limit {limit} <= current "
                                      f"usage {usage} (checkBeforeUpdate)")
        out = []
        v2swap = swap_to_v2(swap, mem)
        swap_str = "" if v2swap == 0 else "max" if v2swap == -1 else str(v2swap)
        if swap_str == "" and v2swap == 0 and swap > 0:
            swap_str = "0"  # memory+swap == memory: no swap
        if swap_str:
            # Without swap accounting there is no file: max and 0 are then what we have.
            out.append(W(FIELDS["memory_swap"], d, "memory.swap.max", swap_str,
                         optional=swap_str in ("max", "0")))
        if mem:
            out.append(W(FIELDS["memory"], d, "memory.max", "max" if mem == -1 else mem))
        if low:
            out.append(W(FIELDS["memory_reservation"], d, "memory.low",
                         "max" if low == -1 else low))
        return out

    def _io_writes(self, res: dict) -> list[c.Write]:
        if not _io_set(res):
            return []
        d, W = self.path, c.Write
        out = []
        bfq = os.path.exists(os.path.join(d, "io.bfq.weight"))
        if res["blkio_weight"]:
            if bfq:
                out.append(W(FIELDS["blkio_weight"], d, "io.bfq.weight", res["blkio_weight"]))
            else:
                out.append(W(FIELDS["blkio_weight"], d, "io.weight",
                             blkio_to_io_weight(res["blkio_weight"])))
        for i, (major, minor, weight, _leaf) in enumerate(res["blkio_weight_device"]):
            if weight:
                field = f"{FIELDS['blkio_weight_device']}[{i}]"
                if bfq:
                    out.append(W(field, d, "io.bfq.weight", f"{major}:{minor} {weight}"))
                else:
                    out.append(W(field, d, "io.weight",
                                 f"{major}:{minor} {blkio_to_io_weight(weight)}"))
        for key, op in (("throttle_read_bps", "rbps"), ("throttle_write_bps", "wbps"),
                        ("throttle_read_iops", "riops"), ("throttle_write_iops", "wiops")):
            for i, (major, minor, rate) in enumerate(res[key]):
                out.append(W(f"{FIELDS[key]}[{i}]", d, "io.max", f"{major}:{minor} {op}={rate}"))
        return out

    # --- freezer, processes ---

    def freeze(self) -> None:
        c.write_file(self.freezer_file(), "1")
        c.wait_for(self.is_frozen, 10.0, f"cannot freeze {self.path}: still freezing")

    def thaw(self) -> None:
        c.write_file(self.freezer_file(), "0")
        c.wait_for(lambda: not self.is_frozen(), 10.0, f"cannot thaw {self.path}")

    def is_frozen(self) -> bool:
        return c.read_kv(os.path.join(self.path, "cgroup.events")).get("frozen") == 1

    def pids(self) -> list[int]:
        return cgroup_pids(self.path)

    def signal_all(self, sig: int) -> None:
        if sig == _signal.SIGKILL:
            try:
                c.write_file(os.path.join(self.path, "cgroup.kill"), "1")
                return
            except FileNotFoundError:
                pass
        c.signal_frozen(self, sig)

    def destroy(self, timeout: float = 10.0) -> None:
        c.kill_and_remove(self, timeout)

    def stats(self) -> dict:
        from pyoci.cgroups.stats import v2_stats

        return v2_stats(self.path)


def _io_set(res: dict) -> bool:
    return bool(res["blkio_weight"] or res["blkio_weight_device"] or res["throttle_read_bps"]
                or res["throttle_write_bps"] or res["throttle_read_iops"]
                or res["throttle_write_iops"])


def _read(path: str) -> str:
    try:
        return c.read_file(path)
    except OSError:
        return ""
