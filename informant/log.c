/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.c — one line per event on stderr.
 *
 * Each line is built in a bounded stack buffer and handed to ONE write(2),
 * so lines from the supervisor and its child (separate processes sharing
 * stderr) never interleave.  A value too long for the line is cut and
 * marked; the closing of the line always fits because LINE_RESERVE bytes
 * are kept back for it.  Strings are escaped so a JSON line is always
 * valid JSON, whatever bytes the caller passes (invalid UTF-8 becomes
 * U+FFFD).  The only mutable state is the level, the format and whether
 * stderr is a journald stream.
 *
 * Under systemd, stderr is usually a stream to journald, which reads a
 * "<N>" at the start of a line as that line's syslog priority (sd-daemon(3))
 * and strips it.  JOURNAL_STREAM holds "DEVICE:INODE" of that stream; the
 * prefix is written only when it names our stderr, so a terminal, a file or
 * a pipe the variable was merely inherited by never sees it.
 */
#include "log.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096
/* Room kept for a cut marker, a closing quote, the "truncated" flag, "}\n". */
#define LINE_RESERVE 32
#define CUT_MARKER "..."

static enum log_level min_level = LOG_INFO;
static enum log_format out_format = LOG_FORMAT_JSON;
static int to_journal = -1; /* -1: not checked yet */

struct line {
	char buf[LINE_MAX_BYTES];
	size_t len;
	size_t limit; /* appends stop here; the reserve after it is for closing */
	bool full;    /* something did not fit: later fields are dropped */
};

static const char *const level_names[] = { "debug", "info", "warn", "error" };
static const char *const level_upper[] = { "DEBUG", "INFO", "WARN", "ERROR" };
/* syslog priorities: LOG_DEBUG 7, LOG_INFO 6, LOG_WARNING 4, LOG_ERR 3 */
static const char *const level_prefix[] = { "<7>", "<6>", "<4>", "<3>" };

/* True when JOURNAL_STREAM names the file stderr is (see the top). */
static bool stderr_is_journal(void)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	int n = 0;

	if (!v || sscanf(v, "%llu:%llu%n", &dev, &ino, &n) != 2 || v[n] != '\0')
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_setup(enum log_level level, enum log_format format)
{
	min_level = level;
	out_format = format;
	to_journal = stderr_is_journal();
}

const char *log_priority_prefix(enum log_level level)
{
	if (to_journal < 0)
		to_journal = stderr_is_journal();
	if (!to_journal || (unsigned)level > LOG_ERROR)
		return "";
	return level_prefix[level];
}

bool log_enabled(enum log_level level)
{
	return level >= min_level;
}

const char *log_level_name(enum log_level level)
{
	if ((unsigned)level > LOG_ERROR)
		return "unknown";
	return level_names[level];
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (unsigned i = 0; i <= LOG_ERROR; i++) {
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcasecmp(s, "warning") == 0) {
		*out = LOG_WARN;
		return 0;
	}
	return -EINVAL;
}

int log_format_parse(const char *s, enum log_format *out)
{
	if (strcasecmp(s, "json") == 0)
		*out = LOG_FORMAT_JSON;
	else if (strcasecmp(s, "text") == 0)
		*out = LOG_FORMAT_TEXT;
	else
		return -EINVAL;
	return 0;
}

const char *log_strerror(int r)
{
	/* strerrordesc_np returns a static string: no buffer, thread-safe. */
	const char *s = strerrordesc_np(r < 0 ? -r : r);

	return s ? s : "unknown error";
}

/* Appends raw bytes if they fit below the limit; otherwise marks the line full. */
static bool put(struct line *l, const char *s, size_t n)
{
	if (l->full || n > l->limit - l->len) {
		l->full = true;
		return false;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
	return true;
}

static bool puts_(struct line *l, const char *s)
{
	return put(l, s, strlen(s));
}

/* Appends into the reserve: only for the marker and the line's closing. */
static void put_closing(struct line *l, const char *s)
{
	size_t n = strlen(s);

	if (n > sizeof(l->buf) - l->len)
		n = sizeof(l->buf) - l->len;
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

/*
 * Length of the valid UTF-8 sequence at s (at most n bytes), or 0 if the
 * bytes there are not one: overlong forms, surrogates and code points
 * above U+10FFFF are rejected.
 */
static size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/*
 * Escapes one string.  json: JSON string escapes, invalid UTF-8 as U+FFFD.
 * text: C-like escapes (\n, \t, \", \\, \xNN for other control and invalid
 * bytes).  Cuts the value with a marker when the line runs out of room.
 */
static void put_escaped(struct line *l, const char *str, bool json)
{
	const unsigned char *s = (const unsigned char *)(str ? str : "(null)");
	size_t n = strlen((const char *)s);
	char esc[8];

	for (size_t i = 0; i < n;) {
		size_t seq = utf8_seq_len(s + i, n - i);
		const char *out = esc;
		size_t outlen;

		if (seq > 1) {
			out = (const char *)s + i;
			outlen = seq;
		} else if (seq == 0) {
			outlen = json ? (size_t)snprintf(esc, sizeof(esc), "\\ufffd")
				      : (size_t)snprintf(esc, sizeof(esc), "\\x%02x", s[i]);
			seq = 1;
		} else if (s[i] == '"' || s[i] == '\\') {
			esc[0] = '\\';
			esc[1] = (char)s[i];
			outlen = 2;
		} else if (s[i] == '\n' || s[i] == '\t' || s[i] == '\r') {
			esc[0] = '\\';
			esc[1] = s[i] == '\n' ? 'n' : s[i] == '\t' ? 't' : 'r';
			outlen = 2;
		} else if (s[i] < 0x20 || s[i] == 0x7f) {
			outlen = json ? (size_t)snprintf(esc, sizeof(esc), "\\u%04x", s[i])
				      : (size_t)snprintf(esc, sizeof(esc), "\\x%02x", s[i]);
		} else {
			out = (const char *)s + i;
			outlen = 1;
		}
		if (!put(l, out, outlen)) {
			put_closing(l, CUT_MARKER);
			return;
		}
		i += seq;
	}
}

/* False when not even the opening quote fitted (nothing was written). */
static bool put_json_string(struct line *l, const char *s)
{
	if (!puts_(l, "\""))
		return false;
	put_escaped(l, s, true);
	/* The closing quote may go into the reserve: a string is never left open. */
	put_closing(l, "\"");
	return true;
}

/* Text values are bare unless empty or holding spaces, quotes, '=' or escapes. */
static bool text_needs_quotes(const char *s)
{
	if (!s || !*s)
		return true;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p >= 0x7f)
			return true;
	}
	return false;
}

