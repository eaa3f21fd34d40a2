// SPDX-License-Identifier: Apache-2.0
/*
 * Hand-made target for cases/synthetic.bpf.c where members, enumerators and a typedef were
 * renamed (the kernel's task_struct.state -> __state kind of change): counter -> count,
 * color -> colour, anon_b -> anon_bee, CM_BLUE -> CM_AZURE, cm_handle_t is gone, and cm_sample
 * has no "serial" (asked for by the cm_sample___v2 flavor). Expect FIELD_EXISTS 0 for them,
 * poisoned unguarded reads (synthetic's field_unguarded is rejected here while field_guarded
 * loads), ENUMVAL_EXISTS 0 for CM_BLUE, TYPE_EXISTS 0 for cm_handle_t, and TYPE_MATCHES 0 for
 * cm_sample (a local member has no target member of that name).
 */
enum cm_color { CM_RED = 0, CM_GREEN = 1, CM_AZURE = 2 };
enum cm_wide { CM_WIDE_SMALL = 1, CM_WIDE_BIG = 0x100000000ULL };
enum cm_signed { CM_NEG = -2, CM_POS = 3 };
typedef unsigned int cm_handle;

struct cm_inner {
	int x;
	int y;
};

struct cm_sample {
	int id;
	long count;
	char name[8];
	struct cm_inner inner;
	union {
		int u_int;
		unsigned short u_short;
	};
	struct {
		int anon_a;
		int anon_bee;
	};
	int matrix[2][3];
	unsigned int flag_u : 3;
	int level_s : 5;
	unsigned long long wide_u : 40;
	struct cm_inner *next;
	enum cm_color colour;
	cm_handle handle;
};

struct cm_point {
	int px;
	int py;
};

int anchor_synthetic_renamed_types(struct cm_sample *s, struct cm_inner *i, struct cm_point *p)
{
	return 0;
}

int anchor_synthetic_renamed_scalars(enum cm_color c, enum cm_wide w, enum cm_signed sg, cm_handle h)
{
	return 0;
}
