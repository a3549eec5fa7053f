/* SPDX-License-Identifier: Apache-2.0 */
/*
 * memctl.h — the shared memory sampler and the pure memory-budget engine.
 *
 * The sampler reads meminfo, the process RSS, the cgroup's memory.current
 * and memory.max, and memory PSI once per tick of a timerfd that the caller's
 * event loop polls.  Everything else in this header is pure: numbers in,
 * decisions out, no I/O, no allocation, no global state.
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

/* ---- parsers (pure, on a buffer that need not be NUL-terminated) --------- */

struct mc_meminfo {
	uint64_t mem_total;        /* bytes (the file's kB x 1024) */
	uint64_t mem_available;    /* bytes */
	bool mem_total_ok, mem_available_ok;
};

/* One "Key: <digits> kB" line of a meminfo-style file (/proc/meminfo,
 * /proc/self/status) into bytes.  -ENOENT if the key is absent, -EINVAL if
 * the line is malformed, truncated or repeated, -ERANGE if kB x 1024 > 2^64-1. */
int mc_parse_kb_field(const char *buf, size_t len, const char *key, uint64_t *bytes);

/* MemTotal and MemAvailable of a meminfo buffer; each flag says whether that
 * field parsed (mc_parse_kb_field rules).  Returns 0 when both are OK,
 * -ENODATA when at least one is not (the other may still be OK). */
int mc_parse_meminfo(const char *buf, size_t len, struct mc_meminfo *out);

/* A cgroup single-value file: decimal digits and at most one trailing "\n".
 * With allow_max, the word "max" reads as 0 (unlimited; a literal 0 limit is
 * therefore indistinguishable from none).  -EINVAL if malformed, -ERANGE. */
int mc_parse_u64_value(const char *buf, size_t len, bool allow_max, uint64_t *out);

struct mc_psi {
	double some_avg10, full_avg10;   /* percent of wall time, 0..100 */
	uint64_t some_total, full_total; /* microseconds stalled, cumulative */
	bool some_avg10_ok, some_total_ok, full_avg10_ok, full_total_ok;
};

/* A PSI file ("some avg10=… avg60=… avg300=… total=…" and a "full" line).
 * Each field's flag says whether it parsed; a bad line invalidates only its
 * own two fields.  Returns 0 if all four are OK, -ENODATA otherwise. */
int mc_parse_psi(const char *buf, size_t len, struct mc_psi *out);

/* ---- the sampler (I/O; driven by the caller's loop) ----------------------- */

struct mc_sample {
	uint64_t ts_ms;            /* CLOCK_MONOTONIC when the sample was taken */
	uint64_t missed;           /* ticks coalesced into this one (0 = on time) */
	struct mc_meminfo mem;     /* from meminfo_path */
	uint64_t rss;              /* VmRSS of proc_status_path, bytes */
	uint64_t cg_current;       /* memory.current, bytes */
	uint64_t cg_max;           /* memory.max, bytes; 0 = unlimited */
	bool rss_ok, cg_current_ok, cg_max_ok;
	struct mc_psi psi;         /* memory PSI (cgroup's or system-wide) */
};

