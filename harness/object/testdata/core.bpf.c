// CO-RE relocations of several kinds against local types marked preserve_access_index, next to a
// map and global data: the base object the fuzz test mutates.
#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int(*name)[val]
#define __type(name, val) typeof(val) *name

struct task {
  int pid;
  unsigned int flags : 3, state : 5;
  struct task *parent;
  char comm[16];
} __attribute__((preserve_access_index));

enum mode { MODE_A = 1, MODE_B = 2 };

struct {
  __uint(type, 2);
  __uint(max_entries, 1);
  __type(key, int);
  __type(value, long);
} seen SEC(".maps");

long total;
const volatile int wanted = 5;
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;

SEC("kprobe/do_task")
int probe(struct task *t) {
  int key = 0;
  long *v = bpf_map_lookup_elem(&seen, &key);
  if (!v) return 0;
  *v += t->pid + t->parent->pid + t->comm[1] + t->state;
  if (__builtin_preserve_field_info(t->flags, 2 /* FIELD_EXISTS */)) total++;
  if (__builtin_preserve_type_info(*t, 1 /* TYPE_SIZE */) > 8) total += wanted;
  if (__builtin_preserve_enum_value(*(enum mode *)MODE_B, 0 /* ENUMVAL_EXISTS */)) total--;
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
