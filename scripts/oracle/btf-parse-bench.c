/*
 * The libbpf side of `npm run bench`: how long libbpf takes to parse a BTF file and answer
 * name lookups, timed inside the process so that exec and dynamic loading do not count.
 *
 *   btf-parse-bench FILE ITERATIONS [NAME KIND]...
 *
 * Each iteration runs btf__parse(FILE) (read + validate, as corematrix's Btf.parse does), then
 * btf__find_by_name_kind for every NAME/KIND pair (whatever search libbpf does for it counts, as
 * corematrix's name index build counts on its side), then btf__free. Prints one JSON object on
 * stdout: every iteration's time in nanoseconds and the ids found, so the caller can check
 * both sides found the same types.
 */
#include <bpf/btf.h>
#include <errno.h>
#include <linux/btf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct {
	const char *name;
	int kind;
} kinds[] = {
	{ "int", BTF_KIND_INT },	 { "ptr", BTF_KIND_PTR },	   { "array", BTF_KIND_ARRAY },
	{ "struct", BTF_KIND_STRUCT },	 { "union", BTF_KIND_UNION },	   { "enum", BTF_KIND_ENUM },
	{ "fwd", BTF_KIND_FWD },	 { "typedef", BTF_KIND_TYPEDEF }, { "volatile", BTF_KIND_VOLATILE },
	{ "const", BTF_KIND_CONST },	 { "restrict", BTF_KIND_RESTRICT }, { "func", BTF_KIND_FUNC },
	{ "func_proto", BTF_KIND_FUNC_PROTO }, { "var", BTF_KIND_VAR }, { "datasec", BTF_KIND_DATASEC },
	{ "float", BTF_KIND_FLOAT },	 { "decl_tag", BTF_KIND_DECL_TAG }, { "type_tag", BTF_KIND_TYPE_TAG },
	{ "enum64", BTF_KIND_ENUM64 },
};

static int kind_number(const char *name)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(kinds[i].name, name) == 0)
			return kinds[i].kind;
	return -1;
}

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc < 3 || (argc - 3) % 2 != 0) {
		fprintf(stderr, "usage: %s FILE ITERATIONS [NAME KIND]...\n", argv[0]);
		return 2;
	}
	const char *path = argv[1];
	int iterations = atoi(argv[2]);
	int lookups = (argc - 3) / 2;
	if (iterations <= 0) {
		fprintf(stderr, "%s: ITERATIONS must be a positive number\n", argv[0]);
		return 2;
	}
	int *lookup_kinds = calloc(lookups + 1, sizeof(int));
	int *found = calloc(lookups + 1, sizeof(int));
	long long *times = calloc(iterations, sizeof(long long));
	if (!lookup_kinds || !found || !times) {
		fprintf(stderr, "%s: out of memory\n", argv[0]);
		return 1;
	}
	for (int i = 0; i < lookups; i++) {
		lookup_kinds[i] = kind_number(argv[4 + 2 * i]);
		if (lookup_kinds[i] < 0) {
			fprintf(stderr, "%s: unknown kind %s\n", argv[0], argv[4 + 2 * i]);
			return 2;
		}
	}

	unsigned int type_count = 0;
	for (int it = 0; it < iterations; it++) {
		long long start = now_ns();
		struct btf *btf = btf__parse(path, NULL);
		if (!btf) {
			fprintf(stderr, "%s: %s: btf__parse failed: %s\n", argv[0], path, strerror(errno));
			return 1;
		}
		for (int i = 0; i < lookups; i++)
			found[i] = btf__find_by_name_kind(btf, argv[3 + 2 * i], lookup_kinds[i]);
		times[it] = now_ns() - start;
		type_count = btf__type_cnt(btf);
		btf__free(btf);
	}

	printf("{\"typeCount\":%u,\"found\":[", type_count);
	for (int i = 0; i < lookups; i++)
		printf("%s%d", i ? "," : "", found[i]);
	printf("],\"ns\":[");
	for (int it = 0; it < iterations; it++)
		printf("%s%lld", it ? "," : "", times[it]);
	printf("]}\n");
	return 0;
}
