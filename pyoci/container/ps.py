"""``ps``: the container's processes, as host PIDs (json) or as ``ps`` shows them."""

from __future__ import annotations

import json
import subprocess

from pyoci.container.container import Container
from pyoci.container.pause import cgroup_manager
from pyoci.errors import PyociError


def pids(container: Container) -> list[int]:
    """Every process in the container's cgroup (and the cgroups below it), sorted."""
    return sorted(set(cgroup_manager(container, container.stored()).pids()))


def ps(container: Container, fmt: str = "table", ps_args: list[str] | None = None) -> str:
    found = pids(container)
    if fmt == "json":
        # runc encodes a nil slice as null
        return json.dumps(found or None, separators=(",", ":")) + "\n"
    try:
        out = subprocess.run(["ps", *(ps_args or ["-ef"])], capture_output=True, text=True,
                             check=True).stdout
    except FileNotFoundError:
        raise PyociError("ps: executable file not found in $PATH") from None
    except subprocess.CalledProcessError as e:
        raise PyociError(f"ps: {(e.stderr or e.stdout).strip()}: {e}") from None
    lines = out.split("\n")
    header = lines[0].split()
    if "PID" not in header:
        raise PyociError("couldn't find PID field in ps output")
    col = header.index("PID")
    keep = [lines[0]]
    wanted = set(found)
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in wanted:
            keep.append(line)
    return "\n".join(keep) + "\n"
