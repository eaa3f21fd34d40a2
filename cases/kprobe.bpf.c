// SPDX-License-Identifier: Apache-2.0
/*
 * In the style of libbpf-bootstrap's kprobe example: kprobe and kretprobe on do_unlinkat, the
 * filename read through CO-RE (struct filename.name). x86_64 pt_regs (bpf_tracing.h's
 * __TARGET_ARCH_x86). Loading does not need the function to exist (attaching does); meant to
 * load on every kernel with BTF.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("kprobe/do_unlinkat")
int BPF_KPROBE(unlinkat_entry, int dfd, struct filename *name)
{
	pid_t pid = bpf_get_current_pid_tgid() >> 32;
	const char *filename = BPF_CORE_READ(name, name);

	bpf_printk("kprobe: pid = %d, filename = %s\n", pid, filename);
	return 0;
}

SEC("kretprobe/do_unlinkat")
int BPF_KRETPROBE(unlinkat_exit, long ret)
{
	pid_t pid = bpf_get_current_pid_tgid() >> 32;

	bpf_printk("kretprobe: pid = %d, ret = %ld\n", pid, ret);
	return 0;
}
