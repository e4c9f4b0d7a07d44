"""config.md, "Process", "POSIX process" (rlimits) and "POSIX-platform User".

https://github.com/opencontainers/runtime-spec/blob/v1.3.0/config.md#process
"""

from __future__ import annotations

import re

import pytest
from spec_support import (
    assert_error,
    assert_no_container,
    base_config,
    output,
    run_script,
    write_config,
)


def refused(pyoci, bundle: str, cid: str, cfg: dict, what: str) -> None:
    write_config(bundle, cfg)
    assert_error(pyoci("create", "--bundle", bundle, cid), what)
    assert_no_container(pyoci, cid)


# ---------------------------------------------------------------------------------------
# process


@pytest.mark.parametrize("terminal", [False, None])
def test_console_size_is_ignored_without_terminal(pyoci, bundle, cid, terminal):
    """Process: "Runtimes MUST ignore consoleSize if terminal is false or unset"."""
    def edit(cfg):
        cfg["process"]["consoleSize"] = {"height": 12, "width": 34}
        if terminal is None:
            del cfg["process"]["terminal"]
        else:
            cfg["process"]["terminal"] = terminal

    box = run_script(pyoci, bundle, cid,
                     "if [ -t 0 ]; then echo tty; else echo no-tty; fi", mutate=edit)
    assert output(box) == "no-tty\n"


@pytest.mark.parametrize("cwd", ["tmp", "./tmp", ""])
def test_process_cwd_must_be_absolute(pyoci, bundle, cid, cwd):
    """Process: cwd "This value MUST be an absolute path" (a relative one is invalid)."""
    cfg = base_config(["true"])
    cfg["process"]["cwd"] = cwd
    refused(pyoci, bundle, cid, cfg, f"create with process.cwd {cwd!r}")


def test_process_cwd_is_the_working_directory(pyoci, bundle, cid):
    """Process: cwd "is the working directory that will be set for the executable"
    (definition)."""
    def edit(cfg):
        cfg["process"]["cwd"] = "/etc"

    assert output(run_script(pyoci, bundle, cid, "pwd", mutate=edit)) == "/etc\n"


@pytest.mark.parametrize("args", [[], None])
def test_process_args_needs_at_least_one_entry(pyoci, bundle, cid, args):
    """Process: args "at least one entry is REQUIRED (non-Windows)"."""
    cfg = base_config(["true"])
    if args is None:
        del cfg["process"]["args"]
    else:
        cfg["process"]["args"] = args
    refused(pyoci, bundle, cid, cfg, f"create with process.args {args!r}")


def test_process_args_first_entry_is_found_like_execvp_file(pyoci, bundle, cid):
    """Process: args "with similar semantics to execvp's argv ... that entry is used with
    the same semantics as execvp's file" (definition: looked up in PATH, rest is argv)."""
    def edit(cfg):
        cfg["process"]["args"] = ["cp", "/etc/group", "/spec-out/copy of group"]

    box = run_script(pyoci, bundle, cid, "", mutate=edit)
    assert box.read("copy of group") == "root:x:0:\nnogroup:x:65534:\n"


def test_process_env_is_the_environment(pyoci, bundle, cid):
    """Process: env "with the same semantics as IEEE Std 1003.1-2008's environ"
    (definition)."""
    def edit(cfg):
        cfg["process"]["env"] = ["PATH=/bin", "SPEC_A=a value", "SPEC_EMPTY="]

    box = run_script(pyoci, bundle, cid, "env", mutate=edit)
    env = dict(line.split("=", 1) for line in output(box).splitlines())
    assert env["PATH"] == "/bin" and env["SPEC_A"] == "a value" and env["SPEC_EMPTY"] == ""


def test_process_user_ids_groups_and_umask(pyoci, bundle, cid):
    """POSIX-platform User: uid, gid, additionalGids "in the container namespace" and
    umask (definitions)."""
    def edit(cfg):
        cfg["process"]["user"] = {"uid": 1234, "gid": 2345, "additionalGids": [3456, 4567],
                                  "umask": 0o027}

    box = run_script(pyoci, bundle, cid, "id -u; id -g; id -G; umask", mutate=edit)
    uid, gid, groups, umask = output(box).splitlines()
    assert (uid, gid) == ("1234", "2345")
    assert set(groups.split()) == {"2345", "3456", "4567"}
    assert int(umask, 8) == 0o027