struct mc_sampler_config {
	const char *meminfo_path;     /* NULL = /proc/meminfo */
	const char *proc_status_path; /* NULL = /proc/self/status */
	const char *cgroup_dir;       /* NULL = no cgroup: cg_* never OK */
	const char *psi_path;         /* NULL = <cgroup_dir>/memory.pressure if
				       * cgroup_dir, else /proc/pressure/memory */
	uint64_t interval_ms;         /* MC_SAMPLER_INTERVAL_MIN_MS..MAX_MS */
	bool immediate;               /* first sample right after start (see below) */
	bool stop_on_error;           /* a failing on_sample stops the timer */
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

/* Opens the files (a missing one is not an error: it is retried later) and
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
/* Disarms the timer and drops pending expirations; safe inside on_sample. */
int mc_sampler_stop(struct mc_sampler *s);
bool mc_sampler_running(const struct mc_sampler *s);
/* New period; if running, the next tick is one new interval from now.
 * -EINVAL outside MC_SAMPLER_INTERVAL_MIN_MS..MAX_MS. */
int mc_sampler_set_interval(struct mc_sampler *s, uint64_t interval_ms);
/* A one-shot synchronous sample into out (missed = 0); calls no callback.
 * Always 0: unreadable fields are marked not OK. */
int mc_sampler_read(struct mc_sampler *s, struct mc_sample *out);

/* ---- budgets (pure) ------------------------------------------------------- */

#define MC_HEADROOM_DEFAULT 0.7

/* floor(v x fraction), fraction in [0, 1] (resolution 1e-9, exact integer
 * math, never above v).  -EINVAL if fraction is NaN or outside [0, 1]. */
int mc_scale(uint64_t v, double fraction, uint64_t *out);

struct mc_fit_input {
	uint64_t available;   /* memory we may plan with */
	uint64_t fixed;       /* paid once, whatever the count */
	uint64_t per_unit;    /* paid per unit; 0 = units are free */
	uint64_t wanted;      /* >= 1 */
	double headroom;      /* (0, 1]; MC_HEADROOM_DEFAULT */
};

struct mc_fit {
	uint64_t units;       /* >= 1 and <= wanted */
	uint64_t budget;      /* available x headroom */
	bool reduced;         /* units < wanted */
	bool overflow;        /* fixed + one unit > budget: even 1 unit swaps */
};

/* How many of `wanted` units fit in available x headroom after `fixed`; at
 * least 1 (flagged overflow when even that does not fit).  -EINVAL on
 * headroom outside (0, 1] or wanted 0. */
int mc_fit(const struct mc_fit_input *in, struct mc_fit *out, char *err, size_t errlen);

struct mc_worker_input {
	uint64_t available;      /* memory */
	double fraction;         /* (0, 1] of available we may use */
	uint64_t base;           /* overhead subtracted once */
	uint64_t per_worker;     /* 0 = memory does not limit the count */
	uint32_t cores;          /* >= 1 */
	double max_cores_ratio;  /* workers per core, (0, 1024] */
	uint64_t max_workers;    /* 0 = no cap */
};

struct mc_worker_budget {
	uint64_t workers;        /* clamped to [1, max_workers] */
	uint64_t usable;         /* available x fraction - base (saturating) */
	uint64_t by_memory;      /* usable / per_worker (UINT64_MAX if free) */
	uint64_t by_cores;       /* floor(cores x max_cores_ratio) */
};

/* Default worker count: min(usable / per_worker, cores x ratio), clamped to
 * [1, max_workers].  -EINVAL on an out-of-range fraction, ratio or 0 cores. */
int mc_worker_budget(const struct mc_worker_input *in, struct mc_worker_budget *out,
		     char *err, size_t errlen);

struct mc_split_config {
	double usable;           /* share of the total, (0, 1]: 0.95 */
	double work, aggregate, in_flight; /* shares of usable, sum <= 1 */
};

#define MC_SPLIT_DEFAULT ((struct mc_split_config){ 0.95, 0.60, 0.30, 0.10 })

struct mc_split {
	uint64_t usable, work, aggregate, in_flight;
};

/* Splits total into usable, then usable into work/aggregate/in-flight.
 * When the three shares sum to exactly 1, in_flight takes the rounding
 * remainder so the parts add up to usable.  -EINVAL on bad shares. */
int mc_split(uint64_t total, const struct mc_split_config *cfg, struct mc_split *out,
	     char *err, size_t errlen);

/* ---- adaptive growth estimator (pure) ------------------------------------- */

#define MC_EMA_ALPHA_DEFAULT 0.3
#define MC_EMA_DIVERGENCE_DEFAULT 0.25

struct mc_ema {
	double alpha;            /* weight of the newest observation */
	double divergence;       /* relative gap that counts as divergence */
	double floor_bps;        /* ... and absolute gap it must also exceed */
	double rate_bps;         /* EMA of growth, bytes per second (may be < 0) */
	double last_observed_bps;
	uint64_t last_ts_ms, last_value;
	bool have_sample, have_rate;
};

/* alpha in (0, 1]; divergence threshold MC_EMA_DIVERGENCE_DEFAULT, floor 0. */
int mc_ema_init(struct mc_ema *e, double alpha);
/* Divergence when |observed - predicted| > max(fraction x |predicted|,
 * floor_bps).  -EINVAL if fraction < 0, floor < 0 or either is not finite. */
int mc_ema_set_divergence(struct mc_ema *e, double fraction, double floor_bps);
/* Feeds a sample.  Returns true when the observed rate since the previous
 * sample diverges from the EMA's prediction (caller should re-plan).  The
 * first sample and a ts not after the previous one (re-anchor) give false. */
bool mc_ema_update(struct mc_ema *e, uint64_t ts_ms, uint64_t value);
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

/* 0 < warning < critical <= 1 and 0 <= hysteresis < warning, else -EINVAL. */
int mc_level_config_check(const struct mc_level_config *cfg, char *err, size_t errlen);
/* The level for value against limit, given the previous level: rising is
 * immediate, falling needs the ratio below the threshold minus hysteresis.
 * limit 0 means unlimited (NORMAL).  cfg must have passed the check. */
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
