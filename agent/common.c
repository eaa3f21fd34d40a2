#define _GNU_SOURCE
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* ---- buffer ---- */

void sb_reserve(struct sbuf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra + 1)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		static const char msg[] = "corematrix agent: out of memory\n";
		(void)!write(2, msg, sizeof(msg) - 1);
		_exit(70);
	}
	b->p = p;
	b->cap = cap;
}

void sb_put(struct sbuf *b, const void *data, size_t n)
{
	sb_reserve(b, n);
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void sb_puts(struct sbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

void sb_vprintf(struct sbuf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	sb_reserve(b, (size_t)n);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	sb_vprintf(b, fmt, ap);
	va_end(ap);
}

void sb_free(struct sbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* ---- JSON ---- */

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	unsigned min;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, min = 0x10000;
	else
		return 0;
	if (len > n)
		return 0;
	unsigned cp = c & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

void json_str(struct sbuf *b, const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	sb_reserve(b, n + 2);
	sb_put(b, "\"", 1);
	size_t i = 0;
	while (i < n) {
		unsigned char c = s[i];
		if (c == '"' || c == '\\') {
			char esc[2] = {'\\', (char)c};
			sb_put(b, esc, 2);
			i++;
		} else if (c == '\n') {
			sb_put(b, "\\n", 2);
			i++;
		} else if (c == '\t') {
			sb_put(b, "\\t", 2);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			sb_printf(b, "\\u%04x", c);
			i++;
		} else if (c < 0x80) {
			/* a run of plain ASCII at once */
			size_t j = i;
			while (j < n && s[j] >= 0x20 && s[j] < 0x7f && s[j] != '"' && s[j] != '\\')
				j++;
			sb_put(b, s + i, j - i);
			i = j;
		} else {
			size_t len = utf8_seq(s + i, n - i);
			if (len) {
				sb_put(b, s + i, len);
				i += len;
			} else {
				sb_put(b, "\\ufffd", 6);
				i++;
			}
		}
	}
	sb_put(b, "\"", 1);
}

void json_key(struct sbuf *b, const char *key)
{
	if (b->len && b->p[b->len - 1] != '{' && b->p[b->len - 1] != '[')
		sb_put(b, ",", 1);
	json_str(b, key, strlen(key));
	sb_put(b, ":", 1);
}

void json_kv_str(struct sbuf *b, const char *key, const char *s, size_t n)
{
	json_key(b, key);
	json_str(b, s, n);
}

void json_kv_cstr(struct sbuf *b, const char *key, const char *s)
{
	json_kv_str(b, key, s, strlen(s));
}

void json_kv_int(struct sbuf *b, const char *key, long long v)
{
	json_key(b, key);
	sb_printf(b, "%lld", v);
}

void json_kv_bool(struct sbuf *b, const char *key, int v)
{
	json_key(b, key);
	sb_puts(b, v ? "true" : "false");
}

void json_kv_log(struct sbuf *b, const char *log, size_t n, size_t max)
{
	json_kv_log_named(b, "log", log, n, max);
}

void json_kv_log_named(struct sbuf *b, const char *key, const char *log, size_t n, size_t max)
{
	if (n <= max || max < 2 * CMX_LOG_HEAD) {
		json_kv_str(b, key, log, n);
		return;
	}
	size_t head = CMX_LOG_HEAD, tail = max - head;
	/* cut at line ends where there is one nearby, so the kept lines are whole */
	for (size_t i = head; i > head / 2; i--) {
		if (log[i - 1] == '\n') {
			head = i;
			break;
		}
	}
	size_t tail_start = n - tail;
	for (size_t i = tail_start; i < n && i < tail_start + 512; i++) {
		if (log[i] == '\n') {
			tail_start = i + 1;
			break;
		}
	}
	size_t omitted = tail_start - head;
	struct sbuf t = {0};
	sb_put(&t, log, head);
	if (head && log[head - 1] != '\n')
		sb_puts(&t, "\n");
	sb_printf(&t, "[... %zu bytes of the log left out ...]\n", omitted);
	sb_put(&t, log + tail_start, n - tail_start);
	json_kv_str(b, key, t.p, t.len);
	char omitted_key[64];
	snprintf(omitted_key, sizeof(omitted_key), "%sOmitted", key);
	json_kv_int(b, omitted_key, (long long)omitted);
	sb_free(&t);
}

/* ---- CRC32, base64 ---- */

uint32_t cmx_crc32(uint32_t crc, const void *data, size_t n)
{
	static uint32_t table[256];
	static int ready;
	if (!ready) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;
			for (int k = 0; k < 8; k++)
				c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
		ready = 1;
	}
	const uint8_t *p = data;
	crc = ~crc;
	while (n--)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

void base64_encode(struct sbuf *out, const uint8_t *d, size_t n)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	sb_reserve(out, (n + 2) / 3 * 4);
	char *o = out->p + out->len;
	size_t i = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
		*o++ = abc[v >> 18];
		*o++ = abc[(v >> 12) & 63];
		*o++ = abc[(v >> 6) & 63];
		*o++ = abc[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)d[i] << 16;
		*o++ = abc[v >> 18];
		*o++ = abc[(v >> 12) & 63];
		*o++ = '=';
		*o++ = '=';
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8;
		*o++ = abc[v >> 18];
		*o++ = abc[(v >> 12) & 63];
		*o++ = abc[(v >> 6) & 63];
		*o++ = '=';
	}
	out->len = (size_t)(o - out->p);
	out->p[out->len] = '\0';
}

/* ---- output ---- */

static int out_fd = -1;
static unsigned next_seq;
static unsigned line_copies = 1;

void cmx_set_line_copies(unsigned copies)
{
	line_copies = copies < 1 ? 1 : copies > 4 ? 4 : copies;
}

int cmx_open_output(const char *path)
{
	if (path && *path) {
		out_fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
		return out_fd < 0 ? -errno : 0;
	}
	if (fcntl(1, F_GETFD) >= 0) {
		out_fd = 1;
		return 0;
	}
	out_fd = open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
	if (out_fd < 0)
		out_fd = open("/dev/ttyS0", O_WRONLY | O_NOCTTY | O_CLOEXEC);
	return out_fd < 0 ? -errno : 0;
}

int write_all(int fd, const void *data, size_t n)
{
	const char *p = data;
	int stalls = 0;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN && stalls++ < 10000) {
				usleep(1000);
				continue;
			}
			return -errno;
		}
		if (w == 0) {
			if (stalls++ >= 10000)
				return -EIO;
			usleep(1000);
			continue;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int cmx_send(const char *json, size_t n)
{
	unsigned seq = next_seq++;
	size_t parts = n ? (n + CMX_CHUNK - 1) / CMX_CHUNK : 1;
	struct sbuf lines = {0};
	for (size_t part = 0; part < parts; part++) {
		size_t off = part * CMX_CHUNK, len = n - off < CMX_CHUNK ? n - off : CMX_CHUNK;
		/* A line of its own even when something (a kernel message) left the cursor mid-line. */
		sb_puts(&lines, "\n@@CMX1 ");
		size_t body = lines.len;
		sb_printf(&lines, "%u %zu %zu ", seq, part, parts);
		base64_encode(&lines, (const uint8_t *)json + off, len);
		uint32_t crc = cmx_crc32(0, lines.p + body, lines.len - body);
		sb_printf(&lines, " %08x\n", crc);
	}
	/* Copies of the whole message one after the other: a burst of kernel messages that breaks a
	 * line of one copy is unlikely to last until the same line of the next. */
	int err = 0;
	for (unsigned copy = 0; copy < line_copies; copy++) {
		int e = write_all(out_fd, lines.p, lines.len);
		if (e && !err)
			err = e;
	}
	sb_free(&lines);
	return err;
}

void cmx_read_env(size_t *log_max)
{
	const char *lm = getenv("CMX_LOG_MAX");
	if (lm && atol(lm) >= 2 * CMX_LOG_HEAD)
		*log_max = (size_t)atol(lm);
	const char *repeat = getenv("CMX_REPEAT");
	if (repeat && atoi(repeat) > 0)
		cmx_set_line_copies((unsigned)atoi(repeat));
}

unsigned cmx_sent(void)
{
	return next_seq;
}

void cmx_flush_output(void)
{
	if (out_fd < 0)
		return;
	struct termios t;
	if (tcgetattr(out_fd, &t) == 0) {
		while (tcdrain(out_fd) < 0 && errno == EINTR)
			;
	} else {
		fsync(out_fd);
	}
}

/* ---- PID 1 ---- */

static void mount_if(const char *source, const char *target, const char *type)
{
	mkdir(target, 0755);
	if (mount(source, target, type, MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 && errno != EBUSY) {
		/* optional: kernels without debugfs or bpffs still run the agent */
	}
}

void cmx_init_system(void)
{
	mount_if("proc", "/proc", "proc");
	mount_if("sysfs", "/sys", "sysfs");
	mkdir("/dev", 0755);
	if (mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, NULL) < 0 && errno != EBUSY) {
		/* the initramfs may carry its own /dev/console */
	}
	mount_if("debugfs", "/sys/kernel/debug", "debugfs");
	mount_if("bpf", "/sys/fs/bpf", "bpf");
}

void cmx_power_off(void)
{
	cmx_flush_output();
	sync();
	reboot(RB_POWER_OFF);
	/* power off refused (no ACPI): a reboot ends a VM run with -no-reboot just as well */
	reboot(RB_AUTOBOOT);
	for (;;)
		pause();
}

void cmx_bump_memlock(void)
{
	struct rlimit r = {RLIM_INFINITY, RLIM_INFINITY};
	setrlimit(RLIMIT_MEMLOCK, &r);
}

uint64_t cmx_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int cmx_send_failed;

void cmx_send_sbuf(struct sbuf *b)
{
	if (cmx_send(b->p, b->len) < 0)
		cmx_send_failed = 1;
	b->len = 0;
}

void cmx_send_error(const char *object, const char *message)
{
	struct sbuf b = {0};
	sb_puts(&b, "{");
	json_kv_cstr(&b, "type", "error");
	if (object)
		json_kv_cstr(&b, "object", object);
	json_kv_cstr(&b, "message", message);
	sb_puts(&b, "}");
	cmx_send_sbuf(&b);
	sb_free(&b);
}
