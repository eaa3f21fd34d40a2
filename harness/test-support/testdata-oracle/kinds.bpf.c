// SPDX-License-Identifier: Apache-2.0
// CO-RE fixture for libbpf-oracle.test.ts: a few relocation kinds against the kernel's BTF, with
// local type definitions only (no vmlinux.h), so the expected answers can be read from
// `bpftool btf dump file /sys/kernel/btf/vmlinux`.
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

struct task_struct {
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

/* A flavor of task_struct with a field no kernel has. */
struct task_struct___corematrix {
	int pid;
	long corematrix_no_such_field;
} __attribute__((preserve_access_index));

/* A struct no kernel has. */
struct corematrix_no_such_struct {
	int x;
};

/* pid_type's enumerators, deliberately with local values that differ from the kernel's. */
enum pid_type___corematrix {
	PIDTYPE_SID___local = 100,
};
enum pid_type {
	PIDTYPE_SID = 100,
};

int out[8];

static __noinline int subprog_tgid(struct task_struct *t)
{
	return BPF_CORE_READ(t, tgid);
}

SEC("raw_tp/sys_enter")
int kinds(void *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	struct task_struct___corematrix *f = (void *)t;

	out[0] = BPF_CORE_READ(t, pid);
	out[1] = bpf_core_field_exists(f->corematrix_no_such_field);
	out[2] = bpf_core_field_exists(f->pid);
	out[3] = bpf_core_type_exists(struct task_struct);
	out[4] = bpf_core_type_exists(struct corematrix_no_such_struct);
	out[5] = bpf_core_enum_value(enum pid_type, PIDTYPE_SID);
	out[6] = bpf_core_type_size(struct task_struct);
	out[7] = subprog_tgid(t);
	if (bpf_core_field_exists(f->corematrix_no_such_field))
		out[0] = BPF_CORE_READ(f, corematrix_no_such_field);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
