// Externs as libbpf's bpf_object__collect_externs sees them: Kconfig values (.kconfig) of every
// type libbpf classifies, typed and typeless kernel symbols (.ksyms), and kfuncs, strong and weak.
// Self-contained (no system headers): the macros are bpf_helpers.h's.
#define SEC(name) __attribute__((section(name), used))
#define __kconfig __attribute__((section(".kconfig")))
#define __ksym __attribute__((section(".ksyms")))
#define __weak __attribute__((weak))

typedef unsigned int u32;
typedef unsigned long long u64;

enum libbpf_tristate {
  TRI_NO = 0,
  TRI_YES = 1,
  TRI_MODULE = 2,
};

struct task_struct {
  int pid;
};

extern u32 LINUX_KERNEL_VERSION __kconfig;
extern int CONFIG_HZ __kconfig;
extern _Bool CONFIG_BPF_SYSCALL __kconfig;
extern enum libbpf_tristate CONFIG_BPF_JIT __kconfig __weak;
extern char CONFIG_DEFAULT_HOSTNAME[16] __kconfig __weak;
extern char CONFIG_X86_ONE_CHAR __kconfig __weak;
extern unsigned short CONFIG_NR_SHORT __kconfig __weak;
extern u64 CONFIG_PHYSICAL_START __kconfig __weak;
extern _Bool LINUX_HAS_BPF_COOKIE __kconfig;

extern const void bpf_prog_active __ksym;           // typeless: address from kallsyms
extern const int bpf_stats_enabled_key __ksym __weak; // typed: needs the kernel's BTF
extern struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;
extern int bpf_no_such_kfunc(int x) __ksym __weak;

u64 out[12];

SEC("tp_btf/sched_switch")
int use_externs(u64 *ctx) {
  struct task_struct *t = (void *)ctx[1];
  out[0] = LINUX_KERNEL_VERSION;
  out[1] = CONFIG_HZ;
  out[2] = CONFIG_BPF_SYSCALL;
  out[3] = CONFIG_BPF_JIT;
  out[4] = CONFIG_DEFAULT_HOSTNAME[0];
  out[5] = CONFIG_X86_ONE_CHAR + CONFIG_NR_SHORT + CONFIG_PHYSICAL_START;
  out[6] = LINUX_HAS_BPF_COOKIE;
  out[7] = (u64)&bpf_prog_active;
  out[8] = bpf_stats_enabled_key;
  t = bpf_task_acquire(t);
  if (t) bpf_task_release(t);
  if (bpf_no_such_kfunc) out[9] = bpf_no_such_kfunc(1);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
