"""The pure cgroup-v2 lane, as part of the test suite: see lane.py.

Boots Debian's kernel under qemu (cgroup v1 disabled, every controller enabled at the
root) and runs the cgroup tests there in one invocation; this test passes when they
do, and fails with their output when they don't.  Skipped, saying why, where qemu
cannot run.
"""

from __future__ import annotations

import os

import lane
import pytest


def test_cgroup_tests_pass_on_a_pure_cgroup_v2_kernel():
    if os.environ.get("PYOCI_CGROUPV2_LANE"):
        pytest.skip("already inside the cgroup v2 lane")
    why = lane.unavailable()
    if why:
        pytest.skip(f"cgroup v2 lane: {why}")
    code, output = lane.run()
    summary = [line for line in output.splitlines()
               if " passed" in line or " failed" in line or " error" in line]
    print(f"cgroup v2 lane: exit {code}; {summary[-1] if summary else 'no summary'}; "
          f"console log: {lane.LOG}")
    assert code == 0, f"the cgroup tests failed on cgroup v2 (exit {code}):\n{output[-30000:]}"
