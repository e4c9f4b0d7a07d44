"""cffi builder for ``pyoci._native``: the only place pyoci declares C.

Everything else reaches the kernel through :mod:`pyoci.syscalls`, which wraps
these declarations with Python errors.
"""

from cffi import FFI

CDEF = """
#define CLONE_NEWNS ...
#define CLONE_NEWUTS ...
#define CLONE_NEWIPC ...
#define CLONE_NEWUSER ...
#define CLONE_NEWPID ...
#define CLONE_NEWNET ...
#define CLONE_NEWCGROUP ...
#define CLONE_NEWTIME ...

#define MS_RDONLY ...
#define MS_NOSUID ...
#define MS_NODEV ...
#define MS_NOEXEC ...
#define MS_SYNCHRONOUS ...
#define MS_REMOUNT ...
#define MS_MANDLOCK ...
#define MS_DIRSYNC ...
#define MS_NOSYMFOLLOW ...
#define MS_NOATIME ...
#define MS_NODIRATIME ...
#define MS_BIND ...
#define MS_MOVE ...
#define MS_REC ...
#define MS_SILENT ...
#define MS_POSIXACL ...
#define MS_UNBINDABLE ...
#define MS_PRIVATE ...
#define MS_SLAVE ...
#define MS_SHARED ...
#define MS_RELATIME ...
#define MS_STRICTATIME ...
#define MS_LAZYTIME ...

#define MNT_DETACH ...

#define MOUNT_ATTR_RDONLY ...
#define MOUNT_ATTR_NOSUID ...
#define MOUNT_ATTR_NODEV ...
#define MOUNT_ATTR_NOEXEC ...
#define MOUNT_ATTR__ATIME ...
#define MOUNT_ATTR_RELATIME ...
#define MOUNT_ATTR_NOATIME ...
#define MOUNT_ATTR_STRICTATIME ...
#define MOUNT_ATTR_NODIRATIME ...
#define MOUNT_ATTR_IDMAP ...
#define MOUNT_ATTR_NOSYMFOLLOW ...
#define AT_RECURSIVE ...
#define AT_EMPTY_PATH ...
#define OPEN_TREE_CLONE ...
#define OPEN_TREE_CLOEXEC ...
#define MOVE_MOUNT_F_EMPTY_PATH ...

#define RESOLVE_NO_XDEV ...
#define RESOLVE_NO_MAGICLINKS ...
#define RESOLVE_NO_SYMLINKS ...
#define RESOLVE_BENEATH ...
#define RESOLVE_IN_ROOT ...

int unshare(int flags);
int setns(int fd, int nstype);
int mount(const char *source, const char *target, const char *fstype,
          unsigned long flags, const void *data);
int umount2(const char *target, int flags);
int sethostname(const char *name, size_t len);
int setdomainname(const char *name, size_t len);
int personality(unsigned long persona);

int pyoci_pivot_root(const char *new_root, const char *put_old);
int pyoci_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode,
                  uint64_t resolve);
int pyoci_mount_setattr(int dirfd, const char *path, unsigned int flags,
                        uint64_t attr_set, uint64_t attr_clr,
                        uint64_t propagation, uint64_t userns_fd);
int pyoci_open_tree(int dirfd, const char *path, unsigned int flags);
int pyoci_move_mount(int from_dirfd, const char *from_path, int to_dirfd,
                     const char *to_path, unsigned int flags);
int pyoci_join_namespaces(const int *fds, const int *nstypes, int count,
                          int *failed_index);
int pyoci_join_session_keyring(const char *name);

#define BPF_PROG_TYPE_CGROUP_DEVICE ...
#define BPF_CGROUP_DEVICE ...
#define BPF_F_ALLOW_MULTI ...

int pyoci_bpf_prog_load(unsigned int prog_type, const void *insns,
                        unsigned int insn_cnt, const char *license,
                        char *log_buf, unsigned int log_size);
int pyoci_bpf_prog_attach(int target_fd, int prog_fd, unsigned int attach_type,
                          unsigned int flags);
int pyoci_bpf_prog_detach(int target_fd, int prog_fd, unsigned int attach_type);
int pyoci_bpf_prog_query(int target_fd, unsigned int attach_type,
                         uint32_t *prog_ids, uint32_t *count);
int pyoci_bpf_prog_get_fd_by_id(uint32_t prog_id);
"""

