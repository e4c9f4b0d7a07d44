"""Device control on cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE program.

cgroup v2 has no devices files; the kernel asks the BPF programs attached to the
cgroup (and its ancestors) about every device open and mknod.  The program is
compiled from the same v1 semantics as the v1 backend (:class:`DeviceRules`):

    r2 = type, r3 = access, r4 = major, r5 = minor      (struct bpf_cgroup_dev_ctx)
    for each exception: if it matches, return its verdict
    return the default

An exception in deny mode allows when it covers *all* the access asked for (v1's
match_exception); one in allow mode denies when it covers *any* of it (v1's
match_exception_partial).  The program is attached with BPF_F_ALLOW_MULTI, then
programs attached before it (an earlier create on the same cgroup) are detached,
so there is no moment without a filter.
"""

from __future__ import annotations

import os
import struct

from pyoci.cgroups import CgroupError
from pyoci.cgroups.resources import FIELDS, DeviceRules

# struct bpf_insn: u8 code, u8 dst:4|src:4, s16 off, s32 imm
_LDX_MEM_W = 0x61
_ALU32_AND_K = 0x54
_ALU32_RSH_K = 0x74
_ALU32_MOV_K = 0xB4
_ALU32_MOV_X = 0xBC
_JMP_JNE_K = 0x55
_JMP_JEQ_K = 0x15
_JMP_JNE_X = 0x5D
_EXIT = 0x95

DEV_BLOCK, DEV_CHAR = 1, 2  # BPF_DEVCG_DEV_*
ACC = {"m": 1, "r": 2, "w": 4}  # BPF_DEVCG_ACC_*


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _imm32(value: int) -> int:
    """A u32 compare operand as the s32 the instruction holds."""
    return value - (1 << 32) if value >= 1 << 31 else value


def compile_rules(rules: DeviceRules) -> bytes:
    """The program (packed instructions) enforcing ``rules``."""
    prog = [
        _insn(_LDX_MEM_W, dst=2, src=1, off=0),   # r2 = ctx->access_type
        _insn(_ALU32_AND_K, dst=2, imm=0xFFFF),    # r2 &= 0xffff: device type
        _insn(_LDX_MEM_W, dst=3, src=1, off=0),   # r3 = ctx->access_type
        _insn(_ALU32_RSH_K, dst=3, imm=16),        # r3 >>= 16: access
        _insn(_LDX_MEM_W, dst=4, src=1, off=4),   # r4 = ctx->major
        _insn(_LDX_MEM_W, dst=5, src=1, off=8),   # r5 = ctx->minor
    ]
    verdict = 0 if rules.default_allow else 1
    for dtype, major, minor, access in rules.sorted_exceptions():
        block: list[tuple[int, int, int, int]] = []  # (code, dst, src, imm); jumps to next
        block.append((_JMP_JNE_K, 2, 0, DEV_CHAR if dtype == "c" else DEV_BLOCK))
        mask = sum(ACC[a] for a in access)
        if mask != 7:
            block.append((_ALU32_MOV_X, 1, 3, 0))     # r1 = r3
            block.append((_ALU32_AND_K, 1, 0, mask))  # r1 &= access
            if rules.default_allow:
                block.append((_JMP_JEQ_K, 1, 0, 0))   # no overlap: not this rule
            else:
                block.append((_JMP_JNE_X, 1, 3, 0))   # not all covered: not this rule
        if major >= 0:
            block.append((_JMP_JNE_K, 4, 0, _imm32(major)))
        if minor >= 0:
            block.append((_JMP_JNE_K, 5, 0, _imm32(minor)))
        n = len(block)
        for i, (code, dst, src, imm) in enumerate(block):
            jumps = code in (_JMP_JNE_K, _JMP_JEQ_K, _JMP_JNE_X)
            # a jump skips the rest of the block and its two-instruction verdict
            off = (n - 1 - i) + 2 if jumps else 0
            prog.append(_insn(code, dst=dst, src=src, off=off, imm=imm))
        prog.append(_insn(_ALU32_MOV_K, dst=0, imm=verdict))
        prog.append(_insn(_EXIT))
    prog.append(_insn(_ALU32_MOV_K, dst=0, imm=1 if rules.default_allow else 0))
    prog.append(_insn(_EXIT))
    return b"".join(prog)


def attach(cgroup_dir: str, program: bytes) -> None:
    """Load ``program`` and make it the only device program of ``cgroup_dir``."""
    from pyoci import syscalls as sc

    try:
        prog_fd = sc.bpf_prog_load(sc.BPF_PROG_TYPE_CGROUP_DEVICE, program)
    except OSError as e:
        raise CgroupError(f"{FIELDS['devices']}: cannot load the device filter: "
                          f"{e.strerror}") from None
    try:
        dir_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        os.close(prog_fd)
        raise CgroupError(f"cannot open cgroup {cgroup_dir}: {e.strerror}") from None
    try:
        old = sc.bpf_prog_query(dir_fd, sc.BPF_CGROUP_DEVICE)
        sc.bpf_prog_attach(dir_fd, prog_fd, sc.BPF_CGROUP_DEVICE, sc.BPF_F_ALLOW_MULTI)
        for prog_id in old:
            try:
                old_fd = sc.bpf_prog_get_fd_by_id(prog_id)
            except PermissionError:
                continue  # someone else's (LSM-protected) program: it can only restrict
            try:
                sc.bpf_prog_detach(dir_fd, old_fd, sc.BPF_CGROUP_DEVICE)
            finally:
                os.close(old_fd)
    except OSError as e:
        raise CgroupError(f"{FIELDS['devices']}: cannot attach the device filter to "
                          f"{cgroup_dir}: {e.strerror}") from None
    finally:
        os.close(dir_fd)
        os.close(prog_fd)


def apply_rules(cgroup_dir: str, rules: list) -> None:
    attach(cgroup_dir, compile_rules(DeviceRules.build(rules)))
