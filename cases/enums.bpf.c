// SPDX-License-Identifier: Apache-2.0
/*
 * Enum relocations against kernel enums whose values really differ between kernels or configs:
 *   ENUMVAL_VALUE   skb_drop_reason (renumbered as reasons were added), cgroup_subsys_id (depends
 *                   on which controllers are configured), and the enum64 perf_callchain_context
 *                   (BTF_KIND_ENUM64 in kernels built with pahole >= 1.24; a 32-bit ENUM before)
 *   ENUMVAL_EXISTS  guards for values only newer kernels have (BPF_MAP_TYPE_USER_RINGBUF 6.1,
 *                   SKB_DROP_REASON_TCP_INVALID_SEQUENCE 6.0)
 * enum_unguarded uses a value without its guard: rejected where it does not exist (< 6.1).
 * kfree_skb's reason argument exists since 5.17, so the tp_btf program needs >= 5.17.
 * Also built big-endian (enums.bpfeb.o).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} drops_by_reason SEC(".maps");

__u64 enum_values[8];

/* Count only the drop reasons we care about, compared against the running kernel's numbering. */
SEC("tp_btf/kfree_skb")
int BPF_PROG(count_drops, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	__u32 key = reason;
	__u64 one = 1, *count;

	if (reason != bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NO_SOCKET) &&
	    reason != bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_NETFILTER_DROP) &&
	    !(bpf_core_enum_value_exists(enum skb_drop_reason, SKB_DROP_REASON_TCP_INVALID_SEQUENCE) &&
	      reason == bpf_core_enum_value(enum skb_drop_reason, SKB_DROP_REASON_TCP_INVALID_SEQUENCE)))
		return 0;
	count = bpf_map_lookup_elem(&drops_by_reason, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&drops_by_reason, &key, &one, BPF_NOEXIST);
	return 0;
}

/* cgroup_subsys_id values depend on the kernel config: index css_set.subsys[] at run time. */
SEC("raw_tp/sched_switch")
int BPF_PROG(memcg_css, bool preempt, struct task_struct *prev)
{
	struct css_set *cgroups = BPF_CORE_READ(prev, cgroups);
	__u32 id = bpf_core_enum_value(enum cgroup_subsys_id, memory_cgrp_id);
	struct cgroup_subsys_state *css = 0;

	if (id < CGROUP_SUBSYS_COUNT)
		bpf_core_read(&css, sizeof(css), &cgroups->subsys[id]);
	enum_values[0] = (__u64)css;
	return 0;
}

/* An enum64 value (all upper bits set) and guarded newer enumerators. */
SEC("raw_tp/sys_enter")
int BPF_PROG(enum64_and_guards)
{
	enum_values[1] = bpf_core_enum_value(enum perf_callchain_context, PERF_CONTEXT_KERNEL);
	enum_values[2] = bpf_core_enum_value_exists(enum perf_callchain_context, PERF_CONTEXT_MAX);
	if (bpf_core_enum_value_exists(enum bpf_map_type, BPF_MAP_TYPE_USER_RINGBUF))
		enum_values[3] = bpf_core_enum_value(enum bpf_map_type, BPF_MAP_TYPE_USER_RINGBUF);
	return 0;
}

/* Rejected on < 6.1, where BPF_MAP_TYPE_USER_RINGBUF does not exist. */
SEC("raw_tp/sys_enter")
int BPF_PROG(enum_unguarded)
{
	enum_values[4] = bpf_core_enum_value(enum bpf_map_type, BPF_MAP_TYPE_USER_RINGBUF);
	return 0;
}
