/*
 * corematrix-agent: runs as PID 1 of the initramfs corematrix boots each kernel with, reads the
 * load plan the host prepared (harness/vm/plan-encoding.ts; layout in agent/README.md) and loads
 * every program of every object into the running kernel on its own, through the bpf() syscall:
 * BTF_LOAD, MAP_CREATE (+ initial values, freeze, slots), PROG_LOAD. Each program's verdict goes
 * back to the host as a framed message on the console (common.c, harness/vm/protocol.ts); a "done"
 * message ends the run, then the machine powers off.
 *
 *   corematrix-agent [--plan PATH] [--out PATH] [--no-init]
 *
 * As PID 1 it mounts /proc, /sys, /dev, debugfs and bpffs and powers off at the end; otherwise
 * (or with --no-init) it does neither, so it runs as an ordinary process on a host. The plan
 * defaults to /plan.bin and the output to fd 1 (else /dev/console, else /dev/ttyS0); the kernel
 * hands unknown "name=value" command-line parameters to init as environment, so CMX_PLAN=… and
 * CMX_OUT=… on the kernel command line choose them too. CMX_LOG_MAX bounds the log bytes sent per
 * program (default 65536); CMX_REPEAT=N writes every message N times (for a console shared with
 * kernel messages, which may break a line).
 *
 * Exit status (not PID 1): 0 when the plan was read and the done message sent, 2 for an unusable
 * plan or bad arguments, 1 when the output failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common.h"

#define PLAN_MAGIC "CMXPLAN\0"
#define PLAN_VERSION 1

/* The verifier log buffer: libbpf's BPF_LOG_BUF_SIZE (UINT32_MAX >> 8, the most kernels before 5.2
 * accept), doubled on ENOSPC as libbpf does, up to LOG_BUF_MAX. */
#define LOG_BUF_START (UINT32_MAX >> 8)
#define LOG_BUF_MAX (64u << 20)
#define STATS_BUF_SIZE (64u << 10)
/* libbpf's PROG_LOAD_ATTEMPTS: the verifier answers EAGAIN when a signal interrupted it. */
#define PROG_LOAD_ATTEMPTS 5

/* ---- the plan ---- */

struct blob {
	const uint8_t *p;
	uint32_t len;
};

struct slot {
	uint32_t key, kind, index;
};

enum { SLOT_MAP = 1, SLOT_PROGRAM = 2 };
enum { REF_FD = 1, REF_VALUE = 2 };
enum { MAP_NUMA_NODE = 1, MAP_EXTRA = 2, MAP_INNER = 4, MAP_INITIAL = 8, MAP_FREEZE = 16 };
enum { PROG_FUNC_INFO = 1, PROG_LINE_INFO = 2 };

struct pmap {
	char *name;
	uint32_t type, key_size, value_size, max_entries, flags, present, numa_node;
	uint64_t map_extra;
	uint32_t btf_key, btf_value, inner;
	struct blob initial;
	uint32_t nslots;
	struct slot *slots;
	/* outcome */
	int state; /* 0 not yet, 1 being created, 2 done */
	int fd;
	int err;		 /* errno when it could not be made */
	const char *failed_step; /* "create", "update", "freeze", "inner map", "slot" */
	int retried_without_btf;
};

struct ref {
	uint32_t insn, map, kind, offset;
};

struct pprog {
	char *name, *section, *license;
	uint32_t type, expected_attach_type, attach_btf_id, flags, kern_version;
	struct blob insns;
	uint32_t nrefs;
	struct ref *refs;
	uint32_t nused;
	uint32_t *used;
	uint32_t present, func_rec, line_rec;
	struct blob func_info, line_info;
};

struct pobj {
	char *name;
	uint32_t flags;
	struct blob btf;
	uint32_t nmaps, nprogs;
	struct pmap *maps;
	struct pprog *progs;
};

struct plan {
	char *kernel;
	uint32_t nobjs;
	struct pobj *objs;
};

struct cursor {
	const uint8_t *p;
	size_t off, len;
	const char *err;
};

