// SPDX-License-Identifier: Apache-2.0
/*
 * In the style of libbpf-bootstrap's profile example: a perf_event program sampling CPUs, sending
 * pid, cpu, comm and kernel + user stacks through a ring buffer. CO-RE is used for the task's
 * in-kernel state (via the flavor pair of 5.14's state -> __state) so the sample can say whether
 * the task was running. Meant to load on every kernel >= 5.8 (ring buffer).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define TASK_COMM_LEN 16
#define MAX_STACK_DEPTH 64

struct stack_sample {
	__u32 pid;
	__u32 cpu;
	__u64 state;
	char comm[TASK_COMM_LEN];
	__s32 kstack_sz;
	__s32 ustack_sz;
	__u64 kstack[MAX_STACK_DEPTH];
	__u64 ustack[MAX_STACK_DEPTH];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} samples SEC(".maps");

struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

SEC("perf_event")
int profile_sample(struct bpf_perf_event_data *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct stack_sample *s;

	s = bpf_ringbuf_reserve(&samples, sizeof(*s), 0);
	if (!s)
		return 1;
	s->pid = bpf_get_current_pid_tgid() >> 32;
	s->cpu = bpf_get_smp_processor_id();
	if (bpf_core_field_exists(task->__state))
		s->state = BPF_CORE_READ(task, __state);
	else
		s->state = BPF_CORE_READ((struct task_struct___pre514 *)task, state);
	if (bpf_get_current_comm(s->comm, sizeof(s->comm)))
		s->comm[0] = 0;
	s->kstack_sz = bpf_get_stack(ctx, s->kstack, sizeof(s->kstack), 0);
	s->ustack_sz = bpf_get_stack(ctx, s->ustack, sizeof(s->ustack), BPF_F_USER_STACK);
	bpf_ringbuf_submit(s, 0);
	return 0;
}
