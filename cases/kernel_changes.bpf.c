// SPDX-License-Identifier: Apache-2.0
/*
 * Real kernel type changes that broke real BPF tools, each written three ways:
 *   *_portable      guarded with CO-RE checks: meant to load on every kernel with BTF
 *   *_old_only      the pre-change access, unguarded: rejected on kernels after the change
 *   *_new_only      the post-change access, unguarded: rejected on kernels before the change
 * "Rejected" means: libbpf poisons the relocated instruction (the field is missing) and the
 * verifier refuses the program because the poisoned instruction is reachable.
 *
 * Old layouts are spelled as flavors (struct X___preNNN): the suffix is ignored when matching
 * against the kernel, so they describe the same kernel type as it used to be.
 *
 * kprobe/raw_tp programs keep these loadable on old kernels (fentry and tp_btf need 5.5).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

/* Every program stores what it read here, so nothing is optimized away. */
__u64 seen[16];

/* ---- task_struct.state -> __state (5.14; also long -> unsigned int) ---- */

struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

SEC("raw_tp/sched_switch")
int BPF_PROG(task_state_portable, bool preempt, struct task_struct *prev)
{
	if (bpf_core_field_exists(prev->__state))
		seen[0] = BPF_CORE_READ(prev, __state);
	else
		seen[0] = BPF_CORE_READ((struct task_struct___pre514 *)prev, state);
	return 0;
}

/* Rejected on >= 5.14. */
SEC("raw_tp/sched_switch")
int BPF_PROG(task_state_old_only, bool preempt, struct task_struct *prev)
{
	seen[0] = BPF_CORE_READ((struct task_struct___pre514 *)prev, state);
	return 0;
}

/* Rejected on < 5.14. */
SEC("raw_tp/sched_switch")
int BPF_PROG(task_state_new_only, bool preempt, struct task_struct *prev)
{
	seen[0] = BPF_CORE_READ(prev, __state);
	return 0;
}

/* ---- request.rq_disk removed (5.17, commit f3fa33acca9f); request_queue.disk added (5.16) ---- */

struct request___pre517 {
	struct gendisk *rq_disk;
} __attribute__((preserve_access_index));

static __always_inline struct gendisk *request_disk(struct request *rq)
{
	struct request___pre517 *old = (void *)rq;

	if (bpf_core_field_exists(old->rq_disk))
		return BPF_CORE_READ(old, rq_disk);
	return BPF_CORE_READ(rq, q, disk);
}

SEC("kprobe/blk_mq_start_request")
int BPF_KPROBE(rq_disk_portable, struct request *rq)
{
	struct gendisk *disk = request_disk(rq);

	seen[1] = BPF_CORE_READ(disk, major) << 20 | BPF_CORE_READ(disk, first_minor);
	return 0;
}

/* Rejected on >= 5.17. */
SEC("kprobe/blk_mq_start_request")
int BPF_KPROBE(rq_disk_old_only, struct request *rq)
{
	struct gendisk *disk = BPF_CORE_READ((struct request___pre517 *)rq, rq_disk);

	seen[1] = BPF_CORE_READ(disk, major);
	return 0;
}

/* Rejected on < 5.16 (request_queue had no disk back-pointer). */
SEC("kprobe/blk_mq_start_request")
int BPF_KPROBE(rq_disk_new_only, struct request *rq)
{
	seen[1] = BPF_CORE_READ(rq, q, disk, major);
	return 0;
}

/* ---- bio.bi_disk -> bio.bi_bdev (5.12) ---- */

struct bio___pre512 {
	struct gendisk *bi_disk;
} __attribute__((preserve_access_index));

SEC("kprobe/submit_bio")
int BPF_KPROBE(bio_disk_portable, struct bio *bio)
{
	struct gendisk *disk;

	if (bpf_core_field_exists(bio->bi_bdev))
		disk = BPF_CORE_READ(bio, bi_bdev, bd_disk);
	else
		disk = BPF_CORE_READ((struct bio___pre512 *)bio, bi_disk);
	seen[2] = BPF_CORE_READ(disk, major);
	return 0;
}

