/*
 * pyoci's C helper: the few syscalls that glibc 2.36 does not wrap, and the
 * namespace-entry path that exec and create run on every call.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/keyctl.h>
#include <linux/mount.h>
#include <linux/openat2.h>

/* Steps of pyoci_exec_enter, as reported in pyoci_exec_report.step. */
#define PYOCI_EXEC_OK 0
#define PYOCI_EXEC_DUMPABLE 1
#define PYOCI_EXEC_CGROUP 2
#define PYOCI_EXEC_SETNS 3
#define PYOCI_EXEC_CLONE 4

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

/*
 * The namespace-entry path of `exec`, all in C so that nothing between fork
 * and the new process runs the interpreter in a half-joined state.
 *
 * The caller (the runtime) forks an intermediate process which, in C only:
 * blocks every signal, makes itself non-dumpable (before it can be seen from
 * the container: the flag is inherited, and /proc/<pid>/{exe,fd,mem,...} of
 * a non-dumpable process are closed to the container), moves itself into the
 * container's v1 cgroups ("0" to the tasks file next to each open
 * cgroup.procs fd, see join_cgroup_fd), setns()es into each namespace fd in
 * the order given (user namespace first), and then clones with CLONE_PARENT
 * (into the container's v2 cgroup), so that the new process is in the
 * container's PID namespace and is the caller's own child (the caller can
 * wait for it; no subreaper is needed).  The intermediate writes a struct pyoci_exec_report
 * to report_fd and exits.  It first closes close_fds, which neither it nor the
 * new process may hold.
 *
 * Returns the intermediate's pid in the caller (or -1 with errno), and 0 in
 * the new process, which returns into the interpreter with every signal
 * blocked, already inside every namespace of the container.
 */
struct pyoci_exec_report {
	int pid;   /* the new process (host pid), or 0 on failure */
	int err;   /* errno of the failed step */
	int step;  /* PYOCI_EXEC_* */
	int index; /* which cgroup or namespace fd failed */
};

#ifndef CGROUP_SUPER_MAGIC
#define CGROUP_SUPER_MAGIC 0x27e0eb
#endif
#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif

/*
 * The directory of the cgroup.procs file open as fd, opened O_RDONLY and
 * checked to hold that very file (same device and inode); -1 if not.
 */
static int procs_dir(int fd)
{
	char link[32], path[PATH_MAX];
	struct stat a, b;
	ssize_t n;
	char *slash;
	int dir;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n <= 0 || n >= (ssize_t)sizeof(path) - 1)
		return -1;
	path[n] = '\0';
	slash = strrchr(path, '/');
	if (!slash || slash == path || strcmp(slash, "/cgroup.procs") != 0)
		return -1;
	*slash = '\0';
	dir = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return -1;
	if (fstat(fd, &a) < 0 ||
	    fstatat(dir, "cgroup.procs", &b, AT_SYMLINK_NOFOLLOW) < 0 ||
	    a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		close(dir);
		return -1;
	}
	return dir;
}

/*
 * Join the cgroup whose cgroup.procs is open as fd without the kernel's
 * global threadgroup lock when possible: a pid (or "0") written to
 * cgroup.procs takes it for writing, and its first taker waits for an RCU
 * grace period (5-20 ms).  A v1 hierarchy is joined through the sibling
 * "tasks" file, where "0" moves just the calling thread (the intermediate
 * has one); a v2 directory is returned in *v2_dir for the clone
 * (CLONE_INTO_CGROUP).  Anything else is the plain write.  0 or -1 (errno).
 */
static int join_cgroup_fd(int fd, int *v2_dir)
{
	struct statfs st;
	int dir, tasks, ret;

	if (fstatfs(fd, &st) < 0)
		st.f_type = 0;
	if (st.f_type == CGROUP_SUPER_MAGIC) {
		dir = procs_dir(fd);
		if (dir >= 0) {
			tasks = openat(dir, "tasks", O_WRONLY | O_CLOEXEC);
			close(dir);
			if (tasks >= 0) {
				ret = write(tasks, "0", 1) < 0 ? -1 : 0;
				close(tasks);
				return ret;
			}
		}
	} else if (st.f_type == CGROUP2_SUPER_MAGIC && *v2_dir < 0) {
		*v2_dir = procs_dir(fd);
		if (*v2_dir >= 0)
			return 0;
	}
	return write(fd, "0", 1) < 0 ? -1 : 0;
}

struct pyoci_clone_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack,
		stack_size, tls, set_tid, set_tid_size, cgroup;
};

