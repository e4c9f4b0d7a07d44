"""config.md, "Specification version", "Extensibility" and "Valid values".

https://github.com/opencontainers/runtime-spec/blob/v1.3.0/config.md#extensibility
"""

from __future__ import annotations

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


@pytest.mark.parametrize("version", ["1.0", "v1.0.0", "one", "", "1.0.0.0", "01.0.0"])
def test_oci_version_must_be_semver(pyoci, bundle, cid, version):
    """Specification version: ociVersion "MUST be in SemVer v2.0.0 format" (a config that
    is not is invalid: "Runtimes MUST generate an error when invalid ... values are
    encountered")."""
    cfg = base_config(["true"])
    cfg["ociVersion"] = version
    refused(pyoci, bundle, cid, cfg, f"create with ociVersion {version!r}")


def test_unknown_properties_are_ignored(pyoci, bundle, cid):
    """Extensibility: "Runtimes MAY log unknown properties but MUST otherwise ignore them.
    That includes not generating errors if they encounter an unknown property" (at the
    top level, in process, root, mounts, hooks and linux)."""
    def edit(cfg):
        cfg["org.example.spec-unknown"] = {"nested": [1, 2, 3]}
        cfg["process"]["specUnknown"] = True
        cfg["root"]["specUnknown"] = "x"
        cfg["mounts"][0]["specUnknown"] = 1
        cfg["hooks"] = {"specUnknownHookKind": [{"path": "/bin/false"}]}
        cfg["linux"]["specUnknown"] = {"a": "b"}

    box = run_script(pyoci, bundle, cid, "echo ran", mutate=edit)
    assert output(box) == "ran\n"


INVALID = {
    "namespace type": lambda c: c["linux"]["namespaces"].append({"type": "spec-bogus"}),
    "rootfsPropagation": lambda c: c["linux"].update(rootfsPropagation="spec-bogus"),
    "negative uid": lambda c: c["process"]["user"].update(uid=-1),
    "string gid": lambda c: c["process"]["user"].update(gid="0"),
    "mount without destination": lambda c: c["mounts"].append({"type": "tmpfs",
                                                              "source": "tmpfs"}),
    "terminal not a bool": lambda c: c["process"].update(terminal="no"),
    "unsupported filesystem type": lambda c: c["mounts"].append(
        {"destination": "/spec-x", "type": "spec-nosuchfs", "source": "none"}),
    "unsupported ociVersion major": lambda c: c.update(ociVersion="2.0.0"),
}


@pytest.mark.parametrize("what", sorted(INVALID))
def test_invalid_or_unsupported_values_are_an_error(pyoci, bundle, cid, what):
    """Valid values: "Runtimes MUST generate an error when invalid or unsupported values
    are encountered"."""
    cfg = base_config(["true"])
    INVALID[what](cfg)
    refused(pyoci, bundle, cid, cfg, f"create with an invalid value ({what})")


def _drop(path: str):
    def edit(cfg: dict) -> None:
        *parents, last = path.split(".")
        d = cfg
        for key in parents:
            d = d[int(key)] if isinstance(d, list) else d[key]
        del d[last]
    return edit


def _with(path: str, value, then_drop: str):
    def edit(cfg: dict) -> None:
        *parents, last = path.split(".")
        d = cfg
        for key in parents:
            d = d.setdefault(key, {})
        d[last] = value
        _drop(then_drop)(cfg)
    return edit


REQUIRED = {
    "ociVersion": _drop("ociVersion"),
    "root.path": _drop("root.path"),
    "mounts[].destination": _drop("mounts.0.destination"),
    "process.cwd": _drop("process.cwd"),
    "process.consoleSize.height": _with("process.consoleSize", {"height": 1, "width": 1},
                                        "process.consoleSize.height"),
    "process.consoleSize.width": _with("process.consoleSize", {"height": 1, "width": 1},
                                       "process.consoleSize.width"),
    "process.rlimits[].type": _drop("process.rlimits.0.type"),
    "process.rlimits[].soft": _drop("process.rlimits.0.soft"),
    "process.rlimits[].hard": _drop("process.rlimits.0.hard"),
    "process.user.uid": _drop("process.user.uid"),
    "process.user.gid": _drop("process.user.gid"),
    "process.scheduler.policy": _with("process.scheduler", {"policy": "SCHED_OTHER",
                                                            "nice": 0},
                                      "process.scheduler.policy"),
    "process.ioPriority.class": _with("process.ioPriority", {"class": "IOPRIO_CLASS_BE",
                                                             "priority": 4},
                                      "process.ioPriority.class"),
    "hooks.*[].path": _with("hooks", {"prestart": [{"path": "/bin/true"}]},
                            "hooks.prestart.0.path"),
}


@pytest.mark.parametrize("prop", list(REQUIRED))
def test_required_property_missing_is_an_error(pyoci, bundle, cid, prop):
    """config.md: properties marked REQUIRED (ociVersion, root.path, mount destination,
    process.cwd, consoleSize height/width, rlimit type/soft/hard, user uid/gid, scheduler
    policy, ioPriority class, hook path): a config without one is invalid and "Runtimes
    MUST generate an error when invalid ... values are encountered"."""
    cfg = base_config(["true"])
    REQUIRED[prop](cfg)
    refused(pyoci, bundle, cid, cfg, f"create without the REQUIRED {prop}")
