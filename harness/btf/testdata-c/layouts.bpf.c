// Layouts that natural C layout of the plain member list would not reproduce, and C declarator
// shapes that are easy to get wrong. Every type is used by a global so that clang puts it in .BTF.
// Compiled by dump-c.test.ts with clang-19 -target bpf -g -O2.

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

struct packed_basic {
	char a;
	int b;
	long c;
} __attribute__((packed));
struct packed_basic g_packed_basic;

/* A packed struct embedded at an unaligned offset, followed by naturally aligned members. */
struct holds_packed {
	char a;
	struct packed_basic p;
	short s;
	long l;
};
struct holds_packed g_holds_packed;

/* Packed but over-aligned: members unaligned, the whole 4-aligned. */
struct packed_aligned {
	char a;
	int b;
	char c;
} __attribute__((packed, aligned(4)));
struct packed_aligned_user {
	char x;
	struct packed_aligned pa;
	char y;
};
struct packed_aligned_user g_packed_aligned_user;

/* Packed whose layout happens to be natural: packing must not change anything. */
struct packed_natural {
	int a;
	int b;
} __attribute__((packed));
struct packed_natural_user {
	char c;
	struct packed_natural n;
};
struct packed_natural_user g_packed_natural_user;

/* Over-aligned members and types: the gaps must be padded explicitly. */
struct cacheline {
	long x;
} __attribute__((aligned(64)));
struct over_aligned {
	char a;
	int b __attribute__((aligned(16)));
	char c;
	struct cacheline line;
	int tail;
	int after_tail __attribute__((aligned(128)));
};
struct over_aligned g_over_aligned;

/* Bitfields that span bytes, units and a forced unit break (:0). */
struct bitfields {
	char a;
	unsigned int b : 3;
	unsigned int c : 20;
	u64 d : 40;
	unsigned char e : 1;
	int : 0;
	int f : 5;
	u16 g : 9;
	u16 h : 9;
	long i;
	u8 j : 2;
};
struct bitfields g_bitfields;

/* Packed bitfields straddle their units, which unpacked C never does. */
struct bitfields_packed {
	char a;
	unsigned int b : 30;
	u64 c : 60;
	unsigned char d : 7;
	short e;
} __attribute__((packed));
struct bitfields_packed g_bitfields_packed;

/* Unpacked struct whose bitfields straddle units only because a packed member moved them. */
struct bitfield_after_packed {
	struct packed_basic p;
	unsigned int x : 12;
	unsigned int y : 12;
};
struct bitfield_after_packed g_bitfield_after_packed;

enum color { RED, GREEN, BLUE };

/* Anonymous structs and unions nested in each other, named and unnamed. */
struct anon_nested {
	int kind;
	union {
		struct {
			short lo;
			short hi;
		};
		long wide;
		struct {
			char tag;
			union {
				int i;
				enum { SHAPE_ROUND, SHAPE_SQUARE } shape;
				u64 v : 48;
			} value;
		} tagged;
	};
	struct {
		int x;
		struct {
			char deep[3];
			enum color c : 2;
		} inner[2];
	} named;
	union {
		char bytes[5];
		u32 word;
	} __attribute__((packed)) packed_union;
};
struct anon_nested g_anon_nested;

/* Unions larger than their largest member. */
union big_union {
	char c;
	int i;
} __attribute__((aligned(32)));
union packed_union {
	char c[5];
	int i;
} __attribute__((packed));
struct union_user {
	char x;
	union big_union b;
	char y;
	union packed_union p;
};
struct union_user g_union_user;

/* Function pointers: arrays of them, returning them, variadic, no arguments. */
typedef int (*handler_fn)(int code, void *ctx);
typedef void (*(*getter_fn)(int))(char);
struct fptrs {
	int (*ops[4])(int, void *);
	void (*(*getter)(int))(char);
	int (*no_args)(void);
	int (*variadic)(const char *fmt, ...);
	handler_fn handlers[2][3];
	getter_fn get;
	int (*(*matrix)[2])(long);
	char *(*strdup_fn)(const char *const s);
};
struct fptrs g_fptrs;

/* Pointers to arrays, arrays of pointers, qualifiers on pointers and pointees. */
struct declarators {
	int (*row)[3];
	int *cols[3];
	int grid[2][3][4];
	const volatile int *const cv;
	const char *const *argv;
	volatile u64 *volatile *vv;
	void *restrict_me;
	struct opaque *opaque;
	union opaque_u *opaque_u;
};
struct declarators g_declarators;

/* 64-bit and oddly sized enums. */
enum e64 { E64_BIG = 0x100000000ULL, E64_SMALL = 1 };
enum eneg64 { ENEG_NEG = -0x100000000LL, ENEG_POS = 1 };
enum e8 { E8_A = 1, E8_B = 2 } __attribute__((packed));
enum e16 { E16_A = 300 } __attribute__((packed));
enum eneg { ENEG_A = -5, ENEG_B = 5 };
enum e64min { E64_MIN = (-9223372036854775807LL - 1), E64_MAX = 9223372036854775807LL };
struct with_enums {
	enum e64 a;
	enum e8 b;
	enum eneg64 c;
	enum e16 d;
	enum eneg e;
	enum e64min f;
	enum e8 bits : 3;
};
struct with_enums g_with_enums;

/* __int128 is 16-aligned for the BPF target: a 16-byte member at offset 8 needs packing. */
struct i128 {
	char c;
	__int128 x;
	unsigned __int128 y;
};
struct i128_packed {
	long a;
	__int128 x;
} __attribute__((packed));
struct i128 g_i128;
struct i128_packed g_i128_packed;

/* typedef'd anonymous types, and a struct that reaches itself through its typedef. */
typedef struct {
	int a;
	char b;
} anon_struct_t;
typedef union {
	int a;
	float f;
} anon_union_t;
typedef enum { ANON_E_A, ANON_E_B } anon_enum_t;
typedef struct node node_t;
struct node {
	node_t *next;
	anon_struct_t s;
	anon_union_t u;
	anon_enum_t e;
	double d;
	_Bool flag;
};
node_t g_node;

/* Mutual recursion: one needs the other complete, the other only a pointer. */
struct mutual_b;
struct mutual_a {
	struct mutual_b *b;
	int x;
};
struct mutual_b {
	struct mutual_a a;
	struct mutual_b *self;
};
struct mutual_b g_mutual_b;

/* Type tags on pointees (as the kernel's __user and __rcu are). */
struct tagged {
	int __attribute__((btf_type_tag("user"))) *uptr;
	struct node __attribute__((btf_type_tag("rcu"))) __attribute__((btf_type_tag("percpu"))) *rcu;
};
struct tagged g_tagged;

/* Empty and zero-length. */
struct empty {};
struct flex {
	int n;
	long data[];
};
struct empty g_empty;
struct flex g_flex;
