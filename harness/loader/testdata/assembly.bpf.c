// Program assembly fixture: subprogram order, callbacks, kfuncs, kconfig, global data.
#include "../../../cases/include/vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

extern int LINUX_KERNEL_VERSION __kconfig;
extern int CONFIG_HZ __kconfig;
extern bool CONFIG_BPF_SYSCALL __kconfig;
extern enum libbpf_tristate CONFIG_NF_CONNTRACK __kconfig __weak;
extern char CONFIG_DEFAULT_HOSTNAME[16] __kconfig __weak;
extern int CONFIG_CM_MISSING __kconfig __weak;

extern struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym __weak;
extern void bpf_task_release(struct task_struct *p) __ksym __weak;
#ifdef STRONG
extern void cm_no_such_kfunc(void) __ksym;
#else
extern void cm_no_such_kfunc(void) __ksym __weak;
#endif

/* Kinds older kernels lack: DECL_TAG, TYPE_TAG, ENUM64, FLOAT (sanitization tests). */
int __attribute__((btf_decl_tag("cm_tag"))) tagged_var;
int __attribute__((btf_type_tag("cm_user"))) *tagged_ptr;
enum cm_big { CM_BIG = 0x100000000ULL } big_enum_var;
float float_var;

int counter = 1;
const volatile int knob = 7;
long results[8];

static __noinline int sub_b(int x)
{
	counter += x;
	return x * 3;
}

static __noinline int sub_a(int x)
{
	return sub_b(x + 1) + 1;
}

static __noinline int sub_c(int x)
{
	return sub_b(x - 1) + knob;
}

__noinline int global_sub(int x)
{
	results[x & 7] = x;
	return x;
}

static long loop_cb(__u64 i, void *ctx)
{
	results[i & 7] += sub_b((int)i);
	return 0;
}

SEC("tp/syscalls/sys_enter_getpid")
int main_a(void *ctx)
{
	return sub_a(counter) + global_sub(2);
}

SEC("tp/syscalls/sys_enter_getppid")
int main_b(void *ctx)
{
	bpf_loop(4, loop_cb, 0, 0);
	return sub_c(knob);
}

SEC("tp_btf/sched_process_fork")
int main_kfuncs(u64 *ctx)
{
	struct task_struct *t = bpf_get_current_task_btf();

#ifndef STRONG
	if (bpf_ksym_exists(cm_no_such_kfunc))
#endif
		cm_no_such_kfunc();
	t = bpf_task_acquire(t);
	if (t)
		bpf_task_release(t);
	results[0] = LINUX_KERNEL_VERSION + CONFIG_HZ + CONFIG_BPF_SYSCALL + CONFIG_NF_CONNTRACK +
		     CONFIG_DEFAULT_HOSTNAME[0] + CONFIG_CM_MISSING;
	return 0;
}

SEC("fentry/cm_no_such_function")
int missing_target(void *ctx)
{
	return 0;
}
