// SPDX-License-Identifier: Apache-2.0
/*
 * Hand-made target for cases/synthetic.bpf.c where only the enums change:
 *   cm_color   renumbered (CM_GREEN 1 -> 7) and CM_BLUE removed: ENUMVAL_VALUE(CM_GREEN) = 7,
 *              ENUMVAL_EXISTS(CM_BLUE) = 0, and the unguarded ENUMVAL_VALUE(CM_BLUE) fails
 *   cm_wide    still an enum64 but CM_WIDE_BIG = 2^40 (a value only a 64-bit immediate holds)
 *   cm_signed  becomes an enum64 (what pahole emits for some kernel enums since 6.0): enum vs
 *              enum64 of the same name are candidates for each other; CM_NEG = -5
 * Struct types are as in synthetic_base.
 */
enum cm_color { CM_RED = 0, CM_GREEN = 7, CM_PURPLE = 8 };
enum cm_wide { CM_WIDE_SMALL = 1, CM_WIDE_BIG = 0x10000000000ULL };
enum cm_signed { CM_NEG = -5, CM_POS = 3, CM_HUGE = 0x7fffffffffffLL };
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

int anchor_synthetic_enums_types(struct cm_sample *s, struct cm_inner *i, struct cm_point *p)
{
	return 0;
}

int anchor_synthetic_enums_scalars(enum cm_color c, enum cm_wide w, enum cm_signed sg, cm_handle_t h)
{
	return 0;
}
