// SPDX-License-Identifier: Apache-2.0
/*
 * Bitfields read with libbpf's two macros, which emit five relocations per field:
 * FIELD_BYTE_OFFSET, FIELD_BYTE_SIZE, FIELD_LSHIFT_U64, FIELD_SIGNED and FIELD_RSHIFT_U64.
 *   BPF_CORE_READ_BITFIELD         direct load (tp_btf, BTF-typed pointers)
 *   BPF_CORE_READ_BITFIELD_PROBED  bpf_probe_read_kernel of the storage unit (any pointer)
 * Unsigned kernel bitfields: task_struct's in_iowait/sched_reset_on_fork, sk_buff's pkt_type:3.
 * A signed one: bpf_reg_state.iter.depth (int :30, in a struct inside an anonymous union; 6.4+,
 * read only where FIELD_EXISTS says it is there). Meant to load everywhere tp_btf exists (5.5+).
 * Also built big-endian (bitfields.bpfeb.o), where the same bitfields sit at other bit offsets.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

__u64 bits[8];

/* Userspace may point this at a struct bpf_reg_state to read; probing a bad address just fails. */
__u64 reg_state_addr;

SEC("tp_btf/sched_switch")
int BPF_PROG(task_bits_direct, bool preempt, struct task_struct *prev)
{
	bits[0] = BPF_CORE_READ_BITFIELD(prev, in_iowait);
	bits[1] = BPF_CORE_READ_BITFIELD(prev, sched_reset_on_fork);
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(task_bits_probed, bool preempt, struct task_struct *prev)
{
	bits[2] = BPF_CORE_READ_BITFIELD_PROBED(prev, in_iowait);
	return 0;
}

/* pkt_type:3 shares its byte with other flags; tcpdrop-style tools read it. */
SEC("tp_btf/kfree_skb")
int BPF_PROG(skb_pkt_type, struct sk_buff *skb)
{
	bits[3] = BPF_CORE_READ_BITFIELD(skb, pkt_type);
	bits[4] = BPF_CORE_READ_BITFIELD_PROBED(skb, pkt_type);
	return 0;
}

/* A signed bitfield: FIELD_SIGNED is 1 and the macro sign-extends with an arithmetic shift. */
SEC("raw_tp/sys_enter")
int BPF_PROG(reg_iter_depth)
{
	struct bpf_reg_state *reg = (void *)reg_state_addr;

	if (bpf_core_field_exists(reg->iter.depth))
		bits[5] = BPF_CORE_READ_BITFIELD_PROBED(reg, iter.depth);
	return 0;
}
