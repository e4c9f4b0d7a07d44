"""Helpers for the lifecycle, CLI-contract, bad-input and API integration tests.

Kept free of pytest fixtures: the fixtures themselves live in tests/conftest.py.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import time

import pytest

# Tests that look at pyoci's own files (state.json) or wording runc does not share are
# skipped when conftest's PYOCI_TEST_RUNTIME points the suite at another runtime.
_RUNTIME = shlex.split(os.environ.get("PYOCI_TEST_RUNTIME", ""))
UNDER_RUNC = bool(_RUNTIME) and os.path.basename(_RUNTIME[0]) != "pyoci"
# as conftest's: the installed `pyoci` (the C front door) next to this interpreter
_INSTALLED = os.path.join(os.path.dirname(sys.executable), "pyoci")
RUNTIME = _RUNTIME or ([_INSTALLED] if os.access(_INSTALLED, os.X_OK)
                       else [sys.executable, "-m", "pyoci"])
pyoci_only = pytest.mark.skipif(UNDER_RUNC, reason="pyoci-specific behaviour")

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)")


def state(pyoci, cid: str) -> dict:
    """`pyoci state CID` parsed; the call must succeed."""
    r = pyoci("state", cid)
    assert r.returncode == 0, f"state {cid} exited {r.returncode}: {r.stderr}"
    return json.loads(r.stdout)


def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}", pytrace=False)
        time.sleep(interval)


def wait_status(pyoci, cid: str, status: str, timeout: float = 5.0) -> dict:
    """Poll `state` until the container reports ``status``; return that state."""
    last: dict = {}

    def check():
        nonlocal last
        last = state(pyoci, cid)
        return last if last["status"] == status else None

    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"{cid} never became {status!r}; last state: {last}", pytrace=False)
        time.sleep(0.02)


def assert_one_line_error(r, *fragments: str) -> str:
    """The call failed with exactly one line on stderr, no traceback, naming ``fragments``."""
    assert r.returncode != 0, f"expected failure, got exit 0; stdout={r.stdout!r}"
    assert "Traceback" not in r.stderr, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one stderr line, got {len(lines)}: {r.stderr!r}"
    if UNDER_RUNC:  # another runtime: its behaviour is checked, not pyoci's wording
        return lines[0]
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


def pid_alive(pid: int) -> bool:
    """A live, non-zombie process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rindex(b")") + 2:].split()[0] not in (b"Z", b"X")


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def shared_dir(bundle: str, cfg: dict, dest: str = "/out") -> str:
    """Bind-mount a fresh host dir (inside the bundle) at ``dest``; return the host path.

    ``cfg`` is changed in place; write it with write_config afterwards.
    """
    host = os.path.join(bundle, "shared")
    os.makedirs(host, exist_ok=True)
    os.makedirs(os.path.join(bundle, "rootfs", dest.lstrip("/")), exist_ok=True)
    cfg["mounts"].append({"destination": dest, "type": "bind", "source": host,
                          "options": ["rbind", "rw"]})
    return host


def state_entries(root: str) -> list[str]:
    """What a state root holds (hidden entries too: nothing may be left behind)."""
    try:
        return sorted(os.listdir(root))
    except FileNotFoundError:
        return []
