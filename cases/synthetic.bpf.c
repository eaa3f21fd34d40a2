// SPDX-License-Identifier: Apache-2.0
/*
 * Synthetic case: every CO-RE relocation kind against small hand-made types (cm_*) instead of
 * the kernel's. It is meant to be relocated against the hand-made "kernels" of cases/targets/
 * (build/cases/targets/NAME.btf), where each fixture changes these types in one way, so the CO-RE
 * engine can be unit-tested without any real kernel BTF.
 *
 * No real kernel defines cm_* types: on any real kernel the field relocations find no candidate
 * and libbpf poisons the instructions, so these programs are never meant to load anywhere.
 *
 * The fixture cases/targets/synthetic_base.c repeats these type definitions exactly; keep the two
 * in step when a type here changes.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

/* 32-bit enum; the fixtures renumber, rename and drop its values. */
enum cm_color {
	CM_RED = 0,
	CM_GREEN = 1,
	CM_BLUE = 2,
};

/* A value above 32 bits makes clang emit BTF_KIND_ENUM64 (clang >= 15). */
enum cm_wide {
	CM_WIDE_SMALL = 1,
	CM_WIDE_BIG = 0x100000000ULL,
};

/* Negative enumerators: a signed enum (kflag set in BTF). */
enum cm_signed {
	CM_NEG = -2,
	CM_POS = 3,
};

typedef unsigned int cm_handle_t;

struct cm_inner {
	int x;
	int y;
} __attribute__((preserve_access_index));

struct cm_sample {
	int id;
	long counter;
	char name[8];
	struct cm_inner inner;
	union {			/* anonymous union: accessed as s->u_short */
		int u_int;
		unsigned short u_short;
	};
	struct {		/* anonymous struct: accessed as s->anon_b */
		int anon_a;
		int anon_b;
	};
	int matrix[2][3];
	unsigned int flag_u : 3;
	int level_s : 5;	/* signed bitfield: FIELD_SIGNED must say 1 */
	unsigned long long wide_u : 40;
	struct cm_inner *next;
	enum cm_color color;
	cm_handle_t handle;
} __attribute__((preserve_access_index));

/* A flavor of cm_sample: "___v2" is stripped when matching, so this relocates against the
 * target's cm_sample (or its flavors) and asks for a field only some fixtures have. */
struct cm_sample___v2 {
	long long serial;
} __attribute__((preserve_access_index));

/* Two identical-layout flavors exist in targets/synthetic_ambiguous.c: not ambiguous. */
struct cm_point {
	int px;
	int py;
} __attribute__((preserve_access_index));

/* Results land in .bss so the compiler keeps every relocated value. */
__u64 out[32];

char LICENSE[] SEC("license") = "GPL";

/* FIELD_BYTE_OFFSET through probe reads: plain, nested, array element, 2-D array, anonymous
 * union and struct members, a pointer chase, and the offset asked for explicitly. */
SEC("raw_tp/sys_enter")
int BPF_PROG(field_offsets, struct cm_sample *s)
{
	out[0] = BPF_CORE_READ(s, id);
	out[1] = BPF_CORE_READ(s, inner.y);
	out[2] = BPF_CORE_READ(s, name[3]);
	out[3] = BPF_CORE_READ(s, matrix[1][2]);
	out[4] = BPF_CORE_READ(s, u_short);
	out[5] = BPF_CORE_READ(s, anon_b);
	out[6] = BPF_CORE_READ(s, next, x);
	out[7] = bpf_core_field_offset(struct cm_sample, counter);
	return 0;
}

/* FIELD_BYTE_SIZE for an int, a long, an array, a struct, an enum and a typedef'd field. */
SEC("raw_tp/sys_enter")
int BPF_PROG(field_sizes, struct cm_sample *s)
{
	out[8] = bpf_core_field_size(s->id);
	out[9] = bpf_core_field_size(s->counter);
	out[10] = bpf_core_field_size(s->name);
	out[11] = bpf_core_field_size(s->inner);
	out[12] = bpf_core_field_size(s->color);
	out[13] = bpf_core_field_size(struct cm_sample, handle);
	return 0;
}

/* FIELD_EXISTS, guarding the reads of fields some fixtures rename or drop: these reads are
 * portable. field_unguarded below reads the same fields without a guard. */