# ---------------------------------------------------------------------------------------
# rlimits

LIMIT_NAMES = {
    "RLIMIT_NOFILE": "Max open files", "RLIMIT_CORE": "Max core file size",
    "RLIMIT_MSGQUEUE": "Max msgqueue size", "RLIMIT_NPROC": "Max processes",
    "RLIMIT_STACK": "Max stack size", "RLIMIT_NICE": "Max nice priority",
}
RLIMITS = [
    {"type": "RLIMIT_NOFILE", "soft": 123, "hard": 456},
    {"type": "RLIMIT_CORE", "soft": 0, "hard": 1048576},
    {"type": "RLIMIT_MSGQUEUE", "soft": 8192, "hard": 16384},
    {"type": "RLIMIT_NPROC", "soft": 3000, "hard": 4000},
    {"type": "RLIMIT_STACK", "soft": 4194304, "hard": 8388608},
    {"type": "RLIMIT_NICE", "soft": 0, "hard": 0},  # no higher than the caller's hard
]


def container_limits(pyoci, bundle: str, cid: str) -> dict[str, tuple[str, str]]:
    """Run a container with RLIMITS; its /proc/self/limits as name -> (soft, hard)."""
    def edit(cfg):
        cfg["process"]["rlimits"] = RLIMITS

    text = output(run_script(pyoci, bundle, cid, "cat /proc/self/limits", mutate=edit))
    limits = {}
    for line in text.splitlines()[1:]:
        m = re.match(r"(.+?)\s{2,}(\S+)\s+(\S+)", line)
        if m:
            limits[m.group(1)] = (m.group(2), m.group(3))
    return limits


def test_rlimit_type_that_cannot_be_mapped_is_an_error(pyoci, bundle, cid):
    """POSIX process, rlimits type: "The runtime MUST generate an error for any values
    which cannot be mapped to a relevant kernel interface"."""
    cfg = base_config(["true"])
    cfg["process"]["rlimits"] = [{"type": "RLIMIT_SPECNOSUCHLIMIT", "soft": 1, "hard": 1}]
    refused(pyoci, bundle, cid, cfg, "create with an unknown rlimit type")


def test_rlimit_getrlimit_succeeds_for_each_type(pyoci, bundle, cid):
    """POSIX process, rlimits: "For each entry in rlimits, a getrlimit(3) on type MUST
    succeed" (each configured limit is a limit of the container process)."""
    limits = container_limits(pyoci, bundle, cid)
    for rl in RLIMITS:
        assert LIMIT_NAMES[rl["type"]] in limits, f"{rl['type']} not a limit of the process"


def test_rlimit_soft_is_rlim_cur(pyoci, bundle, cid):
    """POSIX process, rlimits soft: "rlim.rlim_cur MUST match the configured value"."""
    limits = container_limits(pyoci, bundle, cid)
    for rl in RLIMITS:
        assert limits[LIMIT_NAMES[rl["type"]]][0] == str(rl["soft"]), rl["type"]


def test_rlimit_hard_is_rlim_max(pyoci, bundle, cid):
    """POSIX process, rlimits hard: "rlim.rlim_max MUST match the configured value"."""
    limits = container_limits(pyoci, bundle, cid)
    for rl in RLIMITS:
        assert limits[LIMIT_NAMES[rl["type"]]][1] == str(rl["hard"]), rl["type"]


def test_rlimits_with_a_duplicate_type_is_an_error(pyoci, bundle, cid):
    """POSIX process: "If rlimits contains duplicated entries with same type, the runtime
    MUST generate an error"."""
    cfg = base_config(["true"])
    cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 100},
                                 {"type": "RLIMIT_NOFILE", "soft": 200, "hard": 200}]
    refused(pyoci, bundle, cid, cfg, "create with a duplicated rlimit type")
