// SPDX-License-Identifier: Apache-2.0
/*
 * In the style of libbpf-bootstrap's fentry example: fentry and fexit on do_unlinkat, reading
 * the filename through BTF-typed arguments (no probe read needed). fentry/fexit need a kernel
 * with BPF trampolines (x86_64 5.5+) and do_unlinkat's BTF; do_unlinkat takes a struct filename *
 * since 3.x, and its first argument (dfd) is an int throughout.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("fentry/do_unlinkat")
int BPF_PROG(unlink_entry, int dfd, struct filename *name)
{
	pid_t pid = bpf_get_current_pid_tgid() >> 32;

	bpf_printk("fentry: pid = %d, filename = %s\n", pid, name->name);
	return 0;
}

SEC("fexit/do_unlinkat")
int BPF_PROG(unlink_exit, int dfd, struct filename *name, long ret)
{
	pid_t pid = bpf_get_current_pid_tgid() >> 32;

	bpf_printk("fexit: pid = %d, filename = %s, ret = %ld\n", pid, name->name, ret);
	return 0;
}
