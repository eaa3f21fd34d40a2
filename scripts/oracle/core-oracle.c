// SPDX-License-Identifier: Apache-2.0
/*
 * core-oracle: what libbpf decides for every CO-RE relocation of a BPF object against a target
 * BTF. Opens OBJ with btf_custom_path = TARGET_BTF (and the given kernel config as .kconfig),
 * captures libbpf's log at every level, runs bpf_object__prepare() and turns libbpf's own debug
 * log into JSON lines on stdout, one per CO-RE relocation in libbpf's processing order, then one
 * final {"done": true, ...} line. See harness/test-support/libbpf-oracle.ts for the format.
 *
 *   core-oracle OBJ.o TARGET_BTF [--kconfig FILE] [--insns] [--verbose]
 *
 * --kconfig FILE   kernel config (plain or gzip), passed as bpf_object_open_opts.kconfig
 * --insns          after a successful prepare, also print each program's final instructions
 * --verbose        copy libbpf's whole log to stderr
 *
 * The log formats parsed are libbpf 1.7's (src/relo_core.c and src/libbpf.c):
 *   sec 'S': found N CO-RE relocations
 *   sec 'S': skipping CO-RE relocation #N for insn #I belonging to eliminated weak subprogram
 *   prog 'P': relo #N: <kind> [id] ...                   (local spec)
 *   prog 'P': relo #N: matching|non-matching candidate #C <kind> ...
 *   prog 'P': relo #N: patched insn #I (CLASS) imm|off|imm64 X -> Y
 *   prog 'P': relo #N: patched insn #I (LDX/ST/STX) mem_sz X -> Y
 *   prog 'P': relo #N: substituting insn #I w/ invalid insn
 *   prog 'P': relo #N: failed to relocate: E | failed to patch insn #I: E
 *   failed to perform CO-RE relocations: E
 * Exit status: 0 when the oracle ran (whatever prepare returned), 2 on bad usage, 1 otherwise.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <bpf/libbpf.h>

/* ---------- captured log ---------- */

struct log_line {
	enum libbpf_print_level level;
	char *text; /* without the "libbpf: " prefix and the trailing newline */
};

static struct log_line *log_lines;
static size_t log_cnt, log_cap;
static char *partial;       /* text of a line not yet ended by '\n' */
static size_t partial_len;
static bool verbose;

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p) {
		fprintf(stderr, "core-oracle: out of memory\n");
		exit(1);
	}
	return p;
}

static char *xstrndup(const char *s, size_t n)
{
	char *r = xrealloc(NULL, n + 1);

	memcpy(r, s, n);
	r[n] = '\0';
	return r;
}

static void push_line(enum libbpf_print_level level, const char *s, size_t n)
{
	static const char pfx[] = "libbpf: ";

	if (n >= sizeof(pfx) - 1 && memcmp(s, pfx, sizeof(pfx) - 1) == 0) {
		s += sizeof(pfx) - 1;
		n -= sizeof(pfx) - 1;
	}
	if (log_cnt == log_cap) {
		log_cap = log_cap ? log_cap * 2 : 256;
		log_lines = xrealloc(log_lines, log_cap * sizeof(*log_lines));
	}
	log_lines[log_cnt].level = level;
	log_lines[log_cnt].text = xstrndup(s, n);
	log_cnt++;
}

static int print_cb(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *msg = NULL, *p, *nl;
	int n;

	n = vasprintf(&msg, fmt, ap);
	if (n < 0)
		return 0;
	if (verbose)
		fputs(msg, stderr);
	p = msg;
	while ((nl = strchr(p, '\n'))) {
		size_t len = nl - p;

		if (partial_len) {
			partial = xrealloc(partial, partial_len + len + 1);
			memcpy(partial + partial_len, p, len);
			push_line(level, partial, partial_len + len);
			partial_len = 0;
		} else {
			push_line(level, p, len);
		}
		p = nl + 1;
	}
	if (*p) {
		size_t len = strlen(p);

		partial = xrealloc(partial, partial_len + len + 1);
		memcpy(partial + partial_len, p, len);
		partial_len += len;
	}
	free(msg);
	return n;
}

static void flush_partial(void)
{
	if (partial_len)
		push_line(LIBBPF_WARN, partial, partial_len);
	partial_len = 0;
}

/* ---------- JSON output ---------- */

