// One half of a pair of compilation units that give the same names to different types, as kernel
// translation units do (two `struct workspace`s). Linked with dup_b.bpf.c by `bpftool gen object`,
// whose BTF then holds both; the header must tell them apart (`struct dup___2`).

struct dup {
	int a;
	char b;
};
typedef int dup_t;
enum dup_enum { DUP_ONE = 1, DUP_TWO = 2 };
struct dup_user_a {
	struct dup d;
	dup_t t;
	enum dup_enum e;
};
struct dup_user_a g_dup_user_a;
