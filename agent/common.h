/*
 * What corematrix-agent and libbpf-loader share: the result framing (protocol.ts reads it), a small
 * JSON writer, and the PID 1 chores (mounts, output device, power off).
 */
#ifndef CMX_COMMON_H
#define CMX_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* ---- growable byte buffer ---- */
struct sbuf {
	char *p;
	size_t len, cap;
};

void sb_reserve(struct sbuf *b, size_t extra);
void sb_put(struct sbuf *b, const void *data, size_t n);
void sb_puts(struct sbuf *b, const char *s);
void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_vprintf(struct sbuf *b, const char *fmt, va_list ap);
void sb_free(struct sbuf *b);

/* JSON: a string value (quotes included); bytes that are not UTF-8 become U+FFFD. */
void json_str(struct sbuf *b, const char *s, size_t n);
/* ,"key":"value" (or "key":… when b ends with '{') */
void json_key(struct sbuf *b, const char *key);
void json_kv_str(struct sbuf *b, const char *key, const char *s, size_t n);
void json_kv_cstr(struct sbuf *b, const char *key, const char *s);
void json_kv_int(struct sbuf *b, const char *key, long long v);
void json_kv_bool(struct sbuf *b, const char *key, int v);

/*
 * A log for a result frame: at most `max` bytes of it, the first CMX_LOG_HEAD bytes and the tail
 * (where the verifier says what went wrong), with a marker line between them saying how much was
 * left out. Writes ,"log":"…" and, when cut, ,"logOmitted":N.
 */
#define CMX_LOG_HEAD 4096
void json_kv_log(struct sbuf *b, const char *log, size_t n, size_t max);
/* The same under another key (…Omitted after it). */
void json_kv_log_named(struct sbuf *b, const char *key, const char *log, size_t n, size_t max);

/* ---- CRC32 (IEEE 802.3, as zlib) and base64 ---- */
uint32_t cmx_crc32(uint32_t crc, const void *data, size_t n);
void base64_encode(struct sbuf *out, const uint8_t *data, size_t n);

/* ---- output ---- */
/* Opens the output: path if given, else fd 1 when it is open, else /dev/console, else /dev/ttyS0. */
int cmx_open_output(const char *path);
/* Writes all of it, retrying on EINTR/EAGAIN and partial writes. 0 or -errno. */
int write_all(int fd, const void *data, size_t n);
/*
 * Sends one message (a JSON object) as framed lines:
 *   @@CMX1 <seq> <part> <parts> <base64 of this part's bytes> <crc32 hex>\n
 * seq counts messages from 0, part runs 0..parts-1, crc32 is over the text between "@@CMX1 " and
 * the space before it. A part carries at most CMX_CHUNK bytes of the message.
 */
#define CMX_CHUNK 512
int cmx_send(const char *json, size_t n);

/* Set once a send failed: the host will see a missing message, and the run must say so. */
extern int cmx_send_failed;
/* Sends the JSON message in b, then empties b. */
void cmx_send_sbuf(struct sbuf *b);
/* Sends {"type":"error","object":…,"message":…}; object may be NULL. */
void cmx_send_error(const char *object, const char *message);
/*
 * Writes every message this many times (1 to 4; 1 by default), copy after copy. On a console
 * shared with kernel messages, a line a kernel message broke is then read from another copy; the
 * host ignores copies.
 */
void cmx_set_line_copies(unsigned copies);
/* Reads CMX_LOG_MAX and CMX_REPEAT from the environment into *log_max and the line copies. */
void cmx_read_env(size_t *log_max);
/* How many messages were sent so far (the next seq). */
unsigned cmx_sent(void);
/* Waits until the output device has transmitted everything (tcdrain on a tty, fsync otherwise). */
void cmx_flush_output(void);

/* ---- PID 1 ---- */
/* Mounts /proc, /sys, /dev (devtmpfs), /sys/kernel/debug, /sys/fs/bpf where missing; errors ignored. */
void cmx_init_system(void);
/* Flushes output, syncs and powers the machine off (never returns). */
void cmx_power_off(void) __attribute__((noreturn));
/* Raises RLIMIT_MEMLOCK to infinity (kernels before 5.11 charge BPF memory to it). */
void cmx_bump_memlock(void);

uint64_t cmx_now_ns(void);

#endif
