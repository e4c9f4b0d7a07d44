"""``events``: the container's statistics (``--stats``: once) and OOM notifications."""

from __future__ import annotations

import json
import os
import re
import sys
import time

from pyoci import state as st
from pyoci.container.container import Container
from pyoci.container.pause import cgroup_manager
from pyoci.errors import PyociError

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """A Go duration ("5s", "1m30s", "250ms") in seconds."""
    s = text.strip()
    sign = -1.0 if s.startswith("-") else 1.0
    s = s.lstrip("+-")
    if s == "0":
        return 0.0
    pos, total = 0, 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise PyociError(f'invalid value "{text}" for flag -interval: parse error')
    return sign * total


def stats_event(container: Container, manager) -> dict:
    return {"type": "stats", "id": container.id, "data": manager.stats()}


def _emit(event: dict) -> None:
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def events(container: Container, stats: bool = False, interval: float = 5.0) -> None:
    if interval <= 0:
        raise PyociError("duration interval must be greater than 0")
    stored = container.stored()
    if st.status_of(container.dir, stored) == "stopped":
        raise PyociError(f"container with id {container.id} is not running")
    manager = cgroup_manager(container, stored)
    if stats:
        _emit(stats_event(container, manager))
        return
    ooms = _oom_count(manager)
    next_stats = time.monotonic() + interval
    while True:
        time.sleep(min(0.2, interval))
        if not os.path.isdir(manager.procs_dir()) or \
                not st.is_alive(stored["pid"], stored["pid_start"]):
            return
        count = _oom_count(manager)
        if count > ooms:
            _emit({"type": "oom", "id": container.id})
        ooms = count
        if time.monotonic() >= next_stats:
            next_stats += interval
            try:
                _emit(stats_event(container, manager))
            except OSError:
                return


def _oom_count(manager) -> int:
    from pyoci.cgroups.common import read_kv

    if manager.version == 2:
        return read_kv(os.path.join(manager.path, "memory.events")).get("oom_kill", 0)
    d = manager.dir_of("memory")
    return read_kv(os.path.join(d, "memory.oom_control")).get("oom_kill", 0) if d else 0
