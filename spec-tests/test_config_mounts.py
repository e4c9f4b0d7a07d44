"""config.md, "Mounts" and "POSIX-platform Mounts" (the mount options are in
test_config_linux_mount_options.py).

https://github.com/opencontainers/runtime-spec/blob/v1.3.0/config.md#mounts
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


def _source_dir(bundle: str, name: str = "spec-src") -> str:
    src = os.path.join(bundle, name)
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(src, "from-bind"), "w") as f:
        f.write("bind source\n")
    return src


def test_mounts_are_mounted_in_the_listed_order(pyoci, bundle, cid):
    """Mounts: "The runtime MUST mount entries in the listed order": a mount nested in an
    earlier one stays visible, and a later mount on the same destination hides the
    earlier one."""
    src = _source_dir(bundle)

    def edit(cfg):
        cfg["mounts"] += [
            {"destination": "/spec-order", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/spec-order/inner", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/spec-over", "type": "bind", "source": src,
             "options": ["rbind"]},
            {"destination": "/spec-over", "type": "tmpfs", "source": "tmpfs"},
        ]

    box = run_script(pyoci, bundle, cid, """
        echo x >/spec-order/inner/file
        grep -c . /spec-order/inner/file
        if [ -e /spec-over/from-bind ]; then echo bind-on-top; else echo tmpfs-on-top; fi
        awk '$5 ~ /^\\/spec-o/ {print $5, $9}' /proc/self/mountinfo
    """, mutate=edit)
    lines = output(box).splitlines()
    assert lines[0] == "1"
    assert lines[1] == "tmpfs-on-top", "the later mount on /spec-over is not on top"
    listed = [ln.split() for ln in lines[2:] if not ln.startswith("/spec-out ")]
    assert [m for m, _ in listed] == ["/spec-order", "/spec-order/inner", "/spec-over",
                                      "/spec-over"], lines
    assert listed[2][1] != "tmpfs" and listed[3][1] == "tmpfs", lines


def test_mount_relative_destination_is_relative_to_root(pyoci, bundle, cid):
    """Mounts, Linux destination: "it MAY be a relative path, in which case it MUST be
    interpreted as relative to "/"" (not to process.cwd)."""
    def edit(cfg):
        cfg["process"]["cwd"] = "/tmp"
        cfg["mounts"].append({"destination": "spec-rel", "type": "tmpfs", "source": "tmpfs",
                              "options": ["size=1m"]})

    box = run_script(pyoci, bundle, cid, """
        awk '$5 == "/spec-rel" {print "mounted", $9}' /proc/self/mountinfo
        if [ -e /tmp/spec-rel ]; then echo under-cwd; fi
    """, mutate=edit)
    assert output(box) == "mounted tmpfs\n"


@pytest.mark.parametrize("form", ["absolute", "relative"])
def test_bind_mount_source_is_absolute_or_relative_to_the_bundle(pyoci, bundle, cid, form):
    """Mounts, source: "Path values for bind mounts are either absolute or relative to the
    bundle" (definition; the runtime is not run from the bundle directory)."""
    src = _source_dir(bundle)

    def edit(cfg):
        cfg["mounts"].append({"destination": "/spec-bind", "type": "none",
                              "source": src if form == "absolute" else "spec-src",
                              "options": ["rbind", "ro"]})

    box = run_script(pyoci, bundle, cid, "cat /spec-bind/from-bind", mutate=edit)
    assert output(box) == "bind source\n"


@pytest.mark.parametrize("present", ["uidMappings", "gidMappings"])
def test_mount_id_mappings_must_come_in_pairs(pyoci, bundle, cid, present):
    """POSIX-platform Mounts: uidMappings "If specified, it MUST be specified along with
    gidMappings", and gidMappings "MUST be specified along with uidMappings" (one alone
    is an invalid value: create fails)."""
    src = _source_dir(bundle)
    cfg = base_config(["true"])
    cfg["mounts"].append({"destination": "/spec-idmap", "type": "bind", "source": src,
                          "options": ["rbind"],
                          present: [{"containerID": 0, "hostID": 100000, "size": 65536}]})
    write_config(bundle, cfg)
    assert_error(pyoci("create", "--bundle", bundle, cid), f"create with only {present}")
    assert_no_container(pyoci, cid)
