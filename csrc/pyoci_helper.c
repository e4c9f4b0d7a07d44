/*
 * pyoci's C helper: the few syscalls that glibc 2.36 does not wrap, and the
 * namespace-entry path that exec and create run on every call.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/keyctl.h>
#include <linux/mount.h>
#include <linux/openat2.h>

int pyoci_pivot_root(const char *new_root, const char *put_old)
{
	return (int)syscall(SYS_pivot_root, new_root, put_old);
}

int pyoci_openat2(int dirfd, const char *path, uint64_t flags, uint64_t mode,
		  uint64_t resolve)
{
	struct open_how how;

	memset(&how, 0, sizeof(how));
	how.flags = flags;
	how.mode = mode;
	how.resolve = resolve;
	return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

int pyoci_mount_setattr(int dirfd, const char *path, unsigned int flags,
			uint64_t attr_set, uint64_t attr_clr,
			uint64_t propagation, uint64_t userns_fd)
{
	struct mount_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.attr_set = attr_set;
	attr.attr_clr = attr_clr;
	attr.propagation = propagation;
	attr.userns_fd = userns_fd;
	return (int)syscall(SYS_mount_setattr, dirfd, path, flags, &attr,
			    sizeof(attr));
}

int pyoci_open_tree(int dirfd, const char *path, unsigned int flags)
{
	return (int)syscall(SYS_open_tree, dirfd, path, flags);
}

int pyoci_move_mount(int from_dirfd, const char *from_path, int to_dirfd,
		     const char *to_path, unsigned int flags)
{
	return (int)syscall(SYS_move_mount, from_dirfd, from_path, to_dirfd,
			    to_path, flags);
}

/*
 * Join namespaces in the order given (the caller puts the user namespace
 * first).  Returns -1 with errno set and *failed_index naming the entry that
 * failed, so the caller can say which namespace could not be joined.
 */
int pyoci_join_namespaces(const int *fds, const int *nstypes, int count,
			  int *failed_index)
{
	for (int i = 0; i < count; i++) {
		if (setns(fds[i], nstypes[i]) < 0) {
			*failed_index = i;
			return -1;
		}
	}
	return 0;
}

/* A fresh session keyring named after the container, so it shares none of the host's keys. */
int pyoci_join_session_keyring(const char *name)
{
	return (int)syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name, 0, 0, 0);
}

/*
 * bpf(2) for cgroup v2 device control (pyoci.cgroups.devices_bpf): load a
 * BPF_PROG_TYPE_CGROUP_DEVICE program, attach/detach/query it on a cgroup.
 */
#include <linux/bpf.h>

static int pyoci_bpf(int cmd, union bpf_attr *attr)
{
	return (int)syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

int pyoci_bpf_prog_load(unsigned int prog_type, const void *insns,
			unsigned int insn_cnt, const char *license,
			char *log_buf, unsigned int log_size)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.prog_type = prog_type;
	attr.insns = (uint64_t)(uintptr_t)insns;
	attr.insn_cnt = insn_cnt;
	attr.license = (uint64_t)(uintptr_t)license;
	if (log_buf && log_size) {
		attr.log_buf = (uint64_t)(uintptr_t)log_buf;
		attr.log_size = log_size;
		attr.log_level = 1;
	}
	return pyoci_bpf(BPF_PROG_LOAD, &attr);
}

int pyoci_bpf_prog_attach(int target_fd, int prog_fd, unsigned int attach_type,
			  unsigned int flags)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.target_fd = target_fd;
	attr.attach_bpf_fd = prog_fd;
	attr.attach_type = attach_type;
	attr.attach_flags = flags;
	return pyoci_bpf(BPF_PROG_ATTACH, &attr);
}

int pyoci_bpf_prog_detach(int target_fd, int prog_fd, unsigned int attach_type)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.target_fd = target_fd;
	attr.attach_bpf_fd = prog_fd;
	attr.attach_type = attach_type;
	return pyoci_bpf(BPF_PROG_DETACH, &attr);
}

/* On return *count holds the number of attached programs (even on ENOSPC). */
int pyoci_bpf_prog_query(int target_fd, unsigned int attach_type,
			 uint32_t *prog_ids, uint32_t *count)
{
	union bpf_attr attr;
	int ret;

	memset(&attr, 0, sizeof(attr));
	attr.query.target_fd = target_fd;
	attr.query.attach_type = attach_type;
	attr.query.prog_ids = (uint64_t)(uintptr_t)prog_ids;
	attr.query.prog_cnt = *count;
	ret = pyoci_bpf(BPF_PROG_QUERY, &attr);
	*count = attr.query.prog_cnt;
	return ret;
}

int pyoci_bpf_prog_get_fd_by_id(uint32_t prog_id)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.prog_id = prog_id;
	return pyoci_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
}
