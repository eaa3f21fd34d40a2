// SPDX-License-Identifier: Apache-2.0
/*
 * Type relocations against kernel types, as tools use them:
 *   TYPE_EXISTS     feature detection by type (bpf_timer 5.15, bpf_dynptr 6.1, bpf_wq 6.10,
 *                   bpf_iter__task 5.8)
 *   TYPE_SIZE       struct sizes that vary with kernel and config (task_struct, sk_buff)
 *   TYPE_MATCHES    whether a whole layout (here sched_switch's tracepoint record, whose prev_state
 *                   was an int before 4.14-ish and a long since) is the running kernel's
 *   TYPE_ID_TARGET  the kernel's BTF id of task_struct, handed to bpf_snprintf_btf (5.10+)
 *   TYPE_ID_LOCAL   the program's own BTF id of its event struct, tagged onto ring buffer records
 * Meant to load on >= 5.10 (bpf_snprintf_btf); the answers differ per kernel, nothing is rejected.
 * Also built big-endian (types.bpfeb.o).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct type_report {
	__u32 local_type_id;
	__u32 features;
	__u32 task_struct_size;
	__u32 sk_buff_size;
	__u32 switch_record_matches;
};

/* sched_switch's record as this program expects it; the flavor suffix keeps the kernel's name. */
struct trace_event_raw_sched_switch___expected {
	struct trace_entry ent;
	char prev_comm[16];
	pid_t prev_pid;
	int prev_prio;
	long prev_state;
	char next_comm[16];
	pid_t next_pid;
	int next_prio;
} __attribute__((preserve_access_index));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} reports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, char[256]);
} scratch SEC(".maps");

SEC("raw_tp/sys_enter")
int BPF_PROG(report_types)
{
	struct type_report *r = bpf_ringbuf_reserve(&reports, sizeof(*r), 0);

	if (!r)
		return 0;
	r->local_type_id = bpf_core_type_id_local(struct type_report);
	r->features = bpf_core_type_exists(struct bpf_timer) |
		      bpf_core_type_exists(struct bpf_dynptr) << 1 |
		      bpf_core_type_exists(struct bpf_wq) << 2 |
		      bpf_core_type_exists(struct bpf_iter__task) << 3;
	r->task_struct_size = bpf_core_type_size(struct task_struct);
	r->sk_buff_size = bpf_core_type_size(struct sk_buff);
	r->switch_record_matches = bpf_core_type_matches(struct trace_event_raw_sched_switch___expected);
	bpf_ringbuf_submit(r, 0);
	return 0;
}

/* Print the exec'ing task with the kernel's own type information. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(dump_task, struct task_struct *task)
{
	struct btf_ptr ptr = {
		.ptr = task,
		.type_id = bpf_core_type_id_kernel(struct task_struct),
	};
	__u32 zero = 0;
	char *buf = bpf_map_lookup_elem(&scratch, &zero);

	if (buf && ptr.type_id)
		bpf_snprintf_btf(buf, 256, &ptr, sizeof(ptr), BTF_F_COMPACT);
	return 0;
}
