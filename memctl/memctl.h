/* SPDX-License-Identifier: Apache-2.0 */
/*
 * memctl.h — the shared memory sampler and the pure memory-budget engine.
 *
 * The sampler reads MemTotal once per tick of a timerfd that the caller's
 * event loop polls, and hands each tick to the caller, who adds what it
 * reads from its own objects.  Everything else in this header is pure:
 * the growth estimator, the pressure levels and the component bounds the
 * daemon's planner builds its limits and downscale checks from.  Numbers
 * in, decisions out, no I/O, no allocation, no global state.
 *
 * Conventions: functions return 0 or a negative errno.  Where a function
 * takes err/errlen, a failure writes a one-line reason naming the bad value
 * into err (always NUL-terminated; err may be NULL when errlen is 0).
 * Sizes are bytes; times are milliseconds of CLOCK_MONOTONIC.  Fractions are
 * doubles validated by the callee and applied in exact integer arithmetic
 * with a resolution of 1e-9; integer math saturates instead of wrapping.
 */
#ifndef MEMCTL_H
#define MEMCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the meminfo parser (pure, on a buffer that need not be NUL-terminated) */

/* One "Key: <digits> kB" line of a meminfo-style file into bytes.  -ENOENT
 * if the key is absent, -EINVAL if the line is malformed, truncated or
 * repeated, -ERANGE if kB x 1024 > 2^64-1. */
int mc_parse_kb_field(const char *buf, size_t len, const char *key, uint64_t *bytes);

/* ---- the sampler (I/O; driven by the caller's loop) ----------------------- */

/* One tick.  The sampler reads what every tick's decision needs from the
 * VM itself — MemTotal, which grows when memory is hot-plugged; the caller
 * adds what it reads from its own objects (the cgroup's memory.current). */
struct mc_sample {
	uint64_t ts_ms;            /* CLOCK_MONOTONIC when the sample was taken */
	uint64_t missed;           /* ticks coalesced into this one (0 = on time) */
	uint64_t mem_total;        /* MemTotal in bytes, valid when mem_total_err is 0 */
	int mem_total_err;         /* 0, or -errno: the read's error when meminfo_read is
				    * false, else the parser's (-ENOENT: no MemTotal line) */
	bool meminfo_read;
	bool meminfo_fresh;        /* read at this tick; else the last reading */
};

struct mc_sampler_config {
	const char *meminfo_path;     /* NULL = /proc/meminfo */
	uint64_t interval_ms;         /* MC_SAMPLER_INTERVAL_MIN_MS..MAX_MS */
	uint64_t meminfo_every_ms;    /* read meminfo at most this often (0 = every
				       * tick); ticks in between carry the last
				       * reading.  MemTotal changes only on a hot-plug,
				       * and /proc/meminfo is the dearest read of a tick. */
	bool immediate;               /* first sample right after start (see below) */
};

#define MC_SAMPLER_INTERVAL_MIN_MS 1
#define MC_SAMPLER_INTERVAL_MAX_MS 3600000
/* A file that could not be opened (or whose read failed) is retried at
 * most this often; until then its fields are not OK.  Files are kept open;
 * one replaced by rename() or re-created is noticed (the path names another
 * inode) within this period too, and read from then on. */
#define MC_SAMPLER_REOPEN_MS 1000

/* Called once per (possibly coalesced) tick from mc_sampler_process(); a
 * negative return is handed to on_error with what = "on_sample". */
typedef int (*mc_sample_fn)(void *arg, const struct mc_sample *s);
/* err is a negative errno; what names the failing step. */
typedef void (*mc_error_fn)(void *arg, int err, const char *what);

struct mc_sampler;

/* Opens the file (a missing one is not an error: it is retried later) and
 * a timerfd; the timer is not armed until mc_sampler_start().  on_error may
 * be NULL.  Paths are copied.  -EINVAL/-ENAMETOOLONG on bad config. */
int mc_sampler_new(const struct mc_sampler_config *cfg, mc_sample_fn on_sample,
		   mc_error_fn on_error, void *arg, struct mc_sampler **out,
		   char *err, size_t errlen);
/* Closes every fd and frees.  Not from inside on_sample.  NULL is a no-op. */
void mc_sampler_free(struct mc_sampler *s);

