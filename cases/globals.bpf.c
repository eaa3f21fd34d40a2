// SPDX-License-Identifier: Apache-2.0
/*
 * Everything around the programs that a loader must get right, with a few CO-RE reads so the
 * relocation of subprograms is exercised too:
 *   - global data: .rodata (const volatile knobs), .data (initialized), .bss (zeroed), and a
 *     custom .data.counters section (libbpf 0.6+ makes each .data.* / .rodata.* its own map)
 *   - .kconfig externs: LINUX_KERNEL_VERSION, CONFIG_HZ (int), CONFIG_BPF_SYSCALL (bool),
 *     CONFIG_CGROUPS (tristate) and a __weak one no kernel has (CONFIG_COREMATRIX_NOT_A_CONFIG,
 *     which must resolve to 0 instead of failing the load)
 *   - typed __ksym externs (5.11+): the per-CPU variables runqueues and bpf_prog_active, read with
 *     bpf_this_cpu_ptr; runqueues is __weak, its use guarded by a NULL check (percpu_ksyms also
 *     needs CONFIG_KALLSYMS_ALL, see there)
 *   - subprograms: a static one (linked into each caller) and a global one (verified on its own,
 *     5.6+), both with CO-RE relocations inside, and a BPF-to-BPF call chain
 *   - BTF-defined maps: hash, LRU hash, per-CPU array, array, ring buffer, perf event array, and
 *     map-in-map: an array of maps with statically initialized slots and a hash of maps
 * Meant to load on >= 5.11 with CONFIG_BPF_SYSCALL and CONFIG_CGROUPS (typed ksyms, ring buffer).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

/* ---- global data ---- */
const volatile __u32 sample_every = 1;		/* .rodata, set before load */
const volatile bool trace_kernel_threads = false;
__u64 events_seen = 42;				/* .data: starts non-zero */
__u64 last_pid;					/* .bss */
__u64 per_reason[4] SEC(".data.counters") = {1, 2, 3, 4};

/* ---- .kconfig ---- */
extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern int CONFIG_HZ __kconfig;
extern bool CONFIG_BPF_SYSCALL __kconfig;
extern enum libbpf_tristate CONFIG_CGROUPS __kconfig;
extern bool CONFIG_COREMATRIX_NOT_A_CONFIG __kconfig __weak;

/* ---- typed per-CPU kernel variables ---- */
extern const struct rq runqueues __ksym __weak;
extern const int bpf_prog_active __ksym;

/* ---- maps ---- */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} pid_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 128);
	__type(key, __u64);
	__type(value, __u32);
} recent_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} cpu_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} perf_out SEC(".maps");

/* Inner maps of the map-in-map: one definition serves as the template of both outers. */
struct inner_array {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
};

struct inner_array inner_even SEC(".maps"), inner_odd SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner_array);
} parity_tables SEC(".maps") = {
	.values = { [0] = &inner_even, [1] = &inner_odd },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 16);
	__type(key, __u32);
	__array(values, struct inner_array);
} per_cgroup_tables SEC(".maps");

/* ---- subprograms ---- */

/* Static: libbpf appends a copy to every program that calls it, relocations included. */
static __noinline __u64 task_start_time(struct task_struct *task)
{
	return BPF_CORE_READ(task, start_time) + bpf_core_field_offset(struct task_struct, start_time);
}

/* Global: the verifier checks it once, independently of callers (5.6+), so it takes no pointer
 * from them and finds the task itself. */
__noinline __u64 current_parent_tgid(void)
{
	struct task_struct *task = (void *)bpf_get_current_task();

	return BPF_CORE_READ(task, real_parent, tgid);
}

static __noinline __u64 bump(__u64 *counter)
{
	return __sync_fetch_and_add(counter, 1);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(count_forks, struct task_struct *parent, struct task_struct *child)
{
	__u32 pid = child->pid, zero = 0, slot = pid & 1;
	__u64 one = 1, *count, cgid = bpf_get_current_cgroup_id();
	void *table;

	if (sample_every > 1 && pid % sample_every)
		return 0;
	if (!trace_kernel_threads && !BPF_CORE_READ(child, mm))
		return 0;

	count = bpf_map_lookup_elem(&pid_counts, &pid);
	if (count)
		bump(count);
	else
		bpf_map_update_elem(&pid_counts, &pid, &one, BPF_NOEXIST);
	bpf_map_update_elem(&recent_cgroups, &cgid, &pid, BPF_ANY);

	count = bpf_map_lookup_elem(&cpu_counts, &zero);
	if (count)
		*count += 1;

	table = bpf_map_lookup_elem(&parity_tables, &slot);
	if (table) {
		count = bpf_map_lookup_elem(table, &zero);
		if (count)
			bump(count);
	}
	table = bpf_map_lookup_elem(&per_cgroup_tables, &pid);
	if (table) {
		count = bpf_map_lookup_elem(table, &zero);
		if (count)
			*count = task_start_time(child);
	}

	events_seen++;
	last_pid = current_parent_tgid();
	if (slot < 2)	/* re-check: the spilled value comes back unbounded */
		per_reason[slot] += 1;
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(kconfig_values, bool preempt, struct task_struct *prev)
{
	/* Turned into constants by libbpf before the verifier runs. */
	if (LINUX_KERNEL_VERSION < KERNEL_VERSION(5, 11, 0) || !CONFIG_BPF_SYSCALL)
		return 0;
	per_reason[0] = CONFIG_HZ;
	per_reason[1] = CONFIG_CGROUPS == TRI_YES;
	per_reason[2] = CONFIG_COREMATRIX_NOT_A_CONFIG;
	last_pid = task_start_time(prev);
	return 0;
}

/* The kernel resolves a typed ksym's address through kallsyms, which lists per-CPU variables
 * only with CONFIG_KALLSYMS_ALL: rejected (ENOENT) on kernels built without it, as the 6.18 host
 * this suite was written on. */
SEC("raw_tp/sched_switch")
int BPF_PROG(percpu_ksyms, bool preempt, struct task_struct *prev)
{
	const struct rq *rq;
	const int *active;

	if (&runqueues) {
		rq = bpf_this_cpu_ptr(&runqueues);
		per_reason[3] = rq->nr_running;
	}
	active = bpf_this_cpu_ptr(&bpf_prog_active);
	last_pid = *active;
	return 0;
}

/* Output through the two event channels, so both map types are used. */
SEC("perf_event")
int emit_events(struct bpf_perf_event_data *ctx)
{
	__u64 ts = bpf_ktime_get_ns();

	bpf_ringbuf_output(&ring, &ts, sizeof(ts), 0);
	bpf_perf_event_output(ctx, &perf_out, BPF_F_CURRENT_CPU, &ts, sizeof(ts));
	return 0;
}
