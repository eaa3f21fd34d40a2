// A legacy map definition (SEC("maps"), struct bpf_map_def), as objects written for libbpf before
// v1.0 have them. libbpf 1.x refuses to open such objects.
#define SEC(name) __attribute__((section(name), used))

struct bpf_map_def {
  unsigned int type;
  unsigned int key_size;
  unsigned int value_size;
  unsigned int max_entries;
  unsigned int map_flags;
};

struct bpf_map_def SEC("maps") legacy_counts = {
    .type = 1, // BPF_MAP_TYPE_HASH
    .key_size = 4,
    .value_size = 8,
    .max_entries = 128,
    .map_flags = 1,
};

struct bpf_map_def SEC("maps") legacy_array = {
    .type = 2, // BPF_MAP_TYPE_ARRAY
    .key_size = 4,
    .value_size = 16,
    .max_entries = 4,
};

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;

SEC("socket")
int legacy_prog(void *ctx) {
  int key = 0;
  return bpf_map_lookup_elem(&legacy_counts, &key) != 0 && bpf_map_lookup_elem(&legacy_array, &key) != 0;
}

char LICENSE[] SEC("license") = "GPL";
