// SPDX-License-Identifier: Apache-2.0
/*
 * In the style of libbpf-bootstrap's sockfilter example: a socket filter (SEC("socket")) on a
 * raw socket that reports IPv4 packets' protocol and addresses through a ring buffer and keeps
 * every packet. Packet bytes are read with bpf_skb_load_bytes at wire offsets; offsetof() on
 * vmlinux.h's iphdr (preserve_access_index) still turns those into FIELD_BYTE_OFFSET relocations,
 * as do the __sk_buff context reads. Meant to load on every kernel >= 5.8 (ring buffer).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define IP_MF 0x2000
#define IP_OFFSET 0x1FFF

struct packet_summary {
	__be32 src_addr;
	__be32 dst_addr;
	__u8 ip_proto;
	__u8 pkt_type;
	__u32 ifindex;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} packets SEC(".maps");

static __always_inline bool is_fragment(struct __sk_buff *skb, __u32 nhoff)
{
	__u16 frag_off;

	bpf_skb_load_bytes(skb, nhoff + offsetof(struct iphdr, frag_off), &frag_off, 2);
	return bpf_ntohs(frag_off) & (IP_MF | IP_OFFSET);
}

SEC("socket")
int socket_handler(struct __sk_buff *skb)
{
	struct packet_summary *p;
	__u16 proto;
	__u8 verlen;
	__u32 nhoff = ETH_HLEN;

	bpf_skb_load_bytes(skb, 12, &proto, 2);
	if (bpf_ntohs(proto) != ETH_P_IP || is_fragment(skb, nhoff))
		return 0;

	p = bpf_ringbuf_reserve(&packets, sizeof(*p), 0);
	if (!p)
		return 0;
	bpf_skb_load_bytes(skb, nhoff + offsetof(struct iphdr, protocol), &p->ip_proto, 1);
	bpf_skb_load_bytes(skb, nhoff, &verlen, 1);
	bpf_skb_load_bytes(skb, nhoff + offsetof(struct iphdr, saddr), &p->src_addr, 4);
	bpf_skb_load_bytes(skb, nhoff + offsetof(struct iphdr, daddr), &p->dst_addr, 4);
	p->pkt_type = skb->pkt_type;
	p->ifindex = skb->ifindex;
	bpf_ringbuf_submit(p, 0);
	return skb->len;
}
