// SPDX-License-Identifier: Apache-2.0
/*
 * Hand-made target for cases/synthetic.bpf.c where only the bitfields change, so the five
 * bitfield relocations (BYTE_OFFSET, BYTE_SIZE, SIGNED, LSHIFT_U64, RSHIFT_U64) all move:
 *   flag_u   unsigned :3 -> unsigned :7, starting 2 bits later (a wider field)
 *   level_s  signed :5   -> unsigned :5   (FIELD_SIGNED 1 -> 0: sign extension must stop)
 *   wide_u   unsigned long long :40 -> plain unsigned int (no longer a bitfield: the macros must
 *            still read it, with shifts computed for a 4-byte whole field)
 * and one field becomes a bitfield: id int -> signed :20 (the kernel's sock.sk_protocol went the
 * other way in 5.6, a bitfield becoming a plain u16).
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
	int id : 20;
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
	unsigned int spare : 2;
	unsigned int flag_u : 7;
	unsigned int level_s : 5;
	unsigned int wide_u;
	struct cm_inner *next;
	enum cm_color color;
	cm_handle_t handle;
};

struct cm_point {
	int px;
	int py;
};

int anchor_synthetic_bitfields_types(struct cm_sample *s, struct cm_inner *i, struct cm_point *p)
{
	return 0;
}

int anchor_synthetic_bitfields_scalars(enum cm_color c, enum cm_wide w, enum cm_signed sg,
                                       cm_handle_t h)
{
	return 0;
}
