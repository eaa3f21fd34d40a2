// SPDX-License-Identifier: Apache-2.0
/*
 * Struct flavors: a local type named "kernel_name___suffix" relocates against the kernel's
 * "kernel_name" (everything from the first "___" on is ignored), so one program can carry several
 * historical layouts of one type and pick with FIELD_EXISTS which the running kernel has.
 *   task_struct___old / ___new     state (long) before 5.14, __state (unsigned int) since
 *   task_struct___with___two       two "___": libbpf strips only the last suffix, so this looks
 *                                  for "task_struct___with", which no kernel has
 *   kernfs_node___pre55            cgroup ids: kernfs_node.id was a union kernfs_node_id before
 *                                  5.5, a u64 since; the id read is portable either way
 * flavor_old_unguarded reads the old layout without asking: rejected on >= 5.14.
 * flavor_two_suffixes is rejected on every kernel (no candidate for "task_struct___with").
 * The rest is meant to load on every kernel with BTF (raw_tp: 4.17+).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct task_struct___old {
	long state;
} __attribute__((preserve_access_index));

struct task_struct___new {
	unsigned int __state;
} __attribute__((preserve_access_index));

struct task_struct___with___two {
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

/* The pre-5.5 id: a union of the 64-bit id and an (ino, generation) pair. */
union kernfs_node_id___pre55 {
	struct {
		__u32 ino;
		__u32 generation;
	};
	__u64 id;
} __attribute__((preserve_access_index));

struct kernfs_node___pre55 {
	union kernfs_node_id___pre55 id;
} __attribute__((preserve_access_index));

__u64 flavor_values[8];

static __always_inline __u64 task_state(void *task)
{
	struct task_struct___new *t_new = task;
	struct task_struct___old *t_old = task;

	if (bpf_core_field_exists(t_new->__state))
		return BPF_CORE_READ(t_new, __state);
	return BPF_CORE_READ(t_old, state);
}

static __always_inline __u64 kernfs_node_id(struct kernfs_node *kn)
{
	struct kernfs_node___pre55 *old = (void *)kn;

	/* FIELD_EXISTS checks the type too: the flavor's union does not match the u64 of 5.5+. */
	if (bpf_core_field_exists(old->id))
		return BPF_CORE_READ(old, id.id);
	return BPF_CORE_READ(kn, id);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(flavor_state, bool preempt, struct task_struct *prev)
{
	flavor_values[0] = task_state(prev);
	return 0;
}

/* Rejected everywhere: the essential name is everything before the *last* "___". */
SEC("raw_tp/sched_switch")
int BPF_PROG(flavor_two_suffixes, bool preempt, struct task_struct *prev)
{
	struct task_struct___with___two *two = (void *)prev;

	flavor_values[1] = BPF_CORE_READ(two, pid) | (__u64)BPF_CORE_READ(two, tgid) << 32;
	return 0;
}

/* The cgroup v2 id of the current task's default-hierarchy cgroup, as cgroup filters compute it. */
SEC("raw_tp/sched_switch")
int BPF_PROG(flavor_cgroup_id, bool preempt, struct task_struct *prev)
{
	struct kernfs_node *kn = BPF_CORE_READ(prev, cgroups, dfl_cgrp, kn);

	flavor_values[2] = kernfs_node_id(kn);
	return 0;
}

/* Rejected on >= 5.14. */
SEC("raw_tp/sched_switch")
int BPF_PROG(flavor_old_unguarded, bool preempt, struct task_struct *prev)
{
	flavor_values[3] = BPF_CORE_READ((struct task_struct___old *)prev, state);
	return 0;
}
