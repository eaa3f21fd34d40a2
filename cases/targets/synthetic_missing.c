// SPDX-License-Identifier: Apache-2.0
/*
 * Hand-made target with none of cases/synthetic.bpf.c's types: every field relocation finds no
 * candidate (libbpf poisons the instruction rather than failing the load, so only reachable
 * poisoned code is rejected), TYPE_EXISTS/TYPE_MATCHES/TYPE_SIZE/TYPE_ID_TARGET give 0,
 * ENUMVAL_EXISTS 0 and an unguarded ENUMVAL_VALUE fails. One unrelated type keeps the BTF
 * non-empty, plus a near miss: "cm_sample_v2" is a different name from "cm_sample" (only a
 * triple underscore starts a flavor suffix).
 */
struct unrelated {
	int a;
};

struct cm_sample_v2 {
	int id;
};

int anchor_synthetic_missing(struct unrelated *u, struct cm_sample_v2 *s)
{
	return 0;
}