SEC("raw_tp/sys_enter")
int BPF_PROG(field_guarded, struct cm_sample *s)
{
	struct cm_sample___v2 *s2 = (void *)s;

	if (bpf_core_field_exists(s->counter))
		out[14] = BPF_CORE_READ(s, counter);
	if (bpf_core_field_exists(s->color))
		out[15] = BPF_CORE_READ(s, color);
	if (bpf_core_field_exists(s2->serial))
		out[16] = BPF_CORE_READ(s2, serial);
	return 0;
}

/* The same reads without guards: poisoned (and so rejected by the verifier) wherever a fixture
 * lacks the field, e.g. targets/synthetic_renamed.btf. */
SEC("raw_tp/sys_enter")
int BPF_PROG(field_unguarded, struct cm_sample *s)
{
	struct cm_sample___v2 *s2 = (void *)s;

	out[14] = BPF_CORE_READ(s, counter);
	out[15] = BPF_CORE_READ(s, color);
	out[16] = BPF_CORE_READ(s2, serial);
	return 0;
}

/* FIELD_BYTE_OFFSET/BYTE_SIZE/SIGNED/LSHIFT_U64/RSHIFT_U64 through probe reads of an unsigned, a
 * signed and a 40-bit bitfield. */
SEC("raw_tp/sys_enter")
int BPF_PROG(bitfields_probed, struct cm_sample *s)
{
	out[17] = BPF_CORE_READ_BITFIELD_PROBED(s, flag_u);
	out[18] = BPF_CORE_READ_BITFIELD_PROBED(s, level_s);
	out[19] = BPF_CORE_READ_BITFIELD_PROBED(s, wide_u);
	return 0;
}

/* Direct loads (the LDX instructions themselves carry FIELD_BYTE_OFFSET, and their width must be
 * adjusted when a fixture changes a field's size) and BPF_CORE_READ_BITFIELD's direct variant.
 * tp_btf gives a typed pointer on a real kernel; here it only needs to relocate. */
SEC("tp_btf/sys_enter")
int BPF_PROG(direct_loads, struct cm_sample *s)
{
	out[20] = s->id;
	out[21] = s->counter;
	out[22] = s->inner.x;
	out[23] = BPF_CORE_READ_BITFIELD(s, flag_u);
	out[24] = BPF_CORE_READ_BITFIELD(s, level_s);
	return 0;
}

/* TYPE_EXISTS, TYPE_SIZE, TYPE_MATCHES, TYPE_ID_LOCAL and TYPE_ID_TARGET on a struct, a
 * typedef, an enum and the flavored struct. */
SEC("raw_tp/sys_enter")
int BPF_PROG(type_relocs)
{
	out[25] = bpf_core_type_exists(struct cm_sample) | bpf_core_type_exists(cm_handle_t) << 1 |
		  bpf_core_type_exists(enum cm_color) << 2 | bpf_core_type_exists(struct cm_point) << 3;
	out[26] = bpf_core_type_size(struct cm_sample) + (bpf_core_type_size(cm_handle_t) << 16);
	out[27] = bpf_core_type_matches(struct cm_sample) | bpf_core_type_matches(struct cm_inner) << 1 |
		  bpf_core_type_matches(enum cm_color) << 2 | bpf_core_type_matches(cm_handle_t) << 3;
	out[28] = bpf_core_type_id_local(struct cm_sample) + ((__u64)bpf_core_type_id_kernel(struct cm_sample) << 32);
	out[29] = bpf_core_type_id_kernel(struct cm_sample___v2) + ((__u64)bpf_core_type_id_kernel(struct cm_point) << 32);
	return 0;
}

/* ENUMVAL_EXISTS and ENUMVAL_VALUE on a 32-bit enum, an enum64 and a signed enum. */
SEC("raw_tp/sys_enter")
int BPF_PROG(enum_relocs)
{
	if (bpf_core_enum_value_exists(enum cm_color, CM_BLUE))
		out[30] = bpf_core_enum_value(enum cm_color, CM_BLUE);
	out[31] = bpf_core_enum_value(enum cm_color, CM_GREEN) |
		  bpf_core_enum_value_exists(enum cm_wide, CM_WIDE_BIG) << 8;
	out[0] = bpf_core_enum_value(enum cm_wide, CM_WIDE_BIG);
	out[1] = bpf_core_enum_value(enum cm_signed, CM_NEG) + bpf_core_enum_value(enum cm_signed, CM_POS);
	return 0;
}