static uint32_t rd_u32(struct cursor *c)
{
	uint32_t v = 0;
	if (c->err)
		return 0;
	if (c->len - c->off < 4) {
		c->err = "truncated";
		return 0;
	}
	memcpy(&v, c->p + c->off, 4); /* the plan is little-endian, as is every host we run on */
	c->off += 4;
	return v;
}

static uint64_t rd_u64(struct cursor *c)
{
	uint64_t lo = rd_u32(c), hi = rd_u32(c);
	return lo | hi << 32;
}

static struct blob rd_blob(struct cursor *c)
{
	struct blob b = {0};
	uint32_t n = rd_u32(c);
	if (c->err)
		return b;
	if (c->len - c->off < n) {
		c->err = "truncated blob";
		return b;
	}
	b.p = c->p + c->off;
	b.len = n;
	c->off += n;
	return b;
}

static char *rd_str(struct cursor *c)
{
	struct blob b = rd_blob(c);
	char *s = malloc(b.len + 1);
	if (!s) {
		c->err = "out of memory";
		return NULL;
	}
	if (b.len)
		memcpy(s, b.p, b.len);
	s[b.len] = '\0';
	return s;
}

/* A count of items taking at least `each` bytes: refused when they cannot fit in what is left. */
static uint32_t rd_count(struct cursor *c, size_t each)
{
	uint32_t n = rd_u32(c);
	if (!c->err && (uint64_t)n * each > c->len - c->off) {
		c->err = "count larger than the file";
		return 0;
	}
	return n;
}

static void *alloc_array(struct cursor *c, size_t n, size_t size)
{
	if (c->err)
		return NULL;
	void *p = calloc(n ? n : 1, size);
	if (!p)
		c->err = "out of memory";
	return p;
}

