/*
 * The control block of pyoci's final step (see pyoci_final.c), built by
 * pyoci/seccomp.py.  Layout after the header: the executable's path (NUL
 * terminated, padded to 8 bytes), bpf_len struct sock_filter entries, the
 * listener payload (payload_len bytes), the LSM label (lsm_len bytes).
 */
#ifndef PYOCI_FINAL_H
#define PYOCI_FINAL_H

#include <stdint.h>

#define PYOCI_FINAL_MAGIC 0x58454f50u /* "POEX" */
#define PYOCI_FINAL_VERSION 2

#define PYOCI_FINAL_SECCOMP 1u /* load the filter */
#define PYOCI_FINAL_NOTIFY 2u  /* it has SCMP_ACT_NOTIFY: send the listener fd */
#define PYOCI_FINAL_CAPS 4u    /* drop drop_bounding[], set caps[] after the filter */

struct pyoci_final_hdr {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t seccomp_flags;
	uint32_t bpf_len;
	uint32_t payload_len;
	uint32_t lsm_len;
	uint32_t path_len;
	int32_t listener_fd;
	int32_t report_fd;
	int32_t lsm_fd;
	uint32_t keep_fds;
	uint32_t caps[6]; /* effective, permitted, inheritable: low and high words */
	uint32_t drop_bounding[2]; /* kept only to load the filter (CAP_SETPCAP last) */
};

long pyoci_final_run(const unsigned char *ctl, unsigned long len, char *const argv[],
		     char *const envp[]);

#endif
