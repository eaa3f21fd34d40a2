/*
 * libbpf's C rendering of a BTF, for comparing `corematrix btf dump --format c` with it:
 *
 *   btf-dump-c FILE
 *
 * Prints every type of FILE (raw BTF or an ELF with .BTF) through libbpf's btf_dump, one
 * btf_dump__dump_type() call per type id in order: the body bpftool's `btf dump ... format c`
 * writes between its header guard and pragma lines. Exit 1 with a message when libbpf fails.
 */
#include <bpf/btf.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void print(void *ctx, const char *fmt, va_list args)
{
	(void)ctx;
	vprintf(fmt, args);
}

int main(int argc, char **argv)
{
	struct btf_dump *dump;
	struct btf *btf;
	__u32 id, count;
	int err;

	if (argc != 2) {
		fprintf(stderr, "usage: %s FILE\n", argv[0]);
		return 2;
	}
	btf = btf__parse(argv[1], NULL);
	if (!btf) {
		fprintf(stderr, "btf-dump-c: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	dump = btf_dump__new(btf, print, NULL, NULL);
	if (!dump) {
		fprintf(stderr, "btf-dump-c: btf_dump__new: %s\n", strerror(errno));
		return 1;
	}
	count = btf__type_cnt(btf);
	for (id = 1; id < count; id++) {
		err = btf_dump__dump_type(dump, id);
		if (err) {
			fprintf(stderr, "btf-dump-c: type [%u]: %s\n", id, strerror(-err));
			return 1;
		}
	}
	btf_dump__free(dump);
	btf__free(btf);
	return 0;
}