SOURCE = """
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <unistd.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <linux/openat2.h>
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef MS_NOSYMFOLLOW
#define MS_NOSYMFOLLOW 256
#endif
int pyoci_pivot_root(const char *new_root, const char *put_old);
int pyoci_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode,
                  uint64_t resolve);
int pyoci_mount_setattr(int dirfd, const char *path, unsigned int flags,
                        uint64_t attr_set, uint64_t attr_clr,
                        uint64_t propagation, uint64_t userns_fd);
int pyoci_open_tree(int dirfd, const char *path, unsigned int flags);
int pyoci_move_mount(int from_dirfd, const char *from_path, int to_dirfd,
                     const char *to_path, unsigned int flags);
int pyoci_join_namespaces(const int *fds, const int *nstypes, int count,
                          int *failed_index);
int pyoci_join_session_keyring(const char *name);
#include <linux/bpf.h>
int pyoci_bpf_prog_load(unsigned int prog_type, const void *insns,
                        unsigned int insn_cnt, const char *license,
                        char *log_buf, unsigned int log_size);
int pyoci_bpf_prog_attach(int target_fd, int prog_fd, unsigned int attach_type,
                          unsigned int flags);
int pyoci_bpf_prog_detach(int target_fd, int prog_fd, unsigned int attach_type);
int pyoci_bpf_prog_query(int target_fd, unsigned int attach_type,
                         uint32_t *prog_ids, uint32_t *count);
int pyoci_bpf_prog_get_fd_by_id(uint32_t prog_id);
"""

# --- exec: the namespace-entry hot path (pyoci_helper.c, pyoci_exec_enter).
_EXEC_DECLS = """
struct pyoci_exec_report { int pid; int err; int step; int index; };
int pyoci_exec_enter(const int *ns_fds, const int *ns_types, int ns_count,
                     const int *cg_fds, int cg_count, const int *close_fds,
                     int close_count, int report_fd);
int pyoci_close_range(unsigned int first, unsigned int last, unsigned int flags);
int pyoci_fork_into_cgroup(int cgroup_fd);
int pyoci_die_on_signals(const int *sigs, int count);
"""
CDEF += _EXEC_DECLS
SOURCE += _EXEC_DECLS

# --- security: capabilities, seccomp, procfs, the final exec step (pyoci_security.c,
# pyoci_final.c) and the freestanding trampoline (pyoci_exec.c) embedded as bytes.
_SECURITY_DECLS = """
int pyoci_prctl(int option, unsigned long arg2, unsigned long arg3,
                unsigned long arg4, unsigned long arg5);
long long pyoci_fs_magic(int fd);
long pyoci_seccomp(unsigned int op, unsigned int flags, void *args);
int pyoci_seccomp_load(const void *bpf, unsigned int count, unsigned int flags);
int pyoci_fsopen(const char *fsname, unsigned int flags);
int pyoci_fsconfig(int fd, unsigned int cmd, const char *key, const void *value, int aux);
int pyoci_fsmount(int fd, unsigned int flags, unsigned int attr_flags);
int pyoci_final_exec(const unsigned char *ctl, unsigned long len, char *const argv[],
                     char *const envp[]);
"""
CDEF += _SECURITY_DECLS + "const unsigned char *pyoci_exec_image(size_t *len);\n"


def _trampoline_source() -> str:
    """Compile csrc/pyoci_exec.c into a tiny static binary; return it as a C array."""
    import os
    import shlex
    import subprocess
    import tempfile

    here = os.path.dirname(os.path.abspath(__file__))
    cc = shlex.split(os.environ.get("CC") or "cc")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "pyoci-exec")
        subprocess.run([*cc, "-Os", "-static", "-nostdlib", "-ffreestanding", "-fno-builtin",
                        "-fno-stack-protector", "-fno-asynchronous-unwind-tables", "-fno-pie",
                        "-no-pie", "-Wall", "-Wl,--build-id=none", "-Wl,-z,noexecstack", "-s",
                        "-I", here, "-o", out, os.path.join(here, "pyoci_exec.c")], check=True)
        with open(out, "rb") as f:
            image = f.read()
    body = ",".join(str(b) for b in image)
    return (f"static const unsigned char pyoci_exec_bytes[{len(image)}] = {{{body}}};\n"
            "const unsigned char *pyoci_exec_image(size_t *len)\n"
            "{ *len = sizeof(pyoci_exec_bytes); return pyoci_exec_bytes; }\n")


SOURCE += '#include "pyoci_final.h"\n' + _SECURITY_DECLS + _trampoline_source()
SECURITY_SOURCES = ["csrc/pyoci_security.c", "csrc/pyoci_final.c"]

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "pyoci._native",
    SOURCE,
    sources=["csrc/pyoci_helper.c", "csrc/pyoci_fork.c", *SECURITY_SOURCES],
    include_dirs=["csrc"],
    extra_compile_args=["-O2", "-Wall"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
