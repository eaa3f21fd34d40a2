// SPDX-License-Identifier: Apache-2.0
/*
 * In the style of libbpf-bootstrap's "minimal" example: a syscall tracepoint that logs when the
 * process whose pid userspace wrote into .bss calls write(2). No CO-RE relocations at all (the
 * baseline every kernel with tracepoint programs should load: 4.7+, global data 5.2+).
 * Also built big-endian (minimal.bpfeb.o).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by userspace before attaching. */
int watched_pid = 0;

SEC("tp/syscalls/sys_enter_write")
int log_write(void *ctx)
{
	int pid = bpf_get_current_pid_tgid() >> 32;

	if (pid != watched_pid)
		return 0;
	bpf_printk("write(2) from pid %d\n", pid);
	return 0;
}
