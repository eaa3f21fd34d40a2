/*
 * libbpf-loader: the reference corematrix's agent is compared with. For each BPF object file and
 * each of its programs on its own, it opens the object with libbpf (no btf_custom_path: libbpf
 * takes the running kernel's /sys/kernel/btf/vmlinux), turns autoload on for that program only,
 * calls bpf_object__load and reports the outcome in the same framed messages as the agent
 * (common.c; harness/vm/protocol.ts reads them): verdict, errno, and libbpf's log (the verifier
 * log libbpf prints on failure).
 *
 *   libbpf-loader [--out PATH] [--no-init] [OBJECT...]
 *
 * Without OBJECT arguments it loads every *.o under $CMX_OBJECTS (default /objects), in name
 * order. As PID 1 it mounts /proc, /sys, /dev, … and powers off at the end, like the agent.
 * Objects are reported by the path given (or found).
 *
 * Note for the initramfs: libbpf reads a kernel's config for .kconfig externs from
 * /boot/config-$(uname -r) (or /proc/config.gz), and vmlinux BTF from /sys/kernel/btf/vmlinux.
 */
#define _GNU_SOURCE
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common.h"

static struct sbuf libbpf_log;
static size_t log_max = 65536;

static int print_cb(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	sb_vprintf(&libbpf_log, fmt, ap);
	return 0;
}


/* Where libbpf failed, from what it printed: the program's own load, a map, or mandatory BTF. */
static const char *stage_of(const char *log)
{
	if (strstr(log, "BPF program load failed"))
		return "prog";
	if (strstr(log, "BTF is mandatory"))
		return "btf";
	if (strstr(log, "failed to create"))
		return "map";
	return NULL;
}

/* The verifier log libbpf printed between its BEGIN/END markers, else everything it printed. */
static void log_excerpt(const char *log, size_t len, const char **start, size_t *n)
{
	const char *begin = strstr(log, "-- BEGIN PROG LOAD LOG --\n");
	const char *end = begin ? strstr(begin, "-- END PROG LOAD LOG --") : NULL;
	if (begin && end) {
		*start = begin + strlen("-- BEGIN PROG LOAD LOG --\n");
		*n = (size_t)(end - *start);
	} else {
		*start = log;
		*n = len;
	}
}

static void load_one(const char *path, const char *prog_name, const char *section)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts);
	libbpf_log.len = 0;
	if (libbpf_log.p)
		libbpf_log.p[0] = '\0';
	struct bpf_object *obj = bpf_object__open_file(path, &opts);
	int err = 0;
	uint64_t t0 = cmx_now_ns(), t1;
	if (!obj) {
		err = errno;
	} else {
		struct bpf_program *prog;
		bpf_object__for_each_program(prog, obj)
			bpf_program__set_autoload(prog, strcmp(bpf_program__name(prog), prog_name) == 0);
		t0 = cmx_now_ns();
		int r = bpf_object__load(obj);
		if (r < 0)
			err = -r;
	}
	t1 = cmx_now_ns();
	struct sbuf b = {0};
	sb_puts(&b, "{");
	json_kv_cstr(&b, "type", "result");
	json_kv_cstr(&b, "object", path);
	json_kv_cstr(&b, "program", prog_name);
	json_kv_cstr(&b, "section", section);
	json_kv_cstr(&b, "verdict", err ? "rejected" : "loaded");
	const char *log = libbpf_log.p ? libbpf_log.p : "";
	if (err) {
		const char *stage = stage_of(log);
		if (stage)
			json_kv_cstr(&b, "stage", stage);
		json_kv_int(&b, "errno", err);
		const char *start;
		size_t n;
		log_excerpt(log, libbpf_log.len, &start, &n);
		json_kv_log(&b, start, n, log_max);
		if (start != log)
			json_kv_log_named(&b, "libbpfLog", log, (size_t)(start - log), log_max);
	} else {
		json_kv_log(&b, log, libbpf_log.len, log_max);
	}
	json_kv_int(&b, "loadNs", (long long)(t1 - t0));
	sb_puts(&b, "}");
	cmx_send_sbuf(&b);
	sb_free(&b);
	bpf_object__close(obj);
}

