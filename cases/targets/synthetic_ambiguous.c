// SPDX-License-Identifier: Apache-2.0
/*
 * Hand-made target for cases/synthetic.bpf.c with duplicate candidates, as a kernel plus its
 * modules (or two config variants) can have. Flavor suffixes ("___a") are ignored when libbpf
 * looks for candidates, so each flavored struct here is a candidate for the local type of the
 * unsuffixed name:
 *   cm_sample___a / cm_sample___b  differ in where id and counter live: any relocation whose
 *                                  candidates disagree is an ambiguity error, not a guess
 *   cm_point___x  / cm_point___y   identical layout: candidates agree, so the relocations resolve
 * cm_inner, the enums and cm_handle_t have a single definition.
 */
enum cm_color { CM_RED = 0, CM_GREEN = 1, CM_BLUE = 2 };
enum cm_wide { CM_WIDE_SMALL = 1, CM_WIDE_BIG = 0x100000000ULL };
enum cm_signed { CM_NEG = -2, CM_POS = 3 };
typedef unsigned int cm_handle_t;

struct cm_inner {
	int x;
	int y;
};

struct cm_sample___a {
	int id;
	long counter;
	char name[8];
	struct cm_inner inner;
	enum cm_color color;
};

struct cm_sample___b {
	long counter;
	int id;
	char name[8];
	struct cm_inner inner;
	enum cm_color color;
};

struct cm_point___x {
	int px;
	int py;
};

struct cm_point___y {
	int px;
	int py;
};

int anchor_synthetic_ambiguous_types(struct cm_sample___a *sa, struct cm_sample___b *sb,
                                     struct cm_point___x *px, struct cm_point___y *py,
                                     struct cm_inner *i)
{
	return 0;
}

int anchor_synthetic_ambiguous_scalars(enum cm_color c, enum cm_wide w, enum cm_signed sg,
                                       cm_handle_t h)
{
	return 0;
}
