/*
 * pyoci's C helper for the security boundary: prctl, the capability sets
 * (bounding, capset, ambient), fstatfs, the seccomp(2) and new mount API calls glibc
 * 2.36 does not wrap, and the in-process form of the final exec step
 * (pyoci_final.c; normally run by the trampoline, see pyoci_exec.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "pyoci_final.h"

int pyoci_prctl(int option, unsigned long arg2, unsigned long arg3,
		unsigned long arg4, unsigned long arg5)
{
	return prctl(option, arg2, arg3, arg4, arg5);
}

/*
 * Drop from the bounding set every capability 0..last_cap not in the mask
 * keep.  Returns 0, or -1 with errno set and *failed the capability.
 */
int pyoci_caps_drop_bounding(uint64_t keep, int last_cap, int *failed)
{
	for (int cap = 0; cap <= last_cap && cap < 64; cap++) {
		if (keep >> cap & 1)
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
			*failed = cap;
			return -1;
		}
	}
	return 0;
}

/*
 * Effective, permitted and inheritable in one capset(2), then the ambient set
 * cleared and each capability of the mask ambient raised.  Returns 0, or -1
 * with errno set and *failed: -1 for capset, -2 for the clear, else the
 * capability that could not be raised.
 */
int pyoci_caps_set(uint64_t effective, uint64_t permitted, uint64_t inheritable,
		   uint64_t ambient, int *failed)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];

	for (int i = 0; i < 2; i++) {
		data[i].effective = (uint32_t)(effective >> (32 * i));
		data[i].permitted = (uint32_t)(permitted >> (32 * i));
		data[i].inheritable = (uint32_t)(inheritable >> (32 * i));
	}
	if (syscall(SYS_capset, &hdr, data) < 0) {
		*failed = -1;
		return -1;
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) {
		*failed = -2;
		return -1;
	}
	for (int cap = 0; cap < 64; cap++) {
		if (!(ambient >> cap & 1))
			continue;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0) {
			*failed = cap;
			return -1;
		}
	}
	return 0;
}

/* f_type of the filesystem under fd (fstatfs), or -1 with errno. */
long long pyoci_fs_magic(int fd)
{
	struct statfs st;

	if (fstatfs(fd, &st) < 0)
		return -1;
	return (long long)(unsigned long)st.f_type;
}

/* seccomp(2) with a raw argument, for probing flags and actions. */
long pyoci_seccomp(unsigned int op, unsigned int flags, void *args)
{
	return syscall(SYS_seccomp, op, flags, args);
}

/* Load count BPF instructions now; returns the listener fd with NEW_LISTENER. */
int pyoci_seccomp_load(const void *bpf, unsigned int count, unsigned int flags)
{
	struct sock_fprog prog;

	prog.len = (unsigned short)count;
	prog.filter = (struct sock_filter *)bpf;
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

int pyoci_fsopen(const char *fsname, unsigned int flags)
{
	return (int)syscall(SYS_fsopen, fsname, flags);
}

int pyoci_fsconfig(int fd, unsigned int cmd, const char *key, const void *value, int aux)
{
	return (int)syscall(SYS_fsconfig, fd, cmd, key, value, aux);
}

int pyoci_fsmount(int fd, unsigned int flags, unsigned int attr_flags)
{
	return (int)syscall(SYS_fsmount, fd, flags, attr_flags);
}

/* The final step in this process; returns only on failure (-1, errno set). */
int pyoci_final_exec(const unsigned char *ctl, unsigned long len, char *const argv[],
		     char *const envp[])
{
	long ret = pyoci_final_run(ctl, len, argv, envp);

	errno = (int)-ret;
	return -1;
}