static const char *parse_plan(const uint8_t *data, size_t len, struct plan *plan)
{
	if (len < 24 || memcmp(data, PLAN_MAGIC, 8) != 0)
		return "not a corematrix load plan (bad magic)";
	uint32_t version, size, crc;
	memcpy(&version, data + 8, 4);
	memcpy(&size, data + 12, 4);
	if (version != PLAN_VERSION)
		return "unsupported plan version";
	if (size != len)
		return "plan size does not match the file (truncated?)";
	memcpy(&crc, data + len - 4, 4);
	if (crc != cmx_crc32(0, data, len - 4))
		return "plan CRC32 mismatch";
	struct cursor c = {data, 16, len - 4, NULL};
	plan->kernel = rd_str(&c);
	plan->nobjs = rd_count(&c, 20);
	plan->objs = alloc_array(&c, plan->nobjs, sizeof(struct pobj));
	for (uint32_t i = 0; i < plan->nobjs && !c.err; i++) {
		struct pobj *o = &plan->objs[i];
		o->name = rd_str(&c);
		o->flags = rd_u32(&c);
		o->btf = rd_blob(&c);
		o->nmaps = rd_count(&c, 60);
		o->maps = alloc_array(&c, o->nmaps, sizeof(struct pmap));
		for (uint32_t m = 0; m < o->nmaps && !c.err; m++) {
			struct pmap *mp = &o->maps[m];
			mp->name = rd_str(&c);
			mp->type = rd_u32(&c);
			mp->key_size = rd_u32(&c);
			mp->value_size = rd_u32(&c);
			mp->max_entries = rd_u32(&c);
			mp->flags = rd_u32(&c);
			mp->present = rd_u32(&c);
			mp->numa_node = rd_u32(&c);
			mp->map_extra = rd_u64(&c);
			mp->btf_key = rd_u32(&c);
			mp->btf_value = rd_u32(&c);
			mp->inner = rd_u32(&c);
			mp->initial = rd_blob(&c);
			mp->nslots = rd_count(&c, 12);
			mp->slots = alloc_array(&c, mp->nslots, sizeof(struct slot));
			for (uint32_t s = 0; s < mp->nslots && !c.err; s++) {
				mp->slots[s].key = rd_u32(&c);
				mp->slots[s].kind = rd_u32(&c);
				mp->slots[s].index = rd_u32(&c);
			}
			mp->fd = -1;
		}
		o->nprogs = rd_count(&c, 64);
		o->progs = alloc_array(&c, o->nprogs, sizeof(struct pprog));
		for (uint32_t p = 0; p < o->nprogs && !c.err; p++) {
			struct pprog *pp = &o->progs[p];
			pp->name = rd_str(&c);
			pp->section = rd_str(&c);
			pp->type = rd_u32(&c);
			pp->expected_attach_type = rd_u32(&c);
			pp->attach_btf_id = rd_u32(&c);
			pp->flags = rd_u32(&c);
			pp->kern_version = rd_u32(&c);
			pp->license = rd_str(&c);
			pp->insns = rd_blob(&c);
			pp->nrefs = rd_count(&c, 16);
			pp->refs = alloc_array(&c, pp->nrefs, sizeof(struct ref));
			for (uint32_t r = 0; r < pp->nrefs && !c.err; r++) {
				pp->refs[r].insn = rd_u32(&c);
				pp->refs[r].map = rd_u32(&c);
				pp->refs[r].kind = rd_u32(&c);
				pp->refs[r].offset = rd_u32(&c);
			}
			pp->nused = rd_count(&c, 4);
			pp->used = alloc_array(&c, pp->nused, sizeof(uint32_t));
			for (uint32_t u = 0; u < pp->nused && !c.err; u++)
				pp->used[u] = rd_u32(&c);
			pp->present = rd_u32(&c);
			pp->func_rec = rd_u32(&c);
			pp->func_info = rd_blob(&c);
			pp->line_rec = rd_u32(&c);
			pp->line_info = rd_blob(&c);
		}
	}
	if (c.err)
		return c.err;
	if (c.off != c.len)
		return "trailing bytes after the last object";
	/* indexes, once, so that loading never has to doubt them */
	for (uint32_t i = 0; i < plan->nobjs; i++) {
		struct pobj *o = &plan->objs[i];
		for (uint32_t m = 0; m < o->nmaps; m++) {
			struct pmap *mp = &o->maps[m];
			if ((mp->present & MAP_INNER) && mp->inner >= o->nmaps)
				return "inner map index out of range";
			for (uint32_t s = 0; s < mp->nslots; s++) {
				struct slot *sl = &mp->slots[s];
				if (sl->kind == SLOT_MAP ? sl->index >= o->nmaps
				    : sl->kind == SLOT_PROGRAM ? sl->index >= o->nprogs : 1)
					return "map slot out of range";
			}
		}
		for (uint32_t p = 0; p < o->nprogs; p++) {
			struct pprog *pp = &o->progs[p];
			if (pp->insns.len % 8)
				return "program instructions not a multiple of 8 bytes";
			for (uint32_t r = 0; r < pp->nrefs; r++) {
				struct ref *rf = &pp->refs[r];
				if (rf->map >= o->nmaps || (uint64_t)rf->insn + 1 >= pp->insns.len / 8 ||
				    (rf->kind != REF_FD && rf->kind != REF_VALUE))
					return "map reference out of range";
			}
			for (uint32_t u = 0; u < pp->nused; u++)
				if (pp->used[u] >= o->nmaps)
					return "used map index out of range";
			if (((pp->present & PROG_FUNC_INFO) && (!pp->func_rec || pp->func_info.len % pp->func_rec)) ||
			    ((pp->present & PROG_LINE_INFO) && (!pp->line_rec || pp->line_info.len % pp->line_rec)))
				return "func/line info not a whole number of records";
		}
	}
	return NULL;
}

/* ---- bpf() ---- */

static int sys_bpf(int cmd, union bpf_attr *attr)
{
	int ret;
	do {
		ret = (int)syscall(__NR_bpf, cmd, attr, sizeof(*attr));
	} while (ret < 0 && errno == EINTR);
	return ret;
}

static int sys_bpf_prog_load(union bpf_attr *attr)
{
	int fd, attempts = PROG_LOAD_ATTEMPTS;
	do {
		fd = sys_bpf(BPF_PROG_LOAD, attr);
	} while (fd < 0 && errno == EAGAIN && --attempts > 0);
	return fd;
}

