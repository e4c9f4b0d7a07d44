/*
 * fork for stage1 (pyoci/init.py): the only C in pyoci that calls the interpreter.
 */
#define Py_LIMITED_API 0x03070000
#include <Python.h> /* first: it sets the feature macros (_GNU_SOURCE) */

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * os.fork(), but the child is born in the cgroup v2 directory cgroup_fd
 * (clone3 CLONE_INTO_CGROUP).  Writing a pid to cgroup.procs takes the
 * kernel's global threadgroup lock for writing, whose first taker waits for an
 * RCU grace period (5-20 ms); a clone into the cgroup takes it for reading.
 *
 * The interpreter's side is os.fork()'s: with the GIL (cffi released it for
 * the call), PyOS_BeforeFork, then PyOS_AfterFork_Child or _Parent.  For a
 * single-threaded caller only (stage1): glibc's own fork bookkeeping, which
 * matters for other threads' locks, is skipped.  Returns the pid, 0 in the
 * child, -1 with errno (e.g. EACCES from the cgroup's delegation rules).
 */
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

struct pyoci_clone_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack,
		stack_size, tls, set_tid, set_tid_size, cgroup;
};

int pyoci_fork_into_cgroup(int cgroup_fd)
{
	struct pyoci_clone_args args;
	PyGILState_STATE gil;
	long pid;
	int saved;

	memset(&args, 0, sizeof(args));
	args.flags = CLONE_INTO_CGROUP;
	args.exit_signal = SIGCHLD;
	args.cgroup = (uint64_t)cgroup_fd;
	gil = PyGILState_Ensure();
	PyOS_BeforeFork();
	pid = syscall(SYS_clone3, &args, sizeof(args));
	saved = errno;
	if (pid == 0)
		PyOS_AfterFork_Child();
	else
		PyOS_AfterFork_Parent();
	PyGILState_Release(gil);
	errno = saved;
	return (int)pid;
}