static void load_file(const char *path)
{
	/* one open to learn the programs, then one open per program */
	libbpf_log.len = 0;
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	if (!obj) {
		char msg[1024];
		snprintf(msg, sizeof(msg), "cannot open %s: %s%s%s", path, strerror(errno),
			 libbpf_log.len ? "\n" : "", libbpf_log.len ? libbpf_log.p : "");
		cmx_send_error(path, msg);
		return;
	}
	size_t n = 0, cap = 8;
	char **names = malloc(cap * sizeof(*names)), **sections = malloc(cap * sizeof(*sections));
	struct bpf_program *prog;
	bpf_object__for_each_program(prog, obj)
	{
		if (n == cap) {
			cap *= 2;
			names = realloc(names, cap * sizeof(*names));
			sections = realloc(sections, cap * sizeof(*sections));
		}
		names[n] = strdup(bpf_program__name(prog));
		sections[n] = strdup(bpf_program__section_name(prog));
		n++;
	}
	bpf_object__close(obj);
	for (size_t i = 0; i < n; i++) {
		load_one(path, names[i], sections[i]);
		free(names[i]);
		free(sections[i]);
	}
	free(names);
	free(sections);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_object(const struct dirent *d)
{
	size_t n = strlen(d->d_name);
	return n > 2 && !strcmp(d->d_name + n - 2, ".o");
}

int main(int argc, char **argv)
{
	int pid1 = getpid() == 1;
	const char *out_path = getenv("CMX_OUT");
	const char **objects = calloc((size_t)argc + 1, sizeof(*objects));
	int nobjects = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--out") && i + 1 < argc)
			out_path = argv[++i];
		else if (!strcmp(argv[i], "--no-init"))
			pid1 = 0;
		else if (argv[i][0] == '-' && !pid1) {
			fprintf(stderr, "usage: libbpf-loader [--out PATH] [--no-init] [OBJECT...]\n");
			return 2;
		} else if (argv[i][0] != '-')
			objects[nobjects++] = argv[i];
	}
	cmx_read_env(&log_max);
	if (pid1)
		cmx_init_system();
	if (cmx_open_output(out_path) < 0) {
		fprintf(stderr, "libbpf-loader: cannot open the output\n");
		if (pid1)
			cmx_power_off();
		return 1;
	}
	cmx_bump_memlock();
	libbpf_set_print(print_cb);

	struct dirent **found = NULL;
	int nfound = 0;
	char **paths = NULL;
	const char *dir = getenv("CMX_OBJECTS");
	if (!dir || !*dir)
		dir = "/objects";
	if (!nobjects) {
		nfound = scandir(dir, &found, is_object, by_name);
		if (nfound > 0) {
			paths = calloc((size_t)nfound, sizeof(*paths));
			for (int i = 0; i < nfound; i++) {
				if (asprintf(&paths[i], "%s/%s", dir, found[i]->d_name) < 0)
					paths[i] = NULL;
			}
		}
	}

	struct utsname uts;
	uname(&uts);
	struct sbuf b = {0};
	sb_puts(&b, "{");
	json_kv_cstr(&b, "type", "hello");
	json_kv_cstr(&b, "agent", "libbpf-loader");
	json_kv_int(&b, "protocol", 1);
	json_kv_cstr(&b, "kernelRelease", uts.release);
	sb_printf(&b, ",\"libbpf\":\"%u.%u\"", libbpf_major_version(), libbpf_minor_version());
	json_kv_int(&b, "objects", nobjects ? nobjects : nfound > 0 ? nfound : 0);
	sb_puts(&b, "}");
	cmx_send_sbuf(&b);
	sb_free(&b);

	if (nobjects) {
		for (int i = 0; i < nobjects; i++)
			load_file(objects[i]);
	} else if (nfound < 0) {
		char msg[512];
		snprintf(msg, sizeof(msg), "cannot list %s: %s", dir, strerror(errno));
		cmx_send_error(NULL, msg);
	} else {
		for (int i = 0; i < nfound; i++)
			if (paths[i])
				load_file(paths[i]);
	}

	b = (struct sbuf){0};
	sb_puts(&b, "{");
	json_kv_cstr(&b, "type", "done");
	json_kv_int(&b, "messages", cmx_sent());
	json_kv_bool(&b, "ok", 1);
	sb_puts(&b, "}");
	cmx_send_sbuf(&b);
	sb_free(&b);
	if (pid1)
		cmx_power_off();
	cmx_flush_output();
	return cmx_send_failed ? 1 : 0;
}
