// SPDX-License-Identifier: Apache-2.0
/*
 * One source, different relocations per compiler: what the compiler axis of a matrix
 * (`compilers:` in matrix.yaml) is for. clang 15 added BTF_KIND_ENUM64 and the TYPE_MATCHES
 * relocation; clang 14 (Debian bookworm's default) has neither: it stops with "Incorrect flag for
 * llvm.bpf.preserve.type.info intrinsic" on bpf_core_type_matches, and encodes a 64-bit enum as a
 * 32-bit ENUM with truncated values. So the newer features are used only when the compiler has them,
 * as portable programs do:
 *   clang >= 15  TYPE_MATCHES on task_struct's run state, ENUMVAL_VALUE on the enum64
 *                perf_callchain_context (PERF_CONTEXT_KERNEL is 0xffffffffffffff80)
 *   clang < 15   TYPE_EXISTS on the same flavor, no enum64 value
 * Loads wherever tracepoint programs with global data do (5.2+); the answers differ per kernel.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

/*
 * task_struct as a program reading the run state expects it since 5.14: `__state`, an unsigned int
 * (a `long state` before). TYPE_MATCHES tells the layouts apart; TYPE_EXISTS only that the type is there.
 */
struct task_struct___cm_state {
	unsigned int __state;
	int prio;
} __attribute__((preserve_access_index));

/* Read by userspace: [0] whether task_struct has the 5.14 run state, [1] the kernel's PERF_CONTEXT_KERNEL. */
__u64 answers[2] = {};

SEC("tp/syscalls/sys_enter_getpid")
int compiler_features(void *ctx)
{
#if __clang_major__ >= 15
	answers[0] = bpf_core_type_matches(struct task_struct___cm_state);
	answers[1] = bpf_core_enum_value(enum perf_callchain_context, PERF_CONTEXT_KERNEL);
#else
	answers[0] = bpf_core_type_exists(struct task_struct___cm_state);
#endif
	return 0;
}
