/*
 * A BPF program whose BTF holds every BTF kind (1..19) and every kind_flag meaning, for comparing
 * corematrix's raw BTF dump with bpftool's. Built with clang -g -O2 -target bpf (and bpfeb).
 * Self-contained: no kernel or libbpf headers, so it builds the same everywhere.
 */

#define SEC(name) __attribute__((section(name), used))
#define __tag(x) __attribute__((btf_decl_tag(x)))
#define __user __attribute__((btf_type_tag("user")))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

/* INT: every size and encoding clang emits (signed, unsigned, char, bool). */
typedef _Bool bool_t;
typedef signed char s8_t;
typedef unsigned char u8_t;
typedef short s16_t;
typedef unsigned short u16_t;
typedef int s32_t;
typedef unsigned int u32_t;
typedef long long s64_t;
typedef unsigned long long u64_t;
typedef __int128 s128_t;
typedef unsigned __int128 u128_t;

/* ENUM (unsigned and signed), ENUM64 (unsigned with a value above 32 bits, signed with negatives). */
enum color { RED, GREEN = 5, BLUE = 0xffffffffu };
enum sign { MINUS = -1, ZERO, PLUS, LOW = -2147483647 - 1 };
enum big { BIG_SMALL = 1, BIG_HUGE = 0x123456789abcdef0ull, BIG_TOP = 0xffffffffffffffffull };
enum neg64 { NEG64_MIN = -0x7fffffffffffffffll - 1, NEG64_M1 = -1, NEG64_WIDE = 0x100000000ll };

/* FWD: declared, used through pointers, never defined. */
struct opaque_s;
union opaque_u;

/* STRUCT with bitfields (kind_flag set), an anonymous union and struct, arrays and qualifiers. */
struct __tag("a_struct") packet {
  unsigned int version : 4;
  unsigned int ihl : 4;
  signed int delta : 7;
  unsigned long long wide : 33;
  bool_t flag : 1;
  union {
    u32_t as_u32;
    u8_t as_bytes[4];
  };
  struct {
    u16_t lo;
    u16_t hi __tag("a_member");
  } halves;
  const volatile int cv;
  char *restrict rp;
  int matrix[2][3];
  float f;
  double d;
  long double ld;
  struct opaque_s *os;
  union opaque_u *ou;
  enum color c;
  enum sign s;
  enum big b;
  enum neg64 n;
  int __user *up;
  s8_t i8; u8_t u8; s16_t i16; u16_t u16; s32_t i32; u32_t u32; s64_t i64; u64_t u64;
  s128_t i128; u128_t u128; char ch; signed char sch; unsigned char uch; long l; unsigned long ul;
};

/* STRUCT without bitfields (kind_flag clear), and a UNION. */
struct plain {
  int a;
  char b[0];
};
union either {
  int i;
  float f;
  struct plain p;
};

/* FUNC_PROTO with varargs, through a function pointer type. */
typedef int (*printf_fn)(const char *fmt, ...);
typedef void (*noargs_fn)(void);

/* .maps: a BTF-defined map. */
struct {
  __uint(type, 1);
  __uint(max_entries, 16);
  __type(key, u32_t);
  __type(value, struct packet);
} the_map SEC(".maps");

/* VAR / DATASEC: .data, .bss, .rodata, and static and global linkage. */
int data_global = 7;
static volatile int data_static = 3;
int bss_global;
static volatile u64_t bss_static;
const volatile int rodata_global = 42;
const volatile enum big rodata_enum = BIG_HUGE;
union either data_union = { .i = 1 };
printf_fn fn_ptr;
noargs_fn fn_noargs;
volatile long double *extended_ptr;
struct plain plains[3];

/* FUNC: static and global linkage; DECL_TAG on a parameter and on the function. */
static __attribute__((noinline)) int helper(struct packet *p __tag("a_param"), union opaque_u *u) __tag("a_func")
{
  return p->version + p->cv + (u != 0) + data_static;
}

int global_func(struct packet *p, union either e, enum sign s, enum neg64 n)
{
  return helper(p, 0) + e.i + s + (int)n;
}

SEC("xdp") int prog(void *ctx)
{
  struct packet *p = (struct packet *)ctx;
  bss_static += p->wide;
  bss_global += global_func(p, data_union, MINUS, NEG64_M1);
  if (fn_ptr)
    fn_ptr("%d", 1);
  if (fn_noargs)
    fn_noargs();
  return rodata_global + (int)rodata_enum + plains[1].a + (extended_ptr != 0);
}

char LICENSE[] SEC("license") = "GPL";