static void exec_report_exit(int report_fd, struct pyoci_exec_report *r)
{
	ssize_t n;

	do {
		n = write(report_fd, r, sizeof(*r));
	} while (n < 0 && errno == EINTR);
	_exit(r->pid > 0 ? 0 : 1);
}

int pyoci_exec_enter(const int *ns_fds, const int *ns_types, int ns_count,
		     const int *cg_fds, int cg_count, const int *close_fds,
		     int close_count, int report_fd)
{
	struct pyoci_exec_report r;
	struct pyoci_clone_args args;
	sigset_t all, old;
	int v2_dir = -1, v2_index = -1;
	pid_t pid;

	sigfillset(&all);
	if (sigprocmask(SIG_BLOCK, &all, &old) < 0)
		return -1;
	pid = fork();
	if (pid != 0) {
		int saved = errno;

		sigprocmask(SIG_SETMASK, &old, NULL);
		errno = saved;
		return pid;
	}

	/* The intermediate: C only from here on; it never returns. */
	memset(&r, 0, sizeof(r));
	r.index = -1;
	/* e.g. the runtime's lock on the container: held here, it would outlive the
	 * runtime in a process the container's freezer can stop. */
	for (int i = 0; i < close_count; i++)
		close(close_fds[i]);
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		r.err = errno;
		r.step = PYOCI_EXEC_DUMPABLE;
		exec_report_exit(report_fd, &r);
	}
	for (int i = 0; i < cg_count; i++) {
		int had_v2 = v2_dir >= 0;

		if (join_cgroup_fd(cg_fds[i], &v2_dir) < 0) {
			r.err = errno;
			r.step = PYOCI_EXEC_CGROUP;
			r.index = i;
			exec_report_exit(report_fd, &r);
		}
		if (!had_v2 && v2_dir >= 0)
			v2_index = i; /* joined by the clone: its fd is kept until then */
		else
			close(cg_fds[i]);
	}
	for (int i = 0; i < ns_count; i++) {
		if (setns(ns_fds[i], ns_types[i]) < 0) {
			r.err = errno;
			r.step = PYOCI_EXEC_SETNS;
			r.index = i;
			exec_report_exit(report_fd, &r);
		}
		close(ns_fds[i]);
	}
	/*
	 * Like fork(), but the child's parent is our parent: the runtime; born in
	 * the v2 cgroup if there is one.  The kernel checks that against our
	 * credentials and cgroup namespace, which are the container's by now (a
	 * delegation boundary may refuse it): then the write through the fd the
	 * runtime opened (its credentials) and a plain clone.  The PID namespace
	 * already has its init, so a refused clone leaves it as it was.
	 */
	pid = -1;
	if (v2_dir >= 0) {
		memset(&args, 0, sizeof(args));
		/* exit_signal stays 0: with CLONE_PARENT the child gets ours (SIGCHLD) */
		args.flags = CLONE_PARENT | CLONE_INTO_CGROUP;
		args.cgroup = (uint64_t)v2_dir;
		pid = (pid_t)syscall(SYS_clone3, &args, sizeof(args));
		close(v2_dir);
		if (pid < 0 && write(cg_fds[v2_index], "0", 1) < 0) {
			r.err = errno;
			r.step = PYOCI_EXEC_CGROUP;
			r.index = v2_index;
			exec_report_exit(report_fd, &r);
		}
		close(cg_fds[v2_index]);
		if (pid == 0)
			return 0;
	}
	if (pid < 0)
		pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, NULL, NULL, 0);
	if (pid == 0)
		return 0;
	if (pid < 0) {
		r.err = errno;
		r.step = PYOCI_EXEC_CLONE;
		exec_report_exit(report_fd, &r);
	}
	r.pid = pid;
	exec_report_exit(report_fd, &r);
	return -1; /* not reached */
}

static void die_of_signal(int sig)
{
	_exit(128 + sig);
}

/*
 * init, while created: exit 128+sig on each of the count signals.  A C
 * handler, set in one call: init is PID 1 of its namespace, where a signal
 * without a handler is dropped.  execve resets it to the default.
 */
int pyoci_die_on_signals(const int *sigs, int count)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = die_of_signal;
	sigfillset(&sa.sa_mask);
	for (int i = 0; i < count; i++)
		sigaction(sigs[i], &sa, NULL); /* one the C library keeps: refused, skipped */
	return 0;
}

int pyoci_close_range(unsigned int first, unsigned int last, unsigned int flags)
{
	return (int)syscall(SYS_close_range, first, last, flags);
}
