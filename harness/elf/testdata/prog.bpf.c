// A small BPF object with the shapes the ELF reader must decode: several program sections, a map
// in .maps, initialised and zeroed globals (.data, .bss), read-only data, a static subprogram and
// calls/loads that need relocations. Built for both byte orders by the tests.
#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int(*name)[val]
#define __type(name, val) typeof(val) *name

typedef unsigned int u32;
typedef unsigned long long u64;

struct {
  __uint(type, 1); // BPF_MAP_TYPE_HASH
  __uint(max_entries, 64);
  __type(key, u32);
  __type(value, u64);
} counts SEC(".maps");

u64 total = 7;
u64 zeroed;
const volatile u32 limit = 100;
static const char greeting[] = "hello";

static __attribute__((noinline)) u64 bump(u64 x) {
  return x + total + greeting[1];
}

SEC("tracepoint/syscalls/sys_enter_openat")
int on_openat(void *ctx) {
  u32 key = 1;
  void *(*lookup)(void *, const void *) = (void *)1;
  u64 *v = lookup(&counts, &key);
  if (v && *v < limit) zeroed = bump(*v);
  return 0;
}

SEC("kprobe/do_sys_open")
int on_open(void *ctx) {
  zeroed += bump(total);
  return 1;
}

char LICENSE[] SEC("license") = "GPL";
