"""config.md, "Linux Process": oomScoreAdj.

https://github.com/opencontainers/runtime-spec/blob/v1.3.0/config.md#linux-process

capabilities (warning for what cannot be granted) is left to issue 4; the remaining
Linux process properties carry no MUST (see README.md).
"""

from __future__ import annotations

import subprocess
import tempfile

from spec_support import (
    Box,
    delete,
    output,
    run_script,
    script_config,
    start,
    wait_status,
    write_config,
)


def test_oom_score_adj_is_set_when_configured(pyoci, bundle, cid):
    """Linux Process: "If oomScoreAdj is set, the runtime MUST set oom_score_adj to the
    given value"."""
    def edit(cfg):
        cfg["process"]["oomScoreAdj"] = 123

    box = run_script(pyoci, bundle, cid, "cat /proc/self/oom_score_adj", mutate=edit)
    assert output(box) == "123\n"


def test_oom_score_adj_is_unchanged_when_not_set(pyoci, bundle, cid):
    """Linux Process: "If oomScoreAdj is not set, the runtime MUST NOT change the value of
    oom_score_adj" (the container keeps its caller's value, here 77)."""
    box = Box(bundle)
    write_config(bundle, script_config("cat /proc/1/oom_score_adj /proc/self/oom_score_adj",
                                       box))

    def caller_value():
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("77")

    cmd = pyoci.command("create", "--bundle", bundle, cid)
    with tempfile.TemporaryFile() as out:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=60,
                           preexec_fn=caller_value)
        out.seek(0)
        assert r.returncode == 0, out.read().decode(errors="replace")
    start(pyoci, cid)
    wait_status(pyoci, cid, "stopped")
    assert output(box).split() == ["77", "77"]
    delete(pyoci, cid)
