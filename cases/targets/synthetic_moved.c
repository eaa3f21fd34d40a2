// SPDX-License-Identifier: Apache-2.0
/*
 * Hand-made target for cases/synthetic.bpf.c: the same members with the same types, but
 * reordered and padded, so every FIELD_BYTE_OFFSET (and bitfield shift) changes while
 * FIELD_BYTE_SIZE, FIELD_EXISTS and TYPE_MATCHES stay as in synthetic_base. The anonymous union
 * and struct swap places; the bitfields move into a different storage unit; cm_point gains a
 * leading member. TYPE_SIZE grows.
 */
enum cm_color { CM_RED = 0, CM_GREEN = 1, CM_BLUE = 2 };
enum cm_wide { CM_WIDE_SMALL = 1, CM_WIDE_BIG = 0x100000000ULL };
enum cm_signed { CM_NEG = -2, CM_POS = 3 };
typedef unsigned int cm_handle_t;

struct cm_inner {
	long pad_before;	/* moves x and y by 8 bytes */
	int y;
	int x;
};

struct cm_sample {
	struct cm_inner *next;
	cm_handle_t handle;
	unsigned short pad16;
	unsigned int flag_u : 3;	/* now at bit 48 of an 8-byte unit, and the */
	int level_s : 5;		/* 5-bit signed one right after it */
	enum cm_color color;
	struct {
		int anon_a;
		int anon_b;
	};
	union {
		int u_int;
		unsigned short u_short;
	};
	int matrix[2][3];
	char name[8];
	unsigned long long wide_u : 40;
	long counter;
	struct cm_inner inner;
	int id;
};

struct cm_point {
	int pz;
	int py;
	int px;
};

int anchor_synthetic_moved_types(struct cm_sample *s, struct cm_inner *i, struct cm_point *p)
{
	return 0;
}

int anchor_synthetic_moved_scalars(enum cm_color c, enum cm_wide w, enum cm_signed sg, cm_handle_t h)
{
	return 0;
}
