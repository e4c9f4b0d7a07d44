/*
 * pyoci's C helper for the security boundary: prctl, fstatfs, the seccomp(2) and new mount API calls glibc
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
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "pyoci_final.h"

int pyoci_prctl(int option, unsigned long arg2, unsigned long arg3,
		unsigned long arg4, unsigned long arg5)
{
	return prctl(option, arg2, arg3, arg4, arg5);
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
