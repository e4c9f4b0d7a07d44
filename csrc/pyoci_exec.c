/*
 * pyoci-exec: the trampoline a container's init execs into, from a sealed
 * memfd, right before the container's program.
 *
 *     pyoci-exec CTL_FD PROGRAM_ARGV...      (environment: the program's)
 *
 * CTL_FD holds the control block of pyoci_final.c.  Because init execs this
 * tiny static binary from a sealed memfd, the host's Python interpreter is
 * never what /proc/self/exe (or /proc/1/exe) names once the container can
 * run code: a "#!/proc/self/exe" program (CVE-2019-5736) re-executes this
 * trampoline, which refuses to do anything without a valid control block,
 * and the memfd cannot be written.  No libc: built freestanding by
 * csrc/ffi_build.py and embedded in pyoci._native.
 */
#define PYOCI_FREESTANDING 1
#include "pyoci_final.c"

static unsigned char ctl_buf[1 << 20];

static void pe_exit(int code)
{
	for (;;)
		SYS(__NR_exit_group, code, 0, 0);
}

static void pe_say(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	SYS(__NR_write, 2, s, n);
}

static int pe_main(int argc, char **argv, char **envp)
{
	long fd = 0;
	unsigned long len = 0;
	const char *s;

	if (argc < 3 || !argv[1][0])
		goto usage;
	for (s = argv[1]; *s; s++) {
		if (*s < '0' || *s > '9' || fd > 65535)
			goto usage;
		fd = fd * 10 + (*s - '0');
	}
	for (;;) {
		long n = SYS(__NR_read, fd, ctl_buf + len, sizeof(ctl_buf) - len);

		if (n == -PF_EINTR)
			continue;
		if (n < 0)
			goto usage;
		if (n == 0 || len + (unsigned long)n >= sizeof(ctl_buf)) {
			len += (unsigned long)(n > 0 ? n : 0);
			break;
		}
		len += (unsigned long)n;
	}
	SYS(__NR_close, fd, 0, 0);
	if (pyoci_final_run(ctl_buf, len, argv + 2, envp) == -22 && len < sizeof(struct pyoci_final_hdr))
		pe_say("pyoci-exec: no valid control block\n");
	return 127;
usage:
	pe_say("pyoci-exec: pyoci's last step before a container's program; "
	       "not to be run by hand\n");
	return 127;
}

void pe_start_c(long *sp)
{
	int argc = (int)sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;

	pe_exit(pe_main(argc, argv, envp));
}

#if defined(__x86_64__)
__asm__(".text\n"
	".global _start\n"
	"_start:\n"
	"	xor %ebp, %ebp\n"
	"	mov %rsp, %rdi\n"
	"	and $-16, %rsp\n"
	"	call pe_start_c\n"
	"	hlt\n");
#elif defined(__aarch64__)
__asm__(".text\n"
	".global _start\n"
	"_start:\n"
	"	mov x29, #0\n"
	"	mov x30, #0\n"
	"	mov x0, sp\n"
	"	bl pe_start_c\n");
#endif
