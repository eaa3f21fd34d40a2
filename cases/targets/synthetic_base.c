// SPDX-License-Identifier: Apache-2.0
/*
 * Hand-made target "kernel" for cases/synthetic.bpf.c: the very same cm_* types, so every
 * relocation resolves to the value the compiler already wrote (the identity case).
 *
 * Each fixture ends with anchor functions taking every type as a parameter: clang's BTF keeps a
 * type only if something reaches it, and a struct reached only through another struct's pointer
 * member comes out as a FWD. (Two functions, because BPF functions take at most five arguments.)
 */
enum cm_color { CM_RED = 0, CM_GREEN = 1, CM_BLUE = 2 };
enum cm_wide { CM_WIDE_SMALL = 1, CM_WIDE_BIG = 0x100000000ULL };
enum cm_signed { CM_NEG = -2, CM_POS = 3 };
typedef unsigned int cm_handle_t;

struct cm_inner {
	int x;
	int y;
};

struct cm_sample {
	int id;
	long counter;
	char name[8];
	struct cm_inner inner;
	union {
		int u_int;
		unsigned short u_short;
	};
	struct {
		int anon_a;
		int anon_b;
	};
	int matrix[2][3];
	unsigned int flag_u : 3;
	int level_s : 5;
	unsigned long long wide_u : 40;
	struct cm_inner *next;
	enum cm_color color;
	cm_handle_t handle;
};

struct cm_point {
	int px;
	int py;
};

int anchor_synthetic_base_types(struct cm_sample *s, struct cm_inner *i, struct cm_point *p)
{
	return 0;
}

int anchor_synthetic_base_scalars(enum cm_color c, enum cm_wide w, enum cm_signed sg, cm_handle_t h)
{
	return 0;
}
