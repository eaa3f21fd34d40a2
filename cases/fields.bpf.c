// SPDX-License-Identifier: Apache-2.0
/*
 * Field relocations against real kernel types: FIELD_BYTE_OFFSET on direct loads (tp_btf and
 * fentry give typed pointers the verifier lets us dereference) and on probe reads,
 * FIELD_BYTE_SIZE, FIELD_EXISTS; array elements, pointer chases, members of typedef'd structs and
 * members inside anonymous unions and structs (sock_common's address pair, sk_buff's list/tstamp
 * unions). All fields here have been stable for years: meant to load on every kernel with the
 * program type (tp_btf/fentry: 5.5+; kfree_skb's reason argument: 5.17+; raw_tp: 4.17+).
 * Also built big-endian (fields.bpfeb.o).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

__u64 field_values[16];

/* Direct loads through BTF-typed task pointers: each LDX carries its own FIELD_BYTE_OFFSET. */
SEC("tp_btf/sched_switch")
int BPF_PROG(switch_direct, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	field_values[0] = prev->pid;
	field_values[1] = next->tgid;
	field_values[2] = prev->comm[0];			/* array element */
	field_values[3] = prev->real_parent->tgid;		/* pointer chase */
	field_values[4] = next->usage.refs.counter;		/* refcount_t -> atomic_t -> int */
	return 0;
}

/* The same kind of reads through bpf_probe_read_kernel (BPF_CORE_READ): the relocated value is
 * an immediate added to the pointer, not a load offset. */
SEC("raw_tp/sched_switch")
int BPF_PROG(switch_probed, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	char comm[16];

	field_values[5] = BPF_CORE_READ(prev, real_parent, pid);
	field_values[6] = BPF_CORE_READ(next, mm, total_vm);
	bpf_core_read_str(comm, sizeof(comm), &next->comm);
	field_values[7] = comm[1];
	field_values[8] = (__u64)BPF_CORE_READ(next, cgroups, subsys[0]);	/* array of pointers */
	return 0;
}

/* Explicit FIELD_BYTE_OFFSET, FIELD_BYTE_SIZE and FIELD_EXISTS questions, by expression and by
 * type-and-member name. */
SEC("raw_tp/sched_switch")
int BPF_PROG(field_questions, bool preempt, struct task_struct *prev)
{
	field_values[9] = bpf_core_field_offset(struct task_struct, pid) |
			  (__u64)bpf_core_field_size(prev->comm) << 16 |
			  (__u64)bpf_core_field_size(struct task_struct, real_parent) << 24;
	field_values[10] = bpf_core_field_exists(prev->pid) |
			   bpf_core_field_exists(struct task_struct, tgid) << 1;
	return 0;
}

/* Members of anonymous unions/structs: skc_daddr lives in an anonymous struct inside an
 * anonymous union of sock_common; skc_dport likewise. */
SEC("fentry/tcp_connect")
int BPF_PROG(connect_addrs, struct sock *sk)
{
	field_values[11] = sk->__sk_common.skc_daddr;
	field_values[12] = sk->__sk_common.skc_dport;
	field_values[13] = sk->__sk_common.skc_family | bpf_core_field_size(sk->__sk_common.skc_rcv_saddr) << 16;
	return 0;
}

/* sk_buff: dev and tstamp sit in anonymous unions nested in anonymous structs. */
SEC("tp_btf/kfree_skb")
int BPF_PROG(skb_anon_members, struct sk_buff *skb, void *location)
{
	struct net_device *dev = skb->dev;

	field_values[14] = skb->len;
	field_values[15] = skb->tstamp | (dev ? (__u64)dev->ifindex << 48 : 0);
	return 0;
}