/* The timerfd to poll for EPOLLIN; owned by the sampler. */
int mc_sampler_fd(const struct mc_sampler *s);
/* Non-blocking: reads the timerfd's expiration count (several = missed
 * ticks, coalesced into ONE sample), samples and calls on_sample once.  A
 * late tick re-phases the timer so the next one is a full interval later:
 * never a burst.  0 also when nothing was due; -errno if the timerfd fails. */
int mc_sampler_process(struct mc_sampler *s);

/* Arms the periodic timer.  With cfg.immediate the first expiry is 1 ns
 * away, so the first sample still arrives through mc_sampler_process() (no
 * callback ever runs inside start).  Starting a running sampler re-arms it. */
int mc_sampler_start(struct mc_sampler *s);
bool mc_sampler_running(const struct mc_sampler *s);
/* New period; if running, the next tick is one new interval from now.
 * -EINVAL outside MC_SAMPLER_INTERVAL_MIN_MS..MAX_MS. */
int mc_sampler_set_interval(struct mc_sampler *s, uint64_t interval_ms);
/* A one-shot synchronous sample into out (missed = 0), meminfo read now
 * whatever meminfo_every_ms says; calls no callback.  Always 0: an
 * unreadable file shows in mem_total_err. */
int mc_sampler_read(struct mc_sampler *s, struct mc_sample *out);

/* ---- adaptive growth estimator (pure) ------------------------------------- */

#define MC_EMA_ALPHA_DEFAULT 0.3

struct mc_ema {
	double alpha;            /* weight of the newest observation */
	double rate_bps;         /* EMA of growth, bytes per second (may be < 0) */
	uint64_t last_ts_ms, last_value;
	bool have_sample, have_rate;
};

/* alpha in (0, 1]; -EINVAL otherwise. */
int mc_ema_init(struct mc_ema *e, double alpha);
/* Feeds a sample.  The first sample, and a ts not after the previous one,
 * only re-anchor (no rate from them). */
void mc_ema_update(struct mc_ema *e, uint64_t ts_ms, uint64_t value);
/* The EMA rate in bytes/s; 0 until two samples gave one (see have_rate). */
double mc_ema_rate(const struct mc_ema *e);
/* ms until current reaches limit at the EMA rate, rounded up; 0 if already
 * there; UINT64_MAX if not growing, no rate yet, or beyond 2^64-1 ms. */
uint64_t mc_ema_time_to_limit(const struct mc_ema *e, uint64_t current, uint64_t limit);

/* ---- pressure levels with hysteresis (pure) -------------------------------- */

enum mc_level { MC_LEVEL_NORMAL = 0, MC_LEVEL_WARNING = 1, MC_LEVEL_CRITICAL = 2 };

struct mc_level_config {
	double warning;          /* enter at value >= warning x limit: 0.80 */
	double critical;         /* enter at >= critical x limit: 0.90 */
	double hysteresis;       /* leave below threshold - hysteresis: 0.05 */
};

#define MC_LEVEL_DEFAULT ((struct mc_level_config){ 0.80, 0.90, 0.05 })

/* The level for value against limit, given the previous level: rising is
 * immediate, falling needs the ratio below the threshold minus hysteresis.
 * limit 0 means unlimited (NORMAL).  cfg must satisfy 0 < warning <
 * critical <= 1 and 0 <= hysteresis < warning. */
enum mc_level mc_level_next(const struct mc_level_config *cfg, enum mc_level prev,
			    uint64_t value, uint64_t limit);
/* "normal", "warning", "critical" ("unknown" for anything else). */
const char *mc_level_name(enum mc_level level);

/* ---- component bounds (pure) ------------------------------------------------ */

struct mc_bound {
	const char *name;        /* for messages; NULL prints as "#<index>" */
	uint64_t min;            /* the least it can live with */
	uint64_t firm;           /* its hard ceiling; 0 = none */
};

/* Sum of the minimums, saturating at UINT64_MAX. */
uint64_t mc_bounds_min_sum(const struct mc_bound *b, size_t n);
/* Checks min <= firm for each bound (-EINVAL) and that the minimums fit in
 * total (-ENOSPC).  On failure *offending (if not NULL) is the index of the
 * bad bound, or of the one whose minimum first pushes the sum past total. */
int mc_bounds_verify(const struct mc_bound *b, size_t n, uint64_t total, size_t *offending,
		     char *err, size_t errlen);

#endif
