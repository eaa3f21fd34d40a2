// SPDX-License-Identifier: Apache-2.0
// A hand-made "kernel" BTF for libbpf-oracle.test.ts: two flavors of struct corematrix_amb whose
// field x sits at different offsets, so a CO-RE read of corematrix_amb.x is ambiguous.
struct corematrix_amb {
	int x;
};

struct corematrix_amb___v2 {
	long pad;
	int x;
};

struct corematrix_amb a;
struct corematrix_amb___v2 b;
