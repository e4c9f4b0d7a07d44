"""``update``: change a running container's limits, as runc's update does.

The new values come from a LinuxResources JSON (``--resources FILE|-``) or from
runc's individual flags.  runc's rules: 0 (or absent) leaves a value alone;
quota and period given alone keep the other one's stored value; devices,
hugepage limits, block IO throttles and network settings are not updated.
The merged resources are stored back in state.json for the next update.
"""

from __future__ import annotations

import json
import re

from pyoci import state as st
from pyoci.container.container import Container
from pyoci.container.pause import cgroup_manager
from pyoci.errors import PyociError

# The fields runc's update copies into the container's cgroup config.
UPDATED = ("blkio_weight", "cpu_period", "cpu_quota", "cpu_burst", "cpu_shares", "cpu_weight",
           "cpu_rt_period", "cpu_rt_runtime", "cpuset_cpus", "cpuset_mems", "cpu_idle",
           "memory", "memory_reservation", "memory_swap", "memory_check_before_update",
           "pids_limit", "unified")

_RAM = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")


def ram_in_bytes(text: str, flag: str) -> int:
    """docker/go-units RAMInBytes: "512m", "1.5g", "100k" in binary units; "-1" is -1."""
    if text == "-1":
        return -1
    m = _RAM.match(text)
    if not m:
        raise PyociError(f'invalid value for {flag}: invalid size: "{text}"')
    mult = 1024 ** (" kmgtp".index(m.group(2).lower()) if m.group(2) else 0)
    return int(float(m.group(1)) * mult)


def from_flags(flags: dict) -> dict:
    """LinuxResources (the OCI JSON object) from runc update's individual flags."""
    r: dict = {}

    def put(section: str, key: str, value) -> None:
        r.setdefault(section, {})[key] = value

    for flag, key in (("cpu_burst", "burst"), ("cpu_period", "period"),
                      ("cpu_rt_period", "realtimePeriod"), ("cpu_share", "shares")):
        if flags.get(flag) is not None:
            put("cpu", key, _int(flags[flag], flag, unsigned=True))
    for flag, key in (("cpu_quota", "quota"), ("cpu_rt_runtime", "realtimeRuntime")):
        if flags.get(flag) is not None:
            put("cpu", key, _int(flags[flag], flag))
    for flag, key in (("cpuset_cpus", "cpus"), ("cpuset_mems", "mems")):
        if flags.get(flag):
            put("cpu", key, flags[flag])
    if flags.get("cpu_idle") is not None:
        put("cpu", "idle", _int(flags["cpu_idle"], "cpu_idle"))
    for flag, key in (("memory", "limit"), ("memory_swap", "swap"),
                      ("memory_reservation", "reservation"), ("kernel_memory", "kernel"),
                      ("kernel_memory_tcp", "kernelTCP")):
        if flags.get(flag) is not None:
            put("memory", key, ram_in_bytes(flags[flag], "--" + flag.replace("_", "-")))
    if flags.get("blkio_weight"):
        put("blockIO", "weight", flags["blkio_weight"])
    if flags.get("pids_limit"):
        put("pids", "limit", flags["pids_limit"])
    return r


def _int(text: str, flag: str, unsigned: bool = False) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        value = -1 if unsigned else None
    if value is None or (unsigned and value < 0):
        raise PyociError(f'invalid value for {flag.replace("_", "-")}: parsing "{text}": '
                         "invalid syntax")
    return value


def read_resources(source: str) -> dict:
    """LinuxResources JSON from a file, or stdin for ``-``."""
    import sys

    try:
        text = sys.stdin.read() if source == "-" else open(source).read()
    except OSError as e:
        raise PyociError(f"open {source}: {e.strerror}") from None
    try:
        r = json.loads(text)
    except json.JSONDecodeError as e:
        raise PyociError(f"--resources: invalid JSON: {e.msg} at line {e.lineno} "
                         f"column {e.colno}") from None
    if not isinstance(r, dict):
        raise PyociError("--resources: a LinuxResources JSON object is expected")
    _validate(r)
    return r


def _validate(r: dict) -> None:
    """The LinuxResources schema, so that a bad value is named by its path."""
    from pyoci.config import validate_config
    from pyoci.errors import ConfigError

    try:
        validate_config({"ociVersion": "1.0.0", "linux": {"resources": r}})
    except ConfigError as e:
        raise PyociError(str(e).replace("config.json: $.linux.resources", "--resources: $", 1)
                         .replace("config.json: ", "--resources: ", 1)) from None


def update(container: Container, resources: dict) -> None:
    """Apply ``resources`` (a LinuxResources object) to the running container."""
    from pyoci.cgroups.resources import empty, from_spec

    with st.Lock(container.dir):
        stored = container.stored()
        if st.status_of(container.dir, stored) == "stopped":
            raise PyociError("container not running")
        assert stored is not None
        manager = cgroup_manager(container, stored)
        new = from_spec({"linux": {"resources": resources}})
        old = stored.get("resources") or empty()
        for key in new:
            if key not in UPDATED:
                new[key] = empty()[key]
        # quota and period given alone keep the other's stored value (runc)
        if bool(new["cpu_quota"]) != bool(new["cpu_period"]):
            if new["cpu_quota"]:
                new["cpu_period"] = old.get("cpu_period", 0)
            else:
                new["cpu_quota"] = old.get("cpu_quota", 0)
        manager.check(new)
        manager.apply(new, devices=False)
        merged = dict(old)
        for key in UPDATED:
            if new[key] not in (0, None, "", {}, False):
                merged[key] = new[key]
        stored["resources"] = merged
        st.write_state(container.dir, stored)