static void json_str(const char *s)
{
	if (!s) {
		fputs("null", stdout);
		return;
	}
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\t')
			fputs("\\t", stdout);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

/* ---------- relocations reconstructed from the log ---------- */

enum result { RES_NONE, RES_PATCHED, RES_POISONED, RES_ERROR, RES_SKIPPED };

struct cand {
	int index;
	bool matching;
	char *spec;
};

struct relo {
	char *section;
	int index;
	char *function;
	long insn;     /* -1: libbpf did not print it */
	char *kind;
	char *spec;
	enum result result;
	char *old_val, *new_val, *insn_class, *operand;
	bool has_mem_sz;
	char *mem_old, *mem_new;
	char *error_code; /* errstr() text from "failed to relocate/patch" */
	char *failure;    /* the "failed to ..." line itself */
	char *message;
	char **warnings;
	size_t warn_cnt;
	struct cand *cands;
	size_t cand_cnt;
	bool no_match;
	bool closed;      /* a patch/poison/failure line was seen */
};

static struct relo *relos;
static size_t relo_cnt, relo_cap;

static struct relo *new_relo(const char *section, int index, const char *function)
{
	struct relo *r;

	if (relo_cnt == relo_cap) {
		relo_cap = relo_cap ? relo_cap * 2 : 64;
		relos = xrealloc(relos, relo_cap * sizeof(*relos));
	}
	r = &relos[relo_cnt++];
	memset(r, 0, sizeof(*r));
	r->section = section ? strdup(section) : NULL;
	r->index = index;
	r->function = function ? strdup(function) : NULL;
	r->insn = -1;
	return r;
}

static void add_warning(struct relo *r, const char *line)
{
	r->warnings = xrealloc(r->warnings, (r->warn_cnt + 1) * sizeof(char *));
	r->warnings[r->warn_cnt++] = strdup(line);
}

static bool starts_with(const char *s, const char *pfx)
{
	return strncmp(s, pfx, strlen(pfx)) == 0;
}

/* "prog 'P': relo #N: REST" -> P, N, REST */
static bool parse_relo_prefix(const char *line, char **prog, int *idx, const char **rest)
{
	const char *p, *q;
	char *end;
	long n;

	if (!starts_with(line, "prog '"))
		return false;
	p = line + 6;
	q = strstr(p, "': relo #");
	if (!q)
		return false;
	n = strtol(q + 9, &end, 10);
	if (end == q + 9 || strncmp(end, ": ", 2) != 0)
		return false;
	*prog = xstrndup(p, q - p);
	*idx = (int)n;
	*rest = end + 2;
	return true;
}

/* "sec 'S': REST" -> S, REST */
static bool parse_sec_prefix(const char *line, char **sec, const char **rest)
{
	const char *q;

	if (!starts_with(line, "sec '"))
		return false;
	q = strstr(line + 5, "': ");
	if (!q)
		return false;
	*sec = xstrndup(line + 5, q - (line + 5));
	*rest = q + 3;
	return true;
}

/* "<kind> ..." -> kind */
static char *spec_kind(const char *spec)
{
	const char *e;

	if (spec[0] != '<' || !(e = strchr(spec, '>')))
		return NULL;
	return xstrndup(spec + 1, e - spec - 1);
}

static char *word_dup(const char *s, const char **after)
{
	const char *e = s;

	while (*e && !isspace((unsigned char)*e))
		e++;
	if (after)
		*after = e;
	return xstrndup(s, e - s);
}

/* Applies one keyed line (the REST after "prog 'P': relo #N: ") to relocation r. */
static void apply_relo_line(struct relo *r, const struct log_line *l, const char *rest)
{
	const char *p;
	long insn;
	char *end;

	if (starts_with(rest, "patched insn #")) {
		/* patched insn #I (CLASS) OPERAND X -> Y */
		insn = strtol(rest + 14, &end, 10);
		p = end;
		if (starts_with(p, " (")) {
			const char *close = strchr(p + 2, ')');
			char *operand, *x, *y;

			if (!close)
				goto other;
			p = close + 2;
			operand = word_dup(p, &p);
			x = word_dup(p + 1, &p);
			if (!starts_with(p, " -> "))
				goto other;
			y = word_dup(p + 4, NULL);
			if (strcmp(operand, "mem_sz") == 0) {
				r->has_mem_sz = true;
				r->mem_old = x;
				r->mem_new = y;
			} else {
				r->insn_class = xstrndup(end + 2, close - (end + 2));
				r->operand = operand;
				r->old_val = x;
				r->new_val = y;
				r->insn = insn;
				r->result = RES_PATCHED;
			}
			r->closed = true;
			return;
		}
		goto other;
	}
	if (starts_with(rest, "substituting insn #")) {
		insn = strtol(rest + 19, &end, 10);
		/* a poisoned ldimm64 logs insn #I+1 first, then #I */
		if (r->result != RES_POISONED || insn < r->insn)
			r->insn = insn;
		r->result = RES_POISONED;
		r->closed = true;
		return;
	}
	if (starts_with(rest, "failed to relocate: ") || starts_with(rest, "failed to patch insn #") ||
	    starts_with(rest, "failed to record relocation: ")) {
		if (starts_with(rest, "failed to patch insn #")) {
			insn = strtol(rest + 22, &end, 10);
			r->insn = insn;
		}
		p = strstr(rest, ": ");
		r->error_code = p ? strdup(p + 2) : NULL;
		r->failure = strdup(rest);
		r->result = RES_ERROR;
		r->closed = true;
		return;
	}
	if (starts_with(rest, "matching candidate #") || starts_with(rest, "non-matching candidate #")) {
		bool matching = rest[0] == 'm';
		long ci = strtol(strchr(rest, '#') + 1, &end, 10);

		r->cands = xrealloc(r->cands, (r->cand_cnt + 1) * sizeof(*r->cands));
		r->cands[r->cand_cnt].index = (int)ci;
		r->cands[r->cand_cnt].matching = matching;
		r->cands[r->cand_cnt].spec = strdup(*end == ' ' ? end + 1 : end);
		r->cand_cnt++;
		return;
	}
	if (strcmp(rest, "no matching targets found") == 0) {
		r->no_match = true;
		return;
	}
	if (rest[0] == '<' && !r->spec && l->level != LIBBPF_WARN) {
		r->spec = strdup(rest);
		r->kind = spec_kind(rest);
		return;
	}
other:
	if (l->level == LIBBPF_WARN) {
		/* e.g. "unexpected insn #I (...) value: ..." carries the insn index */
		const char *h = strstr(rest, "insn #");

		add_warning(r, rest);
		if (!r->message)
			r->message = strdup(rest);
		if (h && r->insn < 0)
			r->insn = strtol(h + 6, NULL, 10);
	}
}

/* Turns the captured log into relocations. Returns whether CO-RE relocation failed the object. */
static bool parse_log(char **core_failure)
{
	char *section = NULL;
	struct relo *cur = NULL; /* the relocation lines are being attributed to */
	char **pending = NULL;   /* WARN lines not keyed by a relo, waiting for the next one */
	size_t pending_cnt = 0, i, j;
	bool core_failed = false;

	for (i = 0; i < log_cnt; i++) {
		const struct log_line *l = &log_lines[i];
		const char *rest;
		char *prog, *sec;
		int idx;

		if (parse_sec_prefix(l->text, &sec, &rest)) {
			if (strstr(rest, " CO-RE relocations") && starts_with(rest, "found ")) {
				free(section);
				section = sec;
				cur = NULL;
				pending_cnt = 0;
				continue;
			}
			if (starts_with(rest, "skipping CO-RE relocation #")) {
				char *end;
				long n = strtol(rest + 27, &end, 10);
				struct relo *r = new_relo(sec, (int)n, NULL);

				if (starts_with(end, " for insn #"))
					r->insn = strtol(end + 11, NULL, 10);
				r->result = RES_SKIPPED;
				r->message = strdup("belonging to eliminated weak subprogram");
				r->closed = true;
				cur = NULL;
				free(sec);
				continue;
			}
			free(sec);
		}
		if (starts_with(l->text, "failed to perform CO-RE relocations: ")) {
			/* why: the WARN line before it (e.g. "failed to parse target BTF: -ENOENT") */
			core_failed = true;
			*core_failure = strdup(l->text);
			for (j = i; j-- > 0;) {
				if (log_lines[j].level == LIBBPF_WARN) {
					free(*core_failure);
					*core_failure = strdup(log_lines[j].text);
					break;
				}
			}
			cur = NULL;
			continue;
		}
		if (parse_relo_prefix(l->text, &prog, &idx, &rest)) {
			/* libbpf keys its later instruction relocations the same way ("relo #N: poisoning
			 * insn #I that calls kfunc 'f'" / "that loads map #M"): not CO-RE, not ours. */
			if (starts_with(rest, "poisoning insn #")) {
				free(prog);
				continue;
			}
			if (!cur || cur->index != idx || strcmp(cur->function, prog) != 0) {
				cur = new_relo(section, idx, prog);
				for (j = 0; j < pending_cnt; j++) {
					add_warning(cur, pending[j]);
					if (!cur->message)
						cur->message = strdup(pending[j]);
				}
				pending_cnt = 0;
			}
			free(prog);
			apply_relo_line(cur, l, rest);
			continue;
		}
		/* lines not keyed by a relocation number */
		if (!section || l->level != LIBBPF_WARN)
			continue;
		if (cur && !cur->closed) {
			add_warning(cur, l->text);
			if (!cur->message)
				cur->message = strdup(l->text);
		} else {
			pending = xrealloc(pending, (pending_cnt + 1) * sizeof(char *));
			pending[pending_cnt++] = l->text;
		}
	}
	for (i = 0; i < relo_cnt; i++) {
		struct relo *r = &relos[i];

		if (r->result == RES_NONE && core_failed && i == relo_cnt - 1)
			r->result = RES_ERROR;
		if (r->result == RES_ERROR && !r->message)
			r->message = r->failure ? strdup(r->failure) : strdup("unknown failure");
	}
	free(section);
	free(pending);
	return core_failed;
}

static void print_relo(const struct relo *r)
{
	static const char *const results[] = {
		[RES_NONE] = "unknown", [RES_PATCHED] = "patched", [RES_POISONED] = "poisoned",
		[RES_ERROR] = "error", [RES_SKIPPED] = "skipped",
	};
	size_t i;

	fputs("{\"section\":", stdout);
	json_str(r->section);
	printf(",\"index\":%d,\"function\":", r->index);
	json_str(r->function);
	if (r->insn >= 0)
		printf(",\"insn\":%ld", r->insn);
	else
		fputs(",\"insn\":null", stdout);
	fputs(",\"kind\":", stdout);
	json_str(r->kind);
	fputs(",\"spec\":", stdout);
	json_str(r->spec);
	fputs(",\"result\":", stdout);
	json_str(results[r->result]);
	if (r->result == RES_PATCHED) {
		fputs(",\"old\":", stdout);
		json_str(r->old_val);
		fputs(",\"new\":", stdout);
		json_str(r->new_val);
		fputs(",\"insnClass\":", stdout);
		json_str(r->insn_class);
		fputs(",\"operand\":", stdout);
		json_str(r->operand);
		if (r->has_mem_sz) {
			fputs(",\"memSize\":{\"old\":", stdout);
			json_str(r->mem_old);
			fputs(",\"new\":", stdout);
			json_str(r->mem_new);
			putchar('}');
		}
	}
	if (r->message && r->result != RES_PATCHED) {
		fputs(",\"message\":", stdout);
		json_str(r->message);
	}
	if (r->result == RES_ERROR) {
		fputs(",\"errorCode\":", stdout);
		json_str(r->error_code);
	}
	if (r->spec || r->cand_cnt) {
		fputs(",\"candidates\":[", stdout);
		for (i = 0; i < r->cand_cnt; i++) {
			printf("%s{\"index\":%d,\"matching\":%s,\"spec\":", i ? "," : "",
			       r->cands[i].index, r->cands[i].matching ? "true" : "false");
			json_str(r->cands[i].spec);
			putchar('}');
		}
		putchar(']');
	}
	if (r->warn_cnt) {
		fputs(",\"warnings\":[", stdout);
		for (i = 0; i < r->warn_cnt; i++) {
			if (i)
				putchar(',');
			json_str(r->warnings[i]);
		}
		putchar(']');
	}
	fputs("}\n", stdout);
}

/* ---------- main ---------- */

static char *read_config(const char *path)
{
	gzFile f = gzopen(path, "rb"); /* reads plain files as they are */
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int n;

	if (!f)
		return NULL;
	for (;;) {
		if (cap - len < 65536) {
			cap = cap ? cap * 2 : 262144;
			buf = xrealloc(buf, cap + 1);
		}
		n = gzread(f, buf + len, (unsigned)(cap - len));
		if (n < 0) {
			gzclose(f);
			free(buf);
			errno = EIO;
			return NULL;
		}
		if (n == 0)
			break;
		len += n;
	}
	gzclose(f);
	buf[len] = '\0';
	return buf;
}

static void print_insns(struct bpf_object *obj)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, obj) {
		const struct bpf_insn *insns = bpf_program__insns(prog);
		size_t cnt = bpf_program__insn_cnt(prog), i;
		const unsigned char *b = (const unsigned char *)insns;

		if (!bpf_program__autoload(prog))
			continue;
		fputs("{\"program\":", stdout);
		json_str(bpf_program__name(prog));
		fputs(",\"section\":", stdout);
		json_str(bpf_program__section_name(prog));
		fputs(",\"insns\":\"", stdout);
		for (i = 0; i < cnt * sizeof(*insns); i++)
			printf("%02x", b[i]);
		fputs("\"}\n", stdout);
	}
}

