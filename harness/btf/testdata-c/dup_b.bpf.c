// The other half of dup_a.bpf.c: same names, different layouts and values.

struct dup {
	long a;
	short b;
	char c[3];
} __attribute__((packed));
typedef long dup_t;
enum dup_enum { DUP_ONE = 10, DUP_TWO = 20, DUP_THREE = 30 };
struct dup_user_b {
	char x;
	struct dup d;
	dup_t t;
	enum dup_enum e;
};
struct dup_user_b g_dup_user_b;
