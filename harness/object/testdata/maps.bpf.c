// BTF-defined maps of every shape libbpf's parse_btf_map_def handles, global data in every kind of
// data section, and the relocations that tie programs to them: map references, global data, a
// subprogram call, a callback passed to bpf_loop and a tail-call prog array with initial values.
// Self-contained (no system headers): the macros are bpf_helpers.h's.
#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int(*name)[val]
#define __type(name, val) typeof(val) *name
#define __array(name, val) typeof(val) *name[]
#define __ulong(name, val) enum { ___bpf_concat(__unique_value, __COUNTER__) = val } name
#define ___bpf_concat(a, b) a##b
#define __noinline __attribute__((noinline))

typedef unsigned int u32;
typedef unsigned long long u64;

enum {
  MAP_HASH = 1,
  MAP_ARRAY = 2,
  MAP_PROG_ARRAY = 3,
  MAP_PERCPU_ARRAY = 6,
  MAP_ARRAY_OF_MAPS = 12,
  MAP_HASH_OF_MAPS = 13,
  MAP_RINGBUF = 27,
  MAP_BLOOM_FILTER = 30,
};

struct event {
  u32 pid;
  char comm[16];
  u64 ts;
};

struct flow_key {
  u32 saddr, daddr;
  unsigned short sport, dport;
};

struct {
  __uint(type, MAP_RINGBUF);
  __uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
  __uint(type, MAP_HASH);
  __uint(max_entries, 10240);
  __type(key, struct flow_key);
  __type(value, struct event);
  __uint(map_flags, 1); // BPF_F_NO_PREALLOC
  __uint(pinning, 1);   // LIBBPF_PIN_BY_NAME
} flows SEC(".maps");

struct {
  __uint(type, MAP_PERCPU_ARRAY);
  __uint(max_entries, 4);
  __uint(key_size, sizeof(u32));
  __uint(value_size, 24);
  __uint(numa_node, 1);
} sizes_only SEC(".maps");

struct {
  __uint(type, MAP_BLOOM_FILTER);
  __uint(max_entries, 1000);
  __type(value, u64);
  __uint(map_extra, 3);
} bloom SEC(".maps");

struct inner {
  __uint(type, MAP_ARRAY);
  __uint(max_entries, 1);
  __type(key, int);
  __type(value, int);
} inner_a SEC(".maps"), inner_b SEC(".maps");

struct {
  __uint(type, MAP_ARRAY_OF_MAPS);
  __uint(max_entries, 4);
  __type(key, int);
  __array(values, struct inner);
} outer SEC(".maps") = {
    .values = {&inner_a, 0, &inner_b},
};

struct {
  __uint(type, MAP_HASH_OF_MAPS);
  __uint(max_entries, 8);
  __type(key, u32);
  __array(values, struct {
    __uint(type, MAP_HASH);
    __uint(max_entries, 16);
    __type(key, u64);
    __type(value, u32);
  });
} outer_hash SEC(".maps");

SEC("xdp") int tail_a(void *ctx);
SEC("xdp") int tail_b(void *ctx);

struct {
  __uint(type, MAP_PROG_ARRAY);
  __uint(max_entries, 3);
  __uint(key_size, sizeof(u32));
  __array(values, int(void *));
} jumps SEC(".maps") = {
    .values = {[0] = &tail_a, [2] = &tail_b},
};

u64 counter = 42;                             // .data
u64 hits;                                     // .bss
const volatile u32 target_pid = 1234;         // .rodata
const volatile char label[5] = "abcd";        // .rodata
u32 custom_word SEC(".data.custom") = 0xfeedf00d;
static u64 hidden_total SEC(".data.custom");  // static: not exposed by the skeleton
const volatile u64 tuned SEC(".rodata.tunables") = 7;

static long (*bpf_loop)(u32 nr, void *fn, void *ctx, u64 flags) = (void *)181;
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_tail_call)(void *ctx, void *map, u32 index) = (void *)12;
static void *(*bpf_ringbuf_reserve)(void *rb, u64 size, u64 flags) = (void *)131;

static int loop_body(u32 index, void *data) {
  u64 *sum = data;
  *sum += index + counter;
  return 0;
}

__noinline int global_helper(u32 x) {
  return x * 3 + target_pid;
}

static __noinline u64 local_helper(u64 x) {
  hidden_total += x;
  return x + tuned + label[1];
}

SEC("xdp") int tail_a(void *ctx) { return 1; }
SEC("xdp") int tail_b(void *ctx) { return 2; }

SEC("xdp")
int entry(void *ctx) {
  u64 sum = 0;
  struct flow_key k = {};
  struct event *e;
  int zero = 0;
  bpf_loop(10, loop_body, &sum, 0);
  e = bpf_map_lookup_elem(&flows, &k);
  if (e) sum += e->ts;
  if (bpf_map_lookup_elem(&outer, &zero)) sum++;
  if (bpf_map_lookup_elem(&sizes_only, &zero)) sum++;
  if (bpf_ringbuf_reserve(&events, 8, 0)) sum++;
  hits++;
  custom_word++;
  sum += global_helper(sum) + local_helper(sum);
  bpf_tail_call(ctx, &jumps, 0);
  return sum;
}

char LICENSE[] SEC("license") = "GPL";