static struct {
	int prog_name;	/* kernel takes prog_name/map_name (4.15+) */
	int log_stats;	/* log_level 4, BPF_LOG_STATS (5.2+) */
} features;

static char *log_buf;
static size_t log_buf_size;

static int ensure_log_buf(size_t size)
{
	if (log_buf_size >= size)
		return 0;
	char *p = realloc(log_buf, size);
	if (!p)
		return -ENOMEM;
	log_buf = p;
	log_buf_size = size;
	return 0;
}

static const struct bpf_insn probe_insns[] = {
	{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
	{.code = BPF_JMP | BPF_EXIT},
};

static int probe_prog(const char *name, uint32_t log_level)
{
	char buf[1024];
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
	attr.insns = (uintptr_t)probe_insns;
	attr.insn_cnt = 2;
	attr.license = (uintptr_t)"GPL";
	if (name)
		strncpy(attr.prog_name, name, sizeof(attr.prog_name) - 1);
	if (log_level) {
		attr.log_level = log_level;
		attr.log_buf = (uintptr_t)buf;
		attr.log_size = sizeof(buf);
	}
	int fd = sys_bpf_prog_load(&attr);
	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

static void probe_features(void)
{
	features.prog_name = probe_prog("cmx_probe", 0);
	features.log_stats = probe_prog(NULL, 4);
}

/* ---- messages ---- */

static size_t log_max = 65536;


/* ---- loading ---- */

struct btf_outcome {
	int fd;
	int err;
	struct sbuf log;
};

static void load_btf(const struct pobj *o, struct btf_outcome *out)
{
	union bpf_attr attr;
	out->fd = -1;
	out->err = 0;
	memset(&attr, 0, sizeof(attr));
	attr.btf = (uintptr_t)o->btf.p;
	attr.btf_size = o->btf.len;
	int fd = sys_bpf(BPF_BTF_LOAD, &attr);
	if (fd >= 0) {
		out->fd = fd;
		return;
	}
	out->err = errno;
	/* as libbpf: again with a log to say why, growing the buffer while the kernel says ENOSPC */
	size_t size = LOG_BUF_START;
	for (;;) {
		if (ensure_log_buf(size) < 0)
			break;
		memset(&attr, 0, sizeof(attr));
		attr.btf = (uintptr_t)o->btf.p;
		attr.btf_size = o->btf.len;
		attr.btf_log_buf = (uintptr_t)log_buf;
		attr.btf_log_size = (uint32_t)size;
		attr.btf_log_level = 1;
		log_buf[0] = '\0';
		fd = sys_bpf(BPF_BTF_LOAD, &attr);
		if (fd >= 0) { /* it worked this time: take it */
			out->fd = fd;
			out->err = 0;
			return;
		}
		if (errno == ENOSPC && size * 2 <= LOG_BUF_MAX) {
			size *= 2;
			continue;
		}
		if (errno != ENOSPC)
			out->err = errno;
		break;
	}
	if (log_buf)
		sb_put(&out->log, log_buf, strnlen(log_buf, log_buf_size));
}

static int update_elem(int map_fd, const void *key, const void *value)
{
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.map_fd = (uint32_t)map_fd;
	attr.key = (uintptr_t)key;
	attr.value = (uintptr_t)value;
	attr.flags = BPF_ANY;
	return sys_bpf(BPF_MAP_UPDATE_ELEM, &attr);
}

static void map_fail(struct pmap *m, const char *step, int err)
{
	m->err = err;
	m->failed_step = step;
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
}

static void create_map(struct pobj *o, uint32_t index, int btf_fd)
{
	struct pmap *m = &o->maps[index];
	if (m->state == 2)
		return;
	if (m->state == 1) { /* an inner-map cycle */
		map_fail(m, "inner map", ELOOP);
		m->state = 2;
		return;
	}
	m->state = 1;
	int inner_fd = 0;
	if (m->present & MAP_INNER) {
		create_map(o, m->inner, btf_fd);
		struct pmap *inner = &o->maps[m->inner];
		if (inner->fd < 0) {
			map_fail(m, "inner map", inner->err ? inner->err : EINVAL);
			m->state = 2;
			return;
		}
		inner_fd = inner->fd;
	}
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.map_type = m->type;
	attr.key_size = m->key_size;
	attr.value_size = m->value_size;
	attr.max_entries = m->max_entries;
	attr.map_flags = m->flags;
	attr.inner_map_fd = (uint32_t)inner_fd;
	if (m->present & MAP_NUMA_NODE)
		attr.numa_node = m->numa_node;
	if (m->present & MAP_EXTRA)
		attr.map_extra = m->map_extra;
	if (features.prog_name)
		strncpy(attr.map_name, m->name, sizeof(attr.map_name) - 1);
	int with_btf = btf_fd >= 0 && (m->btf_key || m->btf_value);
	if (with_btf) {
		attr.btf_fd = (uint32_t)btf_fd;
		attr.btf_key_type_id = m->btf_key;
		attr.btf_value_type_id = m->btf_value;
	}
	int fd = sys_bpf(BPF_MAP_CREATE, &attr);
	if (fd < 0 && with_btf) {
		/* libbpf: "Retrying without BTF." */
		attr.btf_fd = 0;
		attr.btf_key_type_id = 0;
		attr.btf_value_type_id = 0;
		m->retried_without_btf = 1;
		fd = sys_bpf(BPF_MAP_CREATE, &attr);
	}
	m->state = 2;
	if (fd < 0) {
		map_fail(m, "create", errno);
		return;
	}
	m->fd = fd;
	if (m->present & MAP_INITIAL) {
		uint8_t *value = calloc(1, m->value_size ? m->value_size : 1);
		if (!value) {
			map_fail(m, "update", ENOMEM);
			return;
		}
		memcpy(value, m->initial.p, m->initial.len < m->value_size ? m->initial.len : m->value_size);
		uint32_t zero = 0;
		int r = update_elem(m->fd, &zero, value);
		free(value);
		if (r < 0) {
			map_fail(m, "update", errno);
			return;
		}
	}
	if (m->present & MAP_FREEZE) {
		memset(&attr, 0, sizeof(attr));
		attr.map_fd = (uint32_t)m->fd;
		if (sys_bpf(BPF_MAP_FREEZE, &attr) < 0) {
			map_fail(m, "freeze", errno);
			return;
		}
	}
}

/* Fills map-in-map slots once every map exists (libbpf's init_map_in_map_slots). */
static void fill_map_slots(struct pobj *o)
{
	for (uint32_t i = 0; i < o->nmaps; i++) {
		struct pmap *m = &o->maps[i];
		for (uint32_t s = 0; s < m->nslots && m->fd >= 0; s++) {
			struct slot *sl = &m->slots[s];
			if (sl->kind != SLOT_MAP)
				continue;
			struct pmap *target = &o->maps[sl->index];
			if (target->fd < 0) {
				map_fail(m, "slot", target->err ? target->err : EINVAL);
				break;
			}
			uint32_t value = (uint32_t)target->fd;
			if (update_elem(m->fd, &sl->key, &value) < 0)
				map_fail(m, "slot", errno);
		}
	}
}

static void send_object_report(const struct pobj *o, const struct btf_outcome *btf)
{
	struct sbuf b = {0};
	sb_puts(&b, "{");
	json_kv_cstr(&b, "type", "object");
	json_kv_cstr(&b, "object", o->name);
	if (o->flags & 1) {
		json_key(&b, "btf");
		sb_puts(&b, "{");
		json_kv_bool(&b, "loaded", btf->fd >= 0);
		if (btf->fd < 0) {
			json_kv_int(&b, "errno", btf->err);
			json_kv_log(&b, btf->log.p ? btf->log.p : "", btf->log.len, log_max);
		}
		sb_puts(&b, "}");
	}
	json_key(&b, "maps");
	sb_puts(&b, "[");
	for (uint32_t i = 0; i < o->nmaps; i++) {
		const struct pmap *m = &o->maps[i];
		if (i)
			sb_puts(&b, ",");
		sb_puts(&b, "{");
		json_kv_cstr(&b, "name", m->name);
		json_kv_bool(&b, "created", m->fd >= 0);
		if (m->fd < 0) {
			json_kv_int(&b, "errno", m->err);
			json_kv_cstr(&b, "step", m->failed_step ? m->failed_step : "create");
		}
		if (m->retried_without_btf)
			json_kv_bool(&b, "retriedWithoutBtf", 1);
		sb_puts(&b, "}");
	}
	sb_puts(&b, "]}");
	cmx_send_sbuf(&b);
	sb_free(&b);
}

static void begin_result(struct sbuf *b, const struct pobj *o, const struct pprog *p, int loaded)
{
	sb_puts(b, "{");
	json_kv_cstr(b, "type", "result");
	json_kv_cstr(b, "object", o->name);
	json_kv_cstr(b, "program", p->name);
	json_kv_cstr(b, "section", p->section);
	json_kv_cstr(b, "verdict", loaded ? "loaded" : "rejected");
}

/* The first map the program needs that could not be made, or NULL. */
static const struct pmap *failed_map_of(const struct pobj *o, const struct pprog *p)
{
	for (uint32_t u = 0; u < p->nused; u++)
		if (o->maps[p->used[u]].fd < 0)
			return &o->maps[p->used[u]];
	for (uint32_t r = 0; r < p->nrefs; r++)
		if (o->maps[p->refs[r].map].fd < 0)
			return &o->maps[p->refs[r].map];
	return NULL;
}

static void load_program(struct pobj *o, uint32_t index, int btf_fd)
{
	struct pprog *p = &o->progs[index];
	struct sbuf b = {0};
	const struct pmap *bad = failed_map_of(o, p);
	if (bad) {
		begin_result(&b, o, p, 0);
		json_kv_cstr(&b, "stage", "map");
		json_kv_int(&b, "errno", bad->err);
		struct sbuf msg = {0};
		sb_printf(&msg, "map '%s': %s failed: %s (errno %d)\n", bad->name,
			  bad->failed_step ? bad->failed_step : "create", strerror(bad->err), bad->err);
		json_kv_log(&b, msg.p, msg.len, log_max);
		sb_free(&msg);
		sb_puts(&b, "}");
		cmx_send_sbuf(&b);
		sb_free(&b);
		return;
	}

	uint32_t insn_cnt = p->insns.len / 8;
	struct bpf_insn *insns = malloc(p->insns.len ? p->insns.len : 8);
	if (!insns) {
		cmx_send_error(o->name, "out of memory copying instructions");
		return;
	}
	memcpy(insns, p->insns.p, p->insns.len);
	for (uint32_t r = 0; r < p->nrefs; r++) {
		const struct ref *rf = &p->refs[r];
		struct bpf_insn *insn = &insns[rf->insn];
		insn->src_reg = rf->kind == REF_FD ? BPF_PSEUDO_MAP_FD : BPF_PSEUDO_MAP_VALUE;
		insn->imm = o->maps[rf->map].fd;
		if (rf->kind == REF_VALUE)
			insn[1].imm = (int32_t)rf->offset;
	}

	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.prog_type = p->type;
	attr.expected_attach_type = p->expected_attach_type;
	attr.attach_btf_id = p->attach_btf_id;
	attr.prog_flags = p->flags;
	attr.kern_version = p->kern_version;
	attr.license = (uintptr_t)p->license;
	attr.insns = (uintptr_t)insns;
	attr.insn_cnt = insn_cnt;
	if (features.prog_name)
		strncpy(attr.prog_name, p->name, sizeof(attr.prog_name) - 1);
	/* func/line info only with the object's BTF in the kernel (libbpf drops them otherwise) */
	if (btf_fd >= 0 && (p->present & (PROG_FUNC_INFO | PROG_LINE_INFO))) {
		attr.prog_btf_fd = (uint32_t)btf_fd;
		if (p->present & PROG_FUNC_INFO) {
			attr.func_info_rec_size = p->func_rec;
			attr.func_info = (uintptr_t)p->func_info.p;
			attr.func_info_cnt = p->func_info.len / p->func_rec;
		}
		if (p->present & PROG_LINE_INFO) {
			attr.line_info_rec_size = p->line_rec;
			attr.line_info = (uintptr_t)p->line_info.p;
			attr.line_info_cnt = p->line_info.len / p->line_rec;
		}
	}

	/* First attempt: statistics only (or no log where the kernel predates them). */
	static char stats[STATS_BUF_SIZE];
	stats[0] = '\0';
	if (features.log_stats) {
		attr.log_level = 4;
		attr.log_buf = (uintptr_t)stats;
		attr.log_size = sizeof(stats);
	}
	uint64_t t0 = cmx_now_ns();
	int fd = sys_bpf_prog_load(&attr);
	uint64_t t1 = cmx_now_ns();
	int first_err = fd < 0 ? errno : 0;
	int err = first_err;
	const char *log = stats;
	size_t log_len = fd >= 0 ? strnlen(stats, sizeof(stats)) : 0;
	int kernel_log_full = 0;
	if (fd < 0) {
		/* As libbpf: again with log_level 1 and a big buffer to learn why; ENOSPC grows it. */
		size_t size = LOG_BUF_START;
		for (;;) {
			if (ensure_log_buf(size) < 0) {
				log = "corematrix agent: no memory for the verifier log\n";
				log_len = strlen(log);
				break;
			}
			attr.log_level = 1;
			attr.log_buf = (uintptr_t)log_buf;
			attr.log_size = (uint32_t)size;
			log_buf[0] = '\0';
			fd = sys_bpf_prog_load(&attr);
			log = log_buf;
			log_len = strnlen(log_buf, size);
			if (fd >= 0) { /* libbpf reports the retry's outcome */
				err = 0;
				break;
			}
			err = errno;
			if (err == ENOSPC && size * 2 <= LOG_BUF_MAX) {
				size *= 2;
				continue;
			}
			if (err == ENOSPC && first_err != ENOSPC) {
				/* our cap, not the verdict: keep the first attempt's errno */
				err = first_err;
				kernel_log_full = 1;
			}
			break;
		}
	}
	free(insns);

	begin_result(&b, o, p, fd >= 0);
	if (fd < 0) {
		json_kv_cstr(&b, "stage", "prog");
		json_kv_int(&b, "errno", err);
	}
	json_kv_log(&b, log, log_len, log_max);
	if (kernel_log_full)
		json_kv_bool(&b, "kernelLogFull", 1);
	json_kv_int(&b, "loadNs", (long long)(t1 - t0));
	sb_puts(&b, "}");
	cmx_send_sbuf(&b);
	sb_free(&b);

	if (fd >= 0) {
		/* prog-array slots naming this program (libbpf's init_prog_array_slots) */
		for (uint32_t i = 0; i < o->nmaps; i++) {
			struct pmap *m = &o->maps[i];
			for (uint32_t s = 0; s < m->nslots && m->fd >= 0; s++) {
				if (m->slots[s].kind != SLOT_PROGRAM || m->slots[s].index != index)
					continue;
				uint32_t value = (uint32_t)fd;
				if (update_elem(m->fd, &m->slots[s].key, &value) < 0) {
					char msg[256];
					snprintf(msg, sizeof(msg), "map '%s' slot %u: program '%s' not stored: %s",
						 m->name, m->slots[s].key, p->name, strerror(errno));
					cmx_send_error(o->name, msg);
				}
			}
		}
		close(fd);
	}
}

static void load_object(struct pobj *o)
{
	struct btf_outcome btf = {.fd = -1};
	if (o->flags & 1) /* on failure, as libbpf: go on without the object's BTF (it is optional) */
		load_btf(o, &btf);
	for (uint32_t i = 0; i < o->nmaps; i++)
		create_map(o, i, btf.fd);
	fill_map_slots(o);
	send_object_report(o, &btf);
	for (uint32_t i = 0; i < o->nprogs; i++)
		load_program(o, i, btf.fd);
	for (uint32_t i = 0; i < o->nmaps; i++)
		if (o->maps[i].fd >= 0)
			close(o->maps[i].fd);
	if (btf.fd >= 0)
		close(btf.fd);
	sb_free(&btf.log);
}

static int read_file(const char *path, uint8_t **data, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct sbuf b = {0};
	char chunk[65536];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			close(fd);
			sb_free(&b);
			return -e;
		}
		if (n == 0)
			break;
		sb_put(&b, chunk, (size_t)n);
	}
	close(fd);
	*data = (uint8_t *)b.p;
	*len = b.len;
	return 0;
}

