/*
 * The last step before the container's program runs: everything that must
 * happen after the runtime's own work is done and right before execve(2).
 *
 *   1. write the LSM exec label (apparmor/selinux) through an fd the runtime
 *      opened and verified on a private procfs;
 *   2. load the seccomp filter (BPF prepared by libseccomp in the runtime),
 *      and for SCMP_ACT_NOTIFY send the listener fd with the container state
 *      over the already connected listener socket;
 *   3. drop what was kept only to load the filter (CAP_SYS_ADMIN, needed when
 *      noNewPrivileges is false, and CAP_SETPCAP to drop it from the bounding set)
 *      and set the final capability sets;
 *   4. mark every fd from keep_fds on close-on-exec;
 *   5. execve.
 *
 * No libc: this file is compiled twice, into the freestanding trampoline
 * (pyoci_exec.c, run from a sealed memfd so that /proc/self/exe of the
 * container's first process is never the host's interpreter) and into
 * pyoci._native as a fallback.  It only makes raw system calls, so nothing
 * the runtime does after the filter is loaded goes through Python.
 */
#include <stddef.h>
#include <stdint.h>
#include <asm/unistd.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "pyoci_final.h"

#if defined(__x86_64__)
static long pf_sys6(long n, long a, long b, long c, long d, long e, long f)
{
	register long r10 __asm__("r10") = d;
	register long r8 __asm__("r8") = e;
	register long r9 __asm__("r9") = f;
	long ret;

	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return ret;
}
#elif defined(__aarch64__)
static long pf_sys6(long n, long a, long b, long c, long d, long e, long f)
{
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	register long x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;

	__asm__ volatile("svc 0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory");
	return x0;
}
#else
#error "pyoci_final.c: add the system call convention of this architecture"
#endif

#define SYS(n, a, b, c) pf_sys6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)

#define PF_F_SETFD 2
#define PF_FD_CLOEXEC 1
#define PF_CLOSE_RANGE_CLOEXEC (1U << 2)
#define PF_SOL_SOCKET 1
#define PF_SCM_RIGHTS 1
#define PF_MSG_NOSIGNAL 0x4000
#define PF_EINTR 4
#define PF_PR_CAPBSET_DROP 24
#define PF_CAP_SETPCAP 8

struct pf_iovec {
	void *base;
	size_t len;
};

struct pf_msghdr {
	void *name;
	int namelen;
	struct pf_iovec *iov;
	size_t iovlen;
	void *control;
	size_t controllen;
	int flags;
};

struct pf_cmsg_fd {
	size_t len;
	int level;
	int type;
	int fd;
	int pad;
};

static const char *pf_strerror(long err)
{
	switch (err) {
	case 1: return "operation not permitted";
	case 2: return "no such file or directory";
	case 5: return "input/output error";
	case 7: return "argument list too long";
	case 8: return "exec format error";
	case 9: return "bad file descriptor";
	case 12: return "cannot allocate memory";
	case 13: return "permission denied";
	case 14: return "bad address";
	case 20: return "not a directory";
	case 21: return "is a directory";
	case 22: return "invalid argument";
	case 26: return "text file busy";
	case 32: return "broken pipe";
	case 38: return "function not implemented";
	case 40: return "too many levels of symbolic links";
	case 95: return "operation not supported";
	case 104: return "connection reset by peer";
	case 107: return "transport endpoint is not connected";
	default: return 0;
	}
}

static size_t pf_append(char *buf, size_t pos, size_t cap, const char *s)
{
	while (*s && pos < cap)
		buf[pos++] = *s++;
	return pos;
}

static size_t pf_append_num(char *buf, size_t pos, size_t cap, long v)
{
	char tmp[24];
	int n = 0;

	if (v < 0) {
		pos = pf_append(buf, pos, cap, "-");
		v = -v;
	}
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v && n < (int)sizeof(tmp));
	while (n && pos < cap)
		buf[pos++] = tmp[--n];
	return pos;
}

/* "E<what>: <error>" to the report fd (the exec fifo), as init reports failures. */
static void pf_report(int fd, const char *what, const char *path, long err)
{
	char buf[512];
	size_t pos = 0, cap = sizeof(buf);
	const char *msg = pf_strerror(err);

	if (fd < 0)
		return;
	pos = pf_append(buf, pos, cap, "E");
	pos = pf_append(buf, pos, cap, what);
	if (path) {
		pos = pf_append(buf, pos, cap, " \"");
		pos = pf_append(buf, pos, cap, path);
		pos = pf_append(buf, pos, cap, "\"");
	}
	pos = pf_append(buf, pos, cap, ": ");
	if (msg) {
		pos = pf_append(buf, pos, cap, msg);
	} else {
		pos = pf_append(buf, pos, cap, "errno ");
		pos = pf_append_num(buf, pos, cap, err);
	}
	SYS(__NR_write, fd, buf, pos);
}