/* Rejected on >= 5.12. */
SEC("kprobe/submit_bio")
int BPF_KPROBE(bio_disk_old_only, struct bio *bio)
{
	seen[2] = BPF_CORE_READ((struct bio___pre512 *)bio, bi_disk, major);
	return 0;
}

/* Rejected on < 5.12. */
SEC("kprobe/submit_bio")
int BPF_KPROBE(bio_disk_new_only, struct bio *bio)
{
	seen[2] = BPF_CORE_READ(bio, bi_bdev, bd_disk, major);
	return 0;
}

/* ---- sock.sk_protocol: an 8-bit bitfield before 5.6, a plain u16 since ----
 * A silent break rather than a rejection: the unguarded read relocates on both layouts (a
 * bitfield's byte offset is that of its storage unit), so it loads everywhere but reads the
 * wrong bits before 5.6. The bitfield macro reads both layouts correctly. */

SEC("kprobe/tcp_v4_connect")
int BPF_KPROBE(sk_protocol_portable, struct sock *sk)
{
	seen[3] = BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol);
	return 0;
}

/* Loads everywhere; wrong value on < 5.6. */
SEC("kprobe/tcp_v4_connect")
int BPF_KPROBE(sk_protocol_plain_read, struct sock *sk)
{
	seen[3] = BPF_CORE_READ(sk, sk_protocol);
	return 0;
}

/* ---- mm_struct.mmap and vm_area_struct.vm_next removed by the maple tree (6.1) ----
 * Tools walked the VMA list from mm->mmap; from 6.1 on there is no list to walk, and the portable
 * fallback reads the code range from fields that never moved. */

struct vm_area_struct___pre61 {
	unsigned long vm_start;
	unsigned long vm_end;
	struct vm_area_struct___pre61 *vm_next;
} __attribute__((preserve_access_index));

struct mm_struct___pre61 {
	struct vm_area_struct___pre61 *mmap;
} __attribute__((preserve_access_index));

SEC("perf_event")
int vma_walk_portable(struct bpf_perf_event_data *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	struct mm_struct___pre61 *old = (void *)mm;

	if (bpf_core_field_exists(old->mmap)) {
		struct vm_area_struct___pre61 *vma = BPF_CORE_READ(old, mmap);

		seen[4] = BPF_CORE_READ(vma, vm_start);
		seen[5] = BPF_CORE_READ(vma, vm_next, vm_start);
	} else {
		seen[4] = BPF_CORE_READ(mm, start_code);
		seen[5] = BPF_CORE_READ(mm, end_code);
	}
	return 0;
}

/* Rejected on >= 6.1. */
SEC("perf_event")
int vma_walk_old_only(struct bpf_perf_event_data *ctx)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct mm_struct___pre61 *mm = (void *)BPF_CORE_READ(task, mm);

	seen[4] = BPF_CORE_READ(mm, mmap, vm_start);
	seen[5] = BPF_CORE_READ(mm, mmap, vm_next, vm_start);
	return 0;
}

/* ---- mm_struct.rss_stat: struct mm_rss_stat (atomic counters) until 6.1, then an array of
 * percpu_counter (6.2) ---- */

struct mm_rss_stat___pre62 {
	atomic_long_t count[4];
} __attribute__((preserve_access_index));

struct mm_struct___pre62 {
	struct mm_rss_stat___pre62 rss_stat;
} __attribute__((preserve_access_index));

SEC("kprobe/handle_mm_fault")
int BPF_KPROBE(rss_portable, struct vm_area_struct *vma)
{
	struct mm_struct *mm = BPF_CORE_READ(vma, vm_mm);

	/* FIELD_EXISTS also checks the member's type: on 6.2+ rss_stat is an array, which is not
	 * compatible with the struct of the flavor, so this is 0 there. */
	if (bpf_core_field_exists(((struct mm_struct___pre62 *)mm)->rss_stat))
		seen[6] = BPF_CORE_READ((struct mm_struct___pre62 *)mm, rss_stat.count[1].counter);
	else
		seen[6] = BPF_CORE_READ(mm, rss_stat[1].count);
	/* The same question asked with TYPE_MATCHES on the whole old layout. */
	seen[7] = bpf_core_type_matches(struct mm_rss_stat___pre62);
	return 0;
}

