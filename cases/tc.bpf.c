// SPDX-License-Identifier: Apache-2.0
/*
 * In the style of libbpf-bootstrap's tc example: a classifier on ingress that looks at IPv4
 * packets, with direct packet access and bounds checks. The context is the stable UAPI
 * __sk_buff (the verifier rewrites its accesses), not the kernel's sk_buff, and packet headers are
 * wire formats; but vmlinux.h marks every struct preserve_access_index, so these accesses still
 * carry FIELD_BYTE_OFFSET relocations against the kernel's own copies of __sk_buff, ethhdr and
 * iphdr (which never change): every vmlinux.h-based tc program has them. SEC("tc") needs libbpf
 * 1.0+; meant to load on every kernel with BTF.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define ETH_P_IP 0x0800

SEC("tc")
int tc_ingress(struct __sk_buff *ctx)
{
	void *data_end = (void *)(__u64)ctx->data_end;
	void *data = (void *)(__u64)ctx->data;
	struct ethhdr *l2 = data;
	struct iphdr *l3;

	if (ctx->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if ((void *)(l2 + 1) > data_end)
		return TC_ACT_OK;
	l3 = (struct iphdr *)(l2 + 1);
	if ((void *)(l3 + 1) > data_end)
		return TC_ACT_OK;
	bpf_printk("Got IP packet: tot_len: %d, ttl: %d", bpf_ntohs(l3->tot_len), l3->ttl);
	return TC_ACT_OK;
}

SEC("tc")
int tc_drop_ttl1(struct __sk_buff *ctx)
{
	void *data_end = (void *)(__u64)ctx->data_end;
	void *data = (void *)(__u64)ctx->data;
	struct iphdr *l3 = data + sizeof(struct ethhdr);

	if (ctx->protocol != bpf_htons(ETH_P_IP) || (void *)(l3 + 1) > data_end)
		return TC_ACT_OK;
	return l3->ttl <= 1 ? TC_ACT_SHOT : TC_ACT_OK;
}
