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