/* Rejected on >= 6.2. */
SEC("kprobe/handle_mm_fault")
int BPF_KPROBE(rss_old_only, struct vm_area_struct *vma)
{
	struct mm_struct___pre62 *mm = (void *)BPF_CORE_READ(vma, vm_mm);

	seen[6] = BPF_CORE_READ(mm, rss_stat.count[1].counter);
	return 0;
}

/* Rejected on < 6.2. */
SEC("kprobe/handle_mm_fault")
int BPF_KPROBE(rss_new_only, struct vm_area_struct *vma)
{
	seen[6] = BPF_CORE_READ(vma, vm_mm, rss_stat[1].count);
	return 0;
}

/* ---- inode ctime: i_ctime (timespec64) until 6.5, __i_ctime in 6.6-6.10, i_ctime_sec and
 * i_ctime_nsec from 6.11 ---- */

struct inode___pre66 {
	struct timespec64 i_ctime;
} __attribute__((preserve_access_index));

struct inode___v66 {
	struct timespec64 __i_ctime;
} __attribute__((preserve_access_index));

SEC("kprobe/security_inode_permission")
int BPF_KPROBE(inode_ctime_portable, struct inode *inode)
{
	if (bpf_core_field_exists(inode->i_ctime_sec))
		seen[8] = BPF_CORE_READ(inode, i_ctime_sec);
	else if (bpf_core_field_exists(((struct inode___v66 *)inode)->__i_ctime))
		seen[8] = BPF_CORE_READ((struct inode___v66 *)inode, __i_ctime.tv_sec);
	else
		seen[8] = BPF_CORE_READ((struct inode___pre66 *)inode, i_ctime.tv_sec);
	return 0;
}

/* Rejected on >= 6.6. */
SEC("kprobe/security_inode_permission")
int BPF_KPROBE(inode_ctime_old_only, struct inode *inode)
{
	seen[8] = BPF_CORE_READ((struct inode___pre66 *)inode, i_ctime.tv_sec);
	return 0;
}

/* Rejected on < 6.11. */
SEC("kprobe/security_inode_permission")
int BPF_KPROBE(inode_ctime_new_only, struct inode *inode)
{
	seen[8] = BPF_CORE_READ(inode, i_ctime_sec);
	return 0;
}

/* ---- task_struct.cpu moved into thread_info (x86, 5.16) ---- */

struct task_struct___pre516 {
	unsigned int cpu;
} __attribute__((preserve_access_index));

SEC("raw_tp/sched_wakeup")
int BPF_PROG(task_cpu_portable, struct task_struct *p)
{
	if (bpf_core_field_exists(p->thread_info.cpu))
		seen[9] = BPF_CORE_READ(p, thread_info.cpu);
	else
		seen[9] = BPF_CORE_READ((struct task_struct___pre516 *)p, cpu);
	return 0;
}

/* Rejected on >= 5.16 (x86). */
SEC("raw_tp/sched_wakeup")
int BPF_PROG(task_cpu_old_only, struct task_struct *p)
{
	seen[9] = BPF_CORE_READ((struct task_struct___pre516 *)p, cpu);
	return 0;
}

/* ---- kernfs_node.parent renamed __parent (6.15) ---- */

struct kernfs_node___pre615 {
	struct kernfs_node___pre615 *parent;
} __attribute__((preserve_access_index));

SEC("kprobe/kernfs_remove")
int BPF_KPROBE(kernfs_parent_portable, struct kernfs_node *kn)
{
	struct kernfs_node *parent;

	if (bpf_core_field_exists(kn->__parent))
		parent = BPF_CORE_READ(kn, __parent);
	else
		parent = (void *)BPF_CORE_READ((struct kernfs_node___pre615 *)kn, parent);
	seen[10] = (__u64)BPF_CORE_READ(parent, name);
	return 0;
}

/* Rejected on >= 6.15. */
SEC("kprobe/kernfs_remove")
int BPF_KPROBE(kernfs_parent_old_only, struct kernfs_node *kn)
{
	seen[10] = (__u64)BPF_CORE_READ((struct kernfs_node___pre615 *)kn, parent, parent);
	return 0;
}