static long pf_write_all(int fd, const unsigned char *p, size_t len)
{
	while (len) {
		long n = SYS(__NR_write, fd, p, len);

		if (n == -PF_EINTR)
			continue;
		if (n < 0)
			return n;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One sendmsg carrying the payload and the notify fd (SCM_RIGHTS). */
static long pf_send_fd(int sock, int fd, const unsigned char *payload, size_t len)
{
	struct pf_iovec iov = { (void *)payload, len };
	struct pf_cmsg_fd cmsg = { 0 };
	struct pf_msghdr msg = { 0 };
	long n;

	cmsg.len = offsetof(struct pf_cmsg_fd, fd) + sizeof(int);
	cmsg.level = PF_SOL_SOCKET;
	cmsg.type = PF_SCM_RIGHTS;
	cmsg.fd = fd;
	msg.iov = &iov;
	msg.iovlen = 1;
	msg.control = &cmsg;
	msg.controllen = sizeof(cmsg);
	do {
		n = pf_sys6(__NR_sendmsg, sock, (long)&msg, PF_MSG_NOSIGNAL, 0, 0, 0);
	} while (n == -PF_EINTR);
	if (n < 0)
		return n;
	if ((size_t)n < len)
		return pf_write_all(sock, payload + n, len - (size_t)n);
	return 0;
}

/*
 * The configured sets, within what this process still has: the trampoline's own
 * execve already recomputed them (for a non-root user only the ambient set survives
 * it, and the program's execve would keep no more than that anyway).
 */
static long pf_capset(const struct pyoci_final_hdr *h)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct cur[2], data[2];
	long ret;
	int i;

	ret = SYS(__NR_capget, &hdr, cur, 0);
	if (ret < 0)
		return ret;
	for (i = 0; i < 2; i++) {
		data[i].permitted = h->caps[2 + i] & cur[i].permitted;
		data[i].effective = h->caps[0 + i] & data[i].permitted;
		data[i].inheritable = h->caps[4 + i];
	}
	hdr.version = _LINUX_CAPABILITY_VERSION_3;
	return SYS(__NR_capset, &hdr, data, 0);
}

static void pf_cloexec_from(unsigned int first)
{
#ifdef __NR_close_range
	if (SYS(__NR_close_range, first, ~0U, PF_CLOSE_RANGE_CLOEXEC) == 0)
		return;
#endif
	for (unsigned int fd = first; fd < 4096; fd++)
		SYS(__NR_fcntl, fd, PF_F_SETFD, PF_FD_CLOEXEC);
}

long pyoci_final_run(const unsigned char *ctl, unsigned long len, char *const argv[],
		     char *const envp[])
{
	const struct pyoci_final_hdr *h = (const void *)ctl;
	const unsigned char *p;
	const char *path;
	int report;
	long ret;

	if (len < sizeof(*h) || h->magic != PYOCI_FINAL_MAGIC || h->version != PYOCI_FINAL_VERSION)
		return -22;
	if (sizeof(*h) + (unsigned long)h->path_len + (unsigned long)h->bpf_len * 8 +
	    h->payload_len + h->lsm_len > len)
		return -22;
	report = h->report_fd;
	p = ctl + sizeof(*h);
	path = (const char *)p;
	if (h->path_len == 0 || path[h->path_len - 1] != '\0')
		return -22;
	p += h->path_len;
	if (report >= 0)
		SYS(__NR_fcntl, report, PF_F_SETFD, PF_FD_CLOEXEC);

	if (h->lsm_fd >= 0) {
		ret = pf_write_all(h->lsm_fd, p + (size_t)h->bpf_len * 8 + h->payload_len,
				   h->lsm_len);
		if (ret < 0) {
			pf_report(report, "apply LSM exec label", 0, -ret);
			return ret;
		}
		SYS(__NR_close, h->lsm_fd, 0, 0);
	}

	if (h->flags & PYOCI_FINAL_SECCOMP) {
		struct sock_fprog prog;
		unsigned int sflags = h->seccomp_flags;

		prog.len = (unsigned short)h->bpf_len;
		prog.filter = (struct sock_filter *)p;
		if ((h->flags & PYOCI_FINAL_NOTIFY) && (sflags & SECCOMP_FILTER_FLAG_TSYNC))
			sflags |= (1U << 4); /* SECCOMP_FILTER_FLAG_TSYNC_ESRCH */
		ret = SYS(__NR_seccomp, SECCOMP_SET_MODE_FILTER, sflags, &prog);
		if (ret < 0) {
			pf_report(report, "load seccomp filter", 0, -ret);
			return ret;
		}
		if (h->flags & PYOCI_FINAL_NOTIFY) {
			int nfd = (int)ret;

			ret = pf_send_fd(h->listener_fd, nfd, p + (size_t)h->bpf_len * 8,
					 h->payload_len);
			SYS(__NR_close, nfd, 0, 0);
			SYS(__NR_close, h->listener_fd, 0, 0);
			if (ret < 0) {
				pf_report(report, "send seccomp notify fd to listenerPath", 0, -ret);
				return ret;
			}
		}
	}

	if (h->flags & PYOCI_FINAL_CAPS) {
		for (int cap = 0; cap < 64; cap++) {
			if (cap == PF_CAP_SETPCAP || !(h->drop_bounding[cap / 32] & (1u << (cap % 32))))
				continue;
			ret = SYS(__NR_prctl, PF_PR_CAPBSET_DROP, cap, 0);
			if (ret < 0) {
				pf_report(report, "drop from the bounding set", 0, -ret);
				return ret;
			}
		}
		if (h->drop_bounding[0] & (1u << PF_CAP_SETPCAP)) {
			ret = SYS(__NR_prctl, PF_PR_CAPBSET_DROP, PF_CAP_SETPCAP, 0);
			if (ret < 0) {
				pf_report(report, "drop from the bounding set", 0, -ret);
				return ret;
			}
		}
		ret = pf_capset(h);
		if (ret < 0) {
			pf_report(report, "set capabilities", 0, -ret);
			return ret;
		}
	}

	pf_cloexec_from(h->keep_fds);
	ret = SYS(__NR_execve, path, argv, envp);
	pf_report(report, "exec:", path, -ret);
	return ret;
}

/* The freestanding build has no libc: the compiler may still emit these. */
#ifdef PYOCI_FREESTANDING
void *memset(void *d, int c, size_t n)
{
	unsigned char *p = d;

	while (n--)
		*p++ = (unsigned char)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	unsigned char *p = d;
	const unsigned char *q = s;

	while (n--)
		*p++ = *q++;
	return d;
}
#endif
