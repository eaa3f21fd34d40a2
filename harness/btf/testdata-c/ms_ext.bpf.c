// Unnamed members of a named struct or typedef type, which only -fms-extensions accepts and which
// kernels built with that flag have in their BTF. Compiled by dump-c.test.ts with -fms-extensions;
// the header written from its BTF must reproduce the layouts without that flag.

struct base_fields {
	int a;
	long b;
};
typedef struct {
	short x;
	short y;
} point_t;
union either {
	int i;
	char c[6];
};
struct ms_ext {
	char tag;
	struct base_fields;
	point_t;
	union either;
	int after;
};
struct ms_ext g_ms_ext;

/* A packed named type copied inline keeps its packing. */
struct packed_fields {
	char p;
	int q;
} __attribute__((packed));
struct ms_ext_packed {
	short s;
	struct packed_fields;
	char t;
};
struct ms_ext_packed g_ms_ext_packed;