static void print_done(int prepare, const char *stage, const char *error)
{
	size_t i;
	bool first = true;

	printf("{\"done\":true,\"prepare\":%d", prepare);
	if (prepare != 0) {
		fputs(",\"stage\":", stdout);
		json_str(stage);
		fputs(",\"error\":", stdout);
		json_str(error);
	}
	fputs(",\"warnings\":[", stdout);
	for (i = 0; i < log_cnt; i++) {
		if (log_lines[i].level != LIBBPF_WARN)
			continue;
		if (!first)
			putchar(',');
		first = false;
		json_str(log_lines[i].text);
	}
	fputs("]}\n", stdout);
}

static int usage(void)
{
	fprintf(stderr, "usage: core-oracle OBJ.o TARGET_BTF [--kconfig FILE] [--insns] [--verbose]\n");
	return 2;
}

int main(int argc, char **argv)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts);
	const char *obj_path = NULL, *btf_path = NULL, *kconfig_path = NULL;
	char *kconfig = NULL, *core_failure = NULL;
	bool want_insns = false, core_failed;
	struct bpf_object *obj;
	int i, err;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--kconfig") == 0) {
			if (++i >= argc)
				return usage();
			kconfig_path = argv[i];
		} else if (strcmp(argv[i], "--insns") == 0) {
			want_insns = true;
		} else if (strcmp(argv[i], "--verbose") == 0) {
			verbose = true;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			return usage();
		} else if (!obj_path) {
			obj_path = argv[i];
		} else if (!btf_path) {
			btf_path = argv[i];
		} else {
			return usage();
		}
	}
	if (!obj_path || !btf_path)
		return usage();

	if (kconfig_path) {
		kconfig = read_config(kconfig_path);
		if (!kconfig) {
			fprintf(stderr, "core-oracle: %s: %s\n", kconfig_path, strerror(errno));
			return 1;
		}
		opts.kconfig = kconfig;
	}
	opts.btf_custom_path = btf_path;

	libbpf_set_print(print_cb);

	obj = bpf_object__open_file(obj_path, &opts);
	if (!obj) {
		err = -errno;
		flush_partial();
		print_done(err, "open", log_cnt ? log_lines[log_cnt - 1].text : strerror(-err));
		return 0;
	}

	err = bpf_object__prepare(obj);
	flush_partial();
	core_failed = parse_log(&core_failure);

	for (size_t r = 0; r < relo_cnt; r++)
		print_relo(&relos[r]);

	if (err == 0) {
		if (want_insns)
			print_insns(obj);
		print_done(0, NULL, NULL);
	} else if (core_failed) {
		const char *msg = core_failure;

		if (relo_cnt && relos[relo_cnt - 1].result == RES_ERROR)
			msg = relos[relo_cnt - 1].message;
		print_done(err, "core", msg);
	} else {
		/* the first WARN line libbpf printed: why prepare stopped (externs, maps, BTF, ...) */
		const char *msg = strerror(-err);

		for (size_t k = 0; k < log_cnt; k++) {
			if (log_lines[k].level == LIBBPF_WARN) {
				msg = log_lines[k].text;
				break;
			}
		}
		print_done(err, "other", msg);
	}

	bpf_object__close(obj);
	free(kconfig);
	return 0;
}