static void send_done(int ok)
{
	struct sbuf b = {0};
	sb_puts(&b, "{");
	json_kv_cstr(&b, "type", "done");
	/* the messages before this one, so the host can tell none was lost */
	json_kv_int(&b, "messages", cmx_sent());
	json_kv_bool(&b, "ok", ok);
	sb_puts(&b, "}");
	cmx_send_sbuf(&b);
	sb_free(&b);
}

static int finish(int pid1, int status)
{
	if (pid1)
		cmx_power_off();
	cmx_flush_output();
	return cmx_send_failed ? 1 : status;
}

int main(int argc, char **argv)
{
	int pid1 = getpid() == 1, no_init = 0;
	const char *plan_path = getenv("CMX_PLAN"), *out_path = getenv("CMX_OUT");
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--plan") && i + 1 < argc)
			plan_path = argv[++i];
		else if (!strcmp(argv[i], "--out") && i + 1 < argc)
			out_path = argv[++i];
		else if (!strcmp(argv[i], "--no-init"))
			no_init = 1;
		else if (!pid1) { /* as PID 1, the kernel may pass its own words: ignore them */
			fprintf(stderr, "usage: corematrix-agent [--plan PATH] [--out PATH] [--no-init]\n");
			return 2;
		}
	}
	if (no_init)
		pid1 = 0;
	if (!plan_path || !*plan_path)
		plan_path = "/plan.bin";
	cmx_read_env(&log_max);

	if (pid1)
		cmx_init_system();
	if (cmx_open_output(out_path) < 0) {
		fprintf(stderr, "corematrix-agent: cannot open the output %s: %s\n", out_path ? out_path : "",
			strerror(errno));
		if (pid1)
			cmx_power_off();
		return 1;
	}
	cmx_bump_memlock();

	uint8_t *data = NULL;
	size_t len = 0;
	struct plan plan = {0};
	int r = read_file(plan_path, &data, &len);
	const char *bad = NULL;
	char msg[512];
	if (r < 0) {
		snprintf(msg, sizeof(msg), "cannot read the plan %s: %s", plan_path, strerror(-r));
		bad = msg;
	} else if ((bad = parse_plan(data, len, &plan)) != NULL) {
		snprintf(msg, sizeof(msg), "unusable plan %s: %s", plan_path, bad);
		bad = msg;
	}

	probe_features();
	struct utsname uts;
	uname(&uts);
	uint32_t nprogs = 0;
	for (uint32_t i = 0; !bad && i < plan.nobjs; i++)
		nprogs += plan.objs[i].nprogs;
	struct sbuf b = {0};
	sb_puts(&b, "{");
	json_kv_cstr(&b, "type", "hello");
	json_kv_cstr(&b, "agent", "corematrix-agent");
	json_kv_int(&b, "protocol", 1);
	json_kv_cstr(&b, "kernelRelease", uts.release);
	if (!bad) {
		json_kv_cstr(&b, "plan", plan.kernel);
		json_kv_int(&b, "objects", plan.nobjs);
		json_kv_int(&b, "programs", nprogs);
	}
	json_key(&b, "features");
	sb_puts(&b, "{");
	json_kv_bool(&b, "progName", features.prog_name);
	json_kv_bool(&b, "logStats", features.log_stats);
	sb_puts(&b, "}}");
	cmx_send_sbuf(&b);
	sb_free(&b);

	if (bad) {
		cmx_send_error(NULL, bad);
		send_done(0);
		return finish(pid1, 2);
	}
	for (uint32_t i = 0; i < plan.nobjs; i++)
		load_object(&plan.objs[i]);
	send_done(1);
	return finish(pid1, 0);
}
