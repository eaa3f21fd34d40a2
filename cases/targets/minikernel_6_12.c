// SPDX-License-Identifier: Apache-2.0
/*
 * A hand-made miniature of a 6.12 x86_64 kernel's BTF, the post-change counterpart of
 * minikernel_5_4.c: task_struct.__state (unsigned int), request_queue.disk and no
 * request.rq_disk, bio.bi_bdev -> block_device.bd_disk, sk_protocol a plain u16, no
 * mm_struct.mmap, rss_stat an array of percpu_counter, inode.i_ctime_sec, thread_info.cpu, and
 * a u64 kernfs_node.id. kernfs_node still has "parent" (renamed __parent only in 6.15), so
 * kernel_changes' kernfs_parent_old_only loads here. Relocating kernel_changes.bpf.o and
 * flavors.bpf.o against this must pick the post-change branches and fail the *_old_only ones.
 */
typedef long long s64;
typedef unsigned int u32;
typedef unsigned long long u64;

/* x86_64 pt_regs: the kprobe programs read their arguments from it (BPF_KPROBE). */
struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	unsigned long ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};

struct gendisk {
	int major;
	int first_minor;
	char disk_name[32];
};

struct block_device {
	unsigned long bd_start_sect;
	struct gendisk *bd_disk;
};

struct request_queue {
	void *queuedata;
	struct gendisk *disk;
};

struct request {
	struct request_queue *q;
	unsigned int cmd_flags;
	struct block_device *part;
};

struct bio {
	struct bio *bi_next;
	struct block_device *bi_bdev;
	unsigned int bi_opf;
};

struct sock_common {
	unsigned int skc_daddr;
	unsigned int skc_rcv_saddr;
	unsigned short skc_family;
};

struct sock {
	struct sock_common __sk_common;
	unsigned short sk_type;
	unsigned short sk_protocol;
	unsigned short sk_gso_max_segs;
};

struct percpu_counter {
	s64 count;
	s64 *counters;
};

struct vm_area_struct {
	unsigned long vm_start;
	unsigned long vm_end;
	struct mm_struct *vm_mm;
};

struct mm_struct {
	unsigned long start_code;
	unsigned long end_code;
	struct percpu_counter rss_stat[4];
};

struct inode {
	unsigned short i_mode;
	long long i_atime_sec;
	long long i_mtime_sec;
	long long i_ctime_sec;
	u32 i_atime_nsec;
	u32 i_mtime_nsec;
	u32 i_ctime_nsec;
};

struct thread_info {
	unsigned long flags;
	unsigned long syscall_work;
	u32 status;
	u32 cpu;
};

struct task_struct {
	struct thread_info thread_info;
	unsigned int __state;
	struct mm_struct *mm;
	int pid;
	int tgid;
	struct task_struct *real_parent;
	char comm[16];
};

struct kernfs_node {
	struct kernfs_node *parent;
	const char *name;
	u64 id;
};

int anchor_minikernel_6_12_block(struct request *rq, struct request_queue *q, struct bio *bio,
				 struct block_device *bdev, struct gendisk *disk)
{
	return 0;
}

int anchor_minikernel_6_12_task(struct task_struct *t, struct mm_struct *mm,
				struct vm_area_struct *vma, struct percpu_counter *pc)
{
	return 0;
}

int anchor_minikernel_6_12_misc(struct sock *sk, struct inode *inode, struct kernfs_node *kn)
{
	return 0;
}

int anchor_minikernel_6_12_regs(struct pt_regs *regs)
{
	return 0;
}
