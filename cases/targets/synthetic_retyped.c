// SPDX-License-Identifier: Apache-2.0
/*
 * Hand-made target for cases/synthetic.bpf.c where members keep their names but change type:
 *   id       int -> long long            integers stay compatible: BYTE_SIZE 4 -> 8, and a direct
 *                                        load of it must be widened
 *   counter  long -> unsigned int         BYTE_SIZE 8 -> 4, a direct load narrowed
 *   name     char[8] -> char[16]          same element type, BYTE_SIZE 8 -> 16
 *   inner    struct cm_inner -> pointer   struct vs pointer: inner.x/inner.y cannot match
 *   next     pointer -> unsigned long     pointer vs int: the chase next->x cannot match
 *   matrix   int[2][3] -> short[2][2]     index [1][2] is out of the target's bounds
 *   color    enum cm_color -> int         enum vs int: whatever libbpf decides, the engine must too
 *   cm_handle_t  now a typedef of unsigned long long: TYPE_SIZE 4 -> 8, TYPE_MATCHES 0
 *   cm_point px/py  int -> long: TYPE_MATCHES 0 (matching ints must agree in size)
 * cm_inner itself is unchanged, so TYPE_MATCHES(struct cm_inner) stays 1.
 */
enum cm_color { CM_RED = 0, CM_GREEN = 1, CM_BLUE = 2 };
enum cm_wide { CM_WIDE_SMALL = 1, CM_WIDE_BIG = 0x100000000ULL };
enum cm_signed { CM_NEG = -2, CM_POS = 3 };
typedef unsigned long long cm_handle_t;

struct cm_inner {
	int x;
	int y;
};

struct cm_sample {
	long long id;
	unsigned int counter;
	char name[16];
	struct cm_inner *inner;
	union {
		int u_int;
		unsigned short u_short;
	};
	struct {
		int anon_a;
		int anon_b;
	};
	short matrix[2][2];
	unsigned int flag_u : 3;
	int level_s : 5;
	unsigned long long wide_u : 40;
	unsigned long next;
	int color;
	cm_handle_t handle;
};

struct cm_point {
	long px;
	long py;
};

int anchor_synthetic_retyped_types(struct cm_sample *s, struct cm_inner *i, struct cm_point *p)
{
	return 0;
}

int anchor_synthetic_retyped_scalars(enum cm_color c, enum cm_wide w, enum cm_signed sg,
                                     cm_handle_t h)
{
	return 0;
}
