// SPDX-License-Identifier: Apache-2.0
// Reads corematrix_amb.x, which ambiguous-target.c defines twice at different offsets: libbpf
// rejects the relocation ("field offset ambiguity") and the whole object fails to prepare.
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct corematrix_amb {
	int x;
} __attribute__((preserve_access_index));

int out;

SEC("raw_tp/sys_enter")
int amb(void *ctx)
{
	struct corematrix_amb *p = (void *)bpf_get_current_task();

	out = BPF_CORE_READ(p, x);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