static bool put_text_string(struct line *l, const char *s)
{
	if (!text_needs_quotes(s)) {
		size_t before = l->len;

		put_escaped(l, s, false);
		return l->len > before;
	}
	if (!puts_(l, "\""))
		return false;
	put_escaped(l, s, false);
	put_closing(l, "\"");
	return true;
}

/* Shortest of %.15g / %.17g that reads back as the same double. */
static void format_double(char *out, size_t outlen, double d, bool json)
{
	if (!isfinite(d)) {
		snprintf(out, outlen, "%s",
			 json ? "null" : isnan(d) ? "NaN" : d > 0 ? "+Inf" : "-Inf");
		return;
	}
	snprintf(out, outlen, "%.15g", d);
	if (strtod(out, NULL) != d)
		snprintf(out, outlen, "%.17g", d);
}

/* False when the value did not fit (a cut string still counts as written). */
static bool put_value(struct line *l, const struct log_field *f, bool json)
{
	char num[40];

	switch (f->type) {
	case LF_T_STR:
		return json ? put_json_string(l, f->v.s) : put_text_string(l, f->v.s);
	case LF_T_U64:
		snprintf(num, sizeof(num), "%llu", (unsigned long long)f->v.u);
		break;
	case LF_T_I64:
		snprintf(num, sizeof(num), "%lld", (long long)f->v.i);
		break;
	case LF_T_DBL:
		format_double(num, sizeof(num), f->v.d, json);
		break;
	case LF_T_BOOL:
		snprintf(num, sizeof(num), "%s", f->v.b ? "true" : "false");
		break;
	default:
		snprintf(num, sizeof(num), "%s", json ? "null" : "?");
		break;
	}
	return puts_(l, num);
}

/* Adds one field; when its key does not fit, the field is dropped as a whole. */
static void put_field(struct line *l, const struct log_field *f, bool json)
{
	size_t mark = l->len;

	puts_(l, json ? "," : " ");
	if (json)
		put_json_string(l, f->key);
	else
		put_escaped(l, f->key, false);
	puts_(l, json ? ":" : "=");
	if (l->full || !put_value(l, f, json))
		l->len = mark;
}

static void put_timestamp(struct line *l)
{
	struct timespec ts;
	struct tm tm;
	char buf[40];
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (!gmtime_r(&ts.tv_sec, &tm)) {
		puts_(l, "1970-01-01T00:00:00.000Z");
		return;
	}
	n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, sizeof(buf) - n, ".%03ldZ", ts.tv_nsec / 1000000L);
	puts_(l, buf);
}

static void write_line(const struct line *l)
{
	size_t off = 0;

	while (off < l->len) {
		ssize_t w = write(STDERR_FILENO, l->buf + off, l->len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* nowhere to report a failing stderr */
		off += (size_t)w;
	}
}

void log_event(enum log_level level, const char *msg, ...)
{
	struct line l = { .len = 0, .limit = LINE_MAX_BYTES - LINE_RESERVE, .full = false };
	bool json = out_format == LOG_FORMAT_JSON;
	int saved_errno = errno;
	const struct log_field *f;
	va_list ap;

	if (!log_enabled(level))
		return;
	puts_(&l, log_priority_prefix(level));
	if (json) {
		puts_(&l, "{\"ts\":\"");
		put_timestamp(&l);
		puts_(&l, "\",\"level\":\"");
		puts_(&l, log_level_name(level));
		puts_(&l, "\",\"msg\":");
		put_json_string(&l, msg);
	} else {
		put_timestamp(&l);
		puts_(&l, " ");
		puts_(&l, (unsigned)level <= LOG_ERROR ? level_upper[level] : "UNKNOWN");
		puts_(&l, " ");
		put_escaped(&l, msg, false);
	}
	va_start(ap, msg);
	while ((f = va_arg(ap, const struct log_field *)) != NULL) {
		if (!l.full)
			put_field(&l, f, json);
	}
	va_end(ap);
	if (l.full)
		put_closing(&l, json ? ",\"truncated\":true" : " truncated=true");
	put_closing(&l, json ? "}\n" : "\n");
	write_line(&l);
	errno = saved_errno;
}

bool log_limit_allow(struct log_limit *l, uint64_t now_ms, uint64_t every_ms,
		     uint64_t *suppressed)
{
	if (l->last_ms && now_ms - l->last_ms < every_ms) {
		l->dropped++;
		return false;
	}
	*suppressed = l->dropped;
	l->dropped = 0;
	l->last_ms = now_ms ? now_ms : 1;
	return true;
}
