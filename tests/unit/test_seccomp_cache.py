"""The cache of compiled seccomp filters (pyoci.seccomp_cache): a profile compiled before
is answered from it, byte for byte, and anything different or damaged is compiled anew."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pyoci import seccomp, seccomp_cache

PROFILE = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
           "syscalls": [{"names": ["mkdir", "no_such_syscall"], "action": "SCMP_ACT_ERRNO"},
                        {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
                         "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]}]}


def entries(root: str) -> list[str]:
    return sorted(os.listdir(os.path.join(root, seccomp_cache.DIR_NAME)))


def created(profile: dict, root: str) -> seccomp.Filter:
    """compile_filter, then what create does once the container exists."""
    filt = seccomp.compile_filter(profile, state_root=root)
    seccomp.remember(filt)
    return filt


def test_hit_is_the_same_filter(tmp_path):
    root = str(tmp_path)
    fresh = seccomp.compile_filter(PROFILE)
    first = seccomp.compile_filter(PROFILE, state_root=root)
    assert not os.path.exists(os.path.join(root, seccomp_cache.DIR_NAME))  # no container yet
    seccomp.remember(first)
    assert len(entries(root)) == 1
    hit = seccomp_cache.load(root, PROFILE)
    assert hit is not None and hit.bpf == fresh.bpf == first.bpf
    again = seccomp.compile_filter(PROFILE, state_root=root)
    assert (again.bpf, again.flags, again.skipped) == (fresh.bpf, fresh.flags, fresh.skipped)
    assert fresh.skipped == ["no_such_syscall"]


def test_hit_loads_no_libseccomp(tmp_path):
    """A hit neither imports pyseccomp nor compiles: the point of the cache."""
    created(PROFILE, str(tmp_path))
    probe = ("import sys; sys.path[:0] = sys.argv[2:]; from pyoci import seccomp; "
             f"f = seccomp.compile_filter({PROFILE!r}, state_root=sys.argv[1]); "
             "print(len(f.bpf) > 0, 'pyseccomp' in sys.modules, 'ctypes' in sys.modules)")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", probe, str(tmp_path), *sys.path],
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False", "False"]


def test_a_different_profile_is_compiled(tmp_path):
    root = str(tmp_path)
    created(PROFILE, root)
    other = {**PROFILE, "syscalls": PROFILE["syscalls"][:1]}
    assert seccomp_cache.load(root, other) is None
    assert created(other, root).bpf == seccomp.compile_filter(other).bpf
    assert len(entries(root)) == 2


@pytest.mark.parametrize("damage", ["truncate", "garbage", "bpf-length", "library"])
def test_a_damaged_entry_is_a_miss(tmp_path, damage):
    root = str(tmp_path)
    expected = created(PROFILE, root).bpf
    path = os.path.join(root, seccomp_cache.DIR_NAME, entries(root)[0])
    with open(path, "rb") as f:
        data = f.read()
    header, bpf = data.split(b"\n", 1)
    if damage == "truncate":
        data = data[:-8]  # still whole instructions: only the stored length tells
    elif damage == "garbage":
        data = b"\x00garbage"
    elif damage == "bpf-length":
        data = header + b"\n" + bpf + bpf[:8]
    else:  # the library that compiled it is not the one there now
        data = header.replace(b"libseccomp.so", b"libseccomp.so.0", 1) + b"\n" + bpf
    with open(path, "wb") as f:
        f.write(data)
    assert seccomp_cache.load(root, PROFILE) is None
    assert created(PROFILE, root).bpf == expected
    assert seccomp_cache.load(root, PROFILE) is not None  # written anew


def test_errors_are_never_cached(tmp_path):
    bad = {**PROFILE, "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_BOGUS"}]}
    for _ in range(2):
        with pytest.raises(seccomp.ConfigError, match="SCMP_ACT_BOGUS"):
            created(bad, str(tmp_path))
    assert not os.path.exists(os.path.join(tmp_path, seccomp_cache.DIR_NAME))


def test_flags_checked_on_every_call(tmp_path):
    flagged = {**PROFILE, "flags": ["SECCOMP_FILTER_FLAG_BOGUS"]}
    for _ in range(2):
        with pytest.raises(seccomp.ConfigError, match="unknown seccomp flag"):
            seccomp.compile_filter(flagged, state_root=str(tmp_path))


def test_no_state_root_no_cache(tmp_path):
    root = tmp_path / "not-yet"
    created(PROFILE, str(root))
    assert not root.exists()  # the first create makes the root, with its own mode


def test_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(seccomp_cache, "MAX_ENTRIES", 3)
    root = str(tmp_path)
    for n in range(5):
        rules = [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": n + 1}]
        created({**PROFILE, "syscalls": rules}, root)
        assert len(entries(root)) <= 3
