// SPDX-License-Identifier: Apache-2.0
/*
 * A hand-made miniature of a 5.4 x86_64 kernel's BTF: only the types and members that
 * cases/kernel_changes.bpf.c and cases/flavors.bpf.c touch, in their pre-change shapes (member
 * order follows the kernel, offsets do not). Relocating those objects against this must pick
 * the *_old_only / pre-change branches: task_struct.state (long), request.rq_disk,
 * bio.bi_disk, sk_protocol as an 8-bit bitfield, mm_struct.mmap with vm_next and
 * struct mm_rss_stat, inode.i_ctime, task_struct.cpu, kernfs_node.parent and the
 * union kernfs_node_id; and fail the *_new_only programs.
 */
typedef long long s64;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef struct { s64 counter; } atomic64_t;
typedef atomic64_t atomic_long_t;

struct timespec64 {
	long long tv_sec;
	long tv_nsec;
};

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
	unsigned int bd_dev;
	struct gendisk *bd_disk;
};

struct request_queue {
	void *queuedata;		/* no disk back-pointer before 5.16 */
};

struct request {
	struct request_queue *q;
	unsigned int cmd_flags;
	struct gendisk *rq_disk;
};

struct bio {
	struct bio *bi_next;
	struct gendisk *bi_disk;
	unsigned int bi_opf;
};

struct sock_common {
	unsigned int skc_daddr;
	unsigned int skc_rcv_saddr;
	unsigned short skc_family;
};

struct sock {
	struct sock_common __sk_common;
	unsigned int __sk_flags_offset[0];
	unsigned int sk_padding : 1, sk_kern_sock : 1, sk_no_check_tx : 1, sk_no_check_rx : 1,
		     sk_userlocks : 4, sk_protocol : 8, sk_type : 16;
	unsigned short sk_gso_max_segs;
};

struct mm_rss_stat {
	atomic_long_t count[4];
};

struct vm_area_struct {
	unsigned long vm_start;
	unsigned long vm_end;
	struct vm_area_struct *vm_next;
	struct mm_struct *vm_mm;
};

struct mm_struct {
	struct vm_area_struct *mmap;
	unsigned long start_code;
	unsigned long end_code;
	struct mm_rss_stat rss_stat;
};

struct inode {
	unsigned short i_mode;
	struct timespec64 i_atime;
	struct timespec64 i_mtime;
	struct timespec64 i_ctime;
};

struct thread_info {
	unsigned long flags;
	u32 status;			/* no cpu here before 5.16 */
};

struct task_struct {
	struct thread_info thread_info;
	volatile long state;
	unsigned int cpu;
	struct mm_struct *mm;
	int pid;
	int tgid;
	struct task_struct *real_parent;
	char comm[16];
};

union kernfs_node_id {
	struct {
		u32 ino;
		u32 generation;
	};
	u64 id;
};

struct kernfs_node {
	struct kernfs_node *parent;
	const char *name;
	union kernfs_node_id id;
};

int anchor_minikernel_5_4_block(struct request *rq, struct request_queue *q, struct bio *bio,
				struct gendisk *disk)
{
	return 0;
}

int anchor_minikernel_5_4_task(struct task_struct *t, struct mm_struct *mm,
			       struct vm_area_struct *vma, struct mm_rss_stat *rss)
{
	return 0;
}

int anchor_minikernel_5_4_misc(struct sock *sk, struct inode *inode, struct kernfs_node *kn,
			       union kernfs_node_id *id)
{
	return 0;
}

int anchor_minikernel_5_4_regs(struct pt_regs *regs, struct block_device *bdev)
{
	return 0;
}
