// SPDX-License-Identifier: Apache-2.0
/*
 * In the style of libbpf-bootstrap's uprobe example: uprobes with no target in the section name
 * (userspace attaches them to a function of its own binary) and uprobes libbpf can auto-attach
 * (SEC("uprobe/BINARY:FUNCTION"), libbpf 0.8+). The only CO-RE relocations are BPF_KPROBE's
 * reads of pt_regs registers (vmlinux.h's struct pt_regs). Meant to load on every kernel with
 * uprobes.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("uprobe")
int BPF_KPROBE(uprobe_add, int a, int b)
{
	bpf_printk("uprobed_add ENTRY: a = %d, b = %d\n", a, b);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(uretprobe_add, int ret)
{
	bpf_printk("uprobed_add EXIT: return = %d\n", ret);
	return 0;
}

SEC("uprobe//proc/self/exe:uprobed_sub")
int BPF_KPROBE(uprobe_sub, int a, int b)
{
	bpf_printk("uprobed_sub ENTRY: a = %d, b = %d\n", a, b);
	return 0;
}

/* Every malloc in libc, as allocation tracers do. */
SEC("uprobe/libc.so.6:malloc")
int BPF_KPROBE(malloc_entry, size_t size)
{
	if (size >= 1 << 20)
		bpf_printk("malloc of %lu bytes\n", size);
	return 0;
}
