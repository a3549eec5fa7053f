/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.h — one line per event on stderr, JSON (default) or text.
 *
 *   log_event(LOG_INFO, "agent registered",
 *             LF_STR("agent_id", id), LF_U64("memory_bytes", n),
 *             LF_MS("duration_ms", 12.5), LF_END);
 *
 * JSON lines carry "ts" (RFC 3339 UTC, milliseconds), "level", "msg" and the
 * fields in order.  Nothing here knows about secrets: callers pass redacted
 * values (see filecache's connstr redaction).
 */
#ifndef VMI_LOG_H
#define VMI_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_FORMAT_JSON, LOG_FORMAT_TEXT };

enum log_field_type { LF_T_STR, LF_T_U64, LF_T_I64, LF_T_DBL, LF_T_BOOL };

struct log_field {
	const char *key;
	enum log_field_type type;
	union {
		const char *s;
		uint64_t u;
		int64_t i;
		double d;
		bool b;
	} v;
};

#define LF_STR(k, x)  (&(const struct log_field){ .key = (k), .type = LF_T_STR, .v.s = (x) })
#define LF_U64(k, x)  (&(const struct log_field){ .key = (k), .type = LF_T_U64, .v.u = (uint64_t)(x) })
#define LF_I64(k, x)  (&(const struct log_field){ .key = (k), .type = LF_T_I64, .v.i = (int64_t)(x) })
#define LF_MS(k, x)   (&(const struct log_field){ .key = (k), .type = LF_T_DBL, .v.d = (double)(x) })
#define LF_DBL(k, x)  (&(const struct log_field){ .key = (k), .type = LF_T_DBL, .v.d = (double)(x) })
#define LF_BOOL(k, x) (&(const struct log_field){ .key = (k), .type = LF_T_BOOL, .v.b = (x) })
/* errno as a string field "error": LF_ERR(r) with r a negative errno */
#define LF_ERR(r)     LF_STR("error", log_strerror(r))
#define LF_END        ((const struct log_field *)0)

/* Also checks whether stderr is a journald stream (JOURNAL_STREAM): then
 * every line starts with its syslog priority, "<7>" debug to "<3>" error. */
void log_setup(enum log_level min_level, enum log_format format);
/* That prefix for lines written to stderr without log_event() (command-line
 * and config errors): "" unless stderr is a journald stream. */
const char *log_priority_prefix(enum log_level level);
bool log_enabled(enum log_level level);
/* Fields: const struct log_field * arguments terminated by LF_END. */
void log_event(enum log_level level, const char *msg, ...);
/* strerror(-r) for a negative errno r, thread-safe. */
const char *log_strerror(int r);

/* At most one line per `every_ms` for a repeating condition: true when this
 * one may be logged; *suppressed then holds how many were dropped since. */
struct log_limit {
	uint64_t last_ms;
	uint64_t dropped;
};
bool log_limit_allow(struct log_limit *l, uint64_t now_ms, uint64_t every_ms,
		     uint64_t *suppressed);

int log_level_parse(const char *s, enum log_level *out);
int log_format_parse(const char *s, enum log_format *out);
const char *log_level_name(enum log_level level);

#endif
