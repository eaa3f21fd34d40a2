// SPDX-License-Identifier: Apache-2.0
/*
 * One source, different relocations per compiler: what the compiler axis of a matrix
 * (`compilers:` in matrix.yaml) is for. clang 15 added BTF_KIND_ENUM64 and the TYPE_MATCHES
 * relocation; clang 14 (Debian bookworm's default) has neither: it stops with "Incorrect flag for
 * llvm.bpf.preserve.type.info intrinsic" on bpf_core_type_matches, and encodes a 64-bit enum as a
 * 32-bit ENUM with truncated values. So the newer features are used only when the compiler has them,
 * as portable programs do:
 *   clang >= 15  TYPE_MATCHES on sched_switch's record, ENUMVAL_VALUE on the enum64
 *                perf_callchain_context (PERF_CONTEXT_KERNEL is 0xffffffffffffff80)
 *   clang < 15   TYPE_EXISTS on the same record, no enum64 value
 * Loads wherever tracepoint programs with global data do (5.2+); the answers differ per kernel.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

/* sched_switch's record as this program expects it (prev_state a long since 4.14-ish). */
struct trace_event_raw_sched_switch___cm_layout {
	struct trace_entry ent;
	char prev_comm[16];
	pid_t prev_pid;
	int prev_prio;
	long prev_state;
	char next_comm[16];
	pid_t next_pid;
	int next_prio;
} __attribute__((preserve_access_index));

/* Read by userspace: [0] whether the record's layout is known, [1] the kernel's PERF_CONTEXT_KERNEL. */
__u64 answers[2] = {};

SEC("tp/syscalls/sys_enter_getpid")
int compiler_features(void *ctx)
{
#if __clang_major__ >= 15
	answers[0] = bpf_core_type_matches(struct trace_event_raw_sched_switch___cm_layout);
	answers[1] = bpf_core_enum_value(enum perf_callchain_context, PERF_CONTEXT_KERNEL);
#else
	answers[0] = bpf_core_type_exists(struct trace_event_raw_sched_switch___cm_layout);
#endif
	return 0;
}
