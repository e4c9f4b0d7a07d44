"""config.md, "Root".

https://github.com/opencontainers/runtime-spec/blob/v1.3.0/config.md#root
"""

from __future__ import annotations

import os

import pytest
from spec_support import (
    assert_error,
    assert_no_container,
    base_config,
    output,
    run_script,
    write_config,
)


def test_root_is_required(pyoci, bundle, cid):
    """Root: "On all other platforms [not Windows/Hyper-V], this field is REQUIRED"."""
    cfg = base_config(["true"])
    del cfg["root"]
    write_config(bundle, cfg)
    assert_error(pyoci("create", "--bundle", bundle, cid), "create without root")
    assert_no_container(pyoci, cid)


@pytest.mark.parametrize("what", ["missing", "file", "symlink-to-file"])
def test_root_path_must_be_an_existing_directory(pyoci, bundle, cid, what):
    """Root: "A directory MUST exist at the path declared by the field"."""
    target = os.path.join(bundle, "spec-root")
    if what == "file":
        open(target, "w").close()
    elif what == "symlink-to-file":
        open(os.path.join(bundle, "spec-file"), "w").close()
        os.symlink("spec-file", target)
    cfg = base_config(["true"])
    cfg["root"]["path"] = "spec-root"
    write_config(bundle, cfg)
    assert_error(pyoci("create", "--bundle", bundle, cid), f"create with a {what} root.path")
    assert_no_container(pyoci, cid)


@pytest.mark.parametrize("form", ["relative", "absolute"])
def test_root_path_is_absolute_or_relative_to_the_bundle(pyoci, bundle, cid, form, tmp_path):
    """Root: on POSIX platforms "path is either an absolute path or a relative path to the
    bundle" (definition; the runtime is run from another working directory)."""
    with open(os.path.join(bundle, "rootfs", "spec-which-root"), "w") as f:
        f.write("the bundle's rootfs\n")
    path = "rootfs" if form == "relative" else os.path.join(bundle, "rootfs")

    def edit(cfg):
        cfg["root"]["path"] = path

    box = run_script(pyoci, bundle, cid, "cat /spec-which-root", mutate=edit)
    assert output(box) == "the bundle's rootfs\n"


def test_root_readonly_makes_the_root_filesystem_read_only(pyoci, bundle, cid):
    """Root: readonly "If true then the root filesystem MUST be read-only inside the
    container"."""
    def edit(cfg):
        cfg["root"]["readonly"] = True

    box = run_script(pyoci, bundle, cid,
                     "touch /spec-written && echo writable || echo read-only\n"
                     "awk '$5 == \"/\" {print $6}' /proc/self/mountinfo", mutate=edit)
    lines = output(box).split()
    assert lines[0] == "read-only"
    assert "ro" in lines[-1].split(",")
    assert not os.path.exists(os.path.join(bundle, "rootfs", "spec-written"))


def test_root_readonly_defaults_to_false(pyoci, bundle, cid):
    """Root: readonly "defaults to false" (definition): without it, / is writable."""
    def edit(cfg):
        del cfg["root"]["readonly"]

    box = run_script(pyoci, bundle, cid, "touch /spec-written && echo writable", mutate=edit)
    assert output(box) == "writable\n"
    assert os.path.exists(os.path.join(bundle, "rootfs", "spec-written"))
