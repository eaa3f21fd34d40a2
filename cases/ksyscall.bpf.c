// SPDX-License-Identifier: Apache-2.0
/*
 * In the style of libbpf-bootstrap's ksyscall example: SEC("ksyscall/NAME") lets libbpf (1.0+)
 * pick the architecture's syscall wrapper symbol at attach time, and BPF_KSYSCALL reads the
 * syscall's own arguments (through the wrapper's pt_regs, which needs CO-RE reads of pt_regs on
 * kernels with syscall wrappers, 4.17+ on x86). Meant to load on every kernel with BTF.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SIGKILL 9

SEC("ksyscall/tgkill")
int BPF_KSYSCALL(tgkill_entry, pid_t tgid, pid_t tid, int sig)
{
	char comm[16];
	__u32 caller = bpf_get_current_pid_tgid() >> 32;

	if (sig == 0)	/* signal 0 only checks that the process exists */
		return 0;
	bpf_get_current_comm(&comm, sizeof(comm));
	bpf_printk("tgkill from %d (%s) to %d/%d, signal %d\n", caller, comm, tgid, tid, sig);
	return 0;
}

SEC("ksyscall/kill")
int BPF_KSYSCALL(kill_entry, pid_t pid, int sig)
{
	if (sig != SIGKILL)
		return 0;
	bpf_printk("SIGKILL to %d from %d\n", pid, (__u32)(bpf_get_current_pid_tgid() >> 32));
	return 0;
}

SEC("kretsyscall/kill")
int BPF_KRETPROBE(kill_exit, long ret)
{
	bpf_printk("kill returned %ld\n", ret);
	return 0;
}
