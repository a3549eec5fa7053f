/* SPDX-License-Identifier: Apache-2.0 */
/*
 * memory_core.h — the memory policy as a state machine without files,
 * sockets or clocks of its own: it reaches the world through struct
 * memory_io and is driven by the memory_on_*() inputs.  memory_loop.c
 * plugs in the cgroup, Postgres, the sampler and loop timers; the unit
 * tests plug in a fake cgroup, a fake Postgres and a fake clock, and drive
 * random interleavings of every input.
 *
 * Rules for the io: no callback may call back into the policy (results
 * come later, through memory_on_*()); every function returns at once.
 */
#ifndef VMI_MEMORY_CORE_H
#define VMI_MEMORY_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cgroup.h"
#include "memory.h"

enum memory_limit { MEMORY_LIMIT_MAX, MEMORY_LIMIT_HIGH };

enum memory_timer {
	MEMORY_TIMER_REACT,      /* the reaction's next deadline (thaw, lower a raise) */
	MEMORY_TIMER_THAW_GUARD, /* thaws max_upscale_wait after a freeze, whatever happens */
	MEMORY_TIMER_DOWNSCALE,  /* a downscale not done by then changes nothing */
	MEMORY_TIMER__COUNT
};

struct memory_io {
	uint64_t (*now_ns)(void *ctx);                 /* CLOCK_MONOTONIC */
	/* The cgroup (only called when the cgroup is managed). */
	int (*write_limit)(void *ctx, enum memory_limit which, uint64_t bytes, char *err,
			   size_t errlen);
	/* What the files hold (CG_UNLIMITED for "max"). */
	int (*read_limits)(void *ctx, uint64_t *max, uint64_t *high, char *err, size_t errlen);
	int (*read_current)(void *ctx, uint64_t *out, char *err, size_t errlen);
	/* memory.stat; -ENOENT where the file does not exist. */
	int (*read_stat)(void *ctx, struct cg_memory_stat *out, char *err, size_t errlen);
	/* Reclaim bytes from the cgroup off the loop, bounded in time; the
	 * result comes through memory_on_reclaim_result(token).  0 or -errno
	 * (then no result will come). */
	int (*reclaim)(void *ctx, uint64_t bytes, uint64_t token);
	/* No longer wanted: stop after the step in progress; its result, if
	 * any still comes, is ignored. */
	void (*reclaim_cancel)(void *ctx, uint64_t token);
	int (*set_frozen)(void *ctx, bool frozen, char *err, size_t errlen);
	/* MemTotal now; 0 or -errno. */
	int (*read_mem_total)(void *ctx, uint64_t *out);
	/* The file cache (only when managed): set bytes in the background;
	 * until_ok retries with back-off until Postgres takes it.  A newer
	 * call supersedes an older one that has not finished (its result is
	 * -ECANCELED).  Results: memory_on_cache_result(token).  0 or -errno
	 * (then no result will come). */
	int (*cache_set)(void *ctx, uint64_t bytes, bool until_ok, uint64_t token);
	/* Arm (delay_ns > 0) or disarm (0) a one-shot timer: memory_on_timer(). */
	void (*arm)(void *ctx, enum memory_timer t, uint64_t delay_ns);
	/* The hooks towards the agent set. */
	void (*ask)(void *ctx, bool predicted);
	void (*upscale_applied)(void *ctx);
	void *ctx;
};

/* One sampler tick as the policy sees it. */
struct memory_sample {
	uint64_t mem_total;     /* valid when mem_total_err is 0 */
	int mem_total_err;      /* 0, or -errno (see struct mc_sample) */
	bool meminfo_read;      /* the file was read; else mem_total_err is the read's */
	uint64_t current;       /* memory.current */
	bool current_ok;
	struct cg_memory_stat stat; /* memory.stat, where it exists */
	bool stat_ok;
};

/* cgroup / filecache: whether each is managed (the io supports it). */
int memory_core_new(const struct config *cfg, struct metrics *metrics,
		    const struct memory_io *io, bool cgroup, bool filecache,
		    struct memory **out);
/* Thaws if frozen, answers a pending downscale 503 (cancelling its
 * reclaim; the cache and limits that fit are asked for once more),
 * disarms the timers; later inputs are ignored (results of cancelled
 * calls may still come). */
void memory_core_stop(struct memory *m);
/* Stops (if not yet) and frees; NULL is a no-op. */
void memory_core_free(struct memory *m);
/* First limits and cache size from the first sample.  -errno if the
 * limits could not be written (the daemon cannot start like that). */
int memory_core_start(struct memory *m, const struct memory_sample *first);
void memory_core_reconfigure(struct memory *m, const struct config *cfg);

void memory_on_sample(struct memory *m, const struct memory_sample *s);
/* Granted memory has not shown up in MemTotal yet: read it every tick. */
bool memory_awaiting_memory(struct memory *m);
void memory_on_high_events(struct memory *m, uint64_t n);
/* The cgroup directory was removed and made anew (cg_generation()). */
void memory_on_cgroup_recreated(struct memory *m);
void memory_on_timer(struct memory *m, enum memory_timer t);
/* requested: the bytes of that token's cache_set. */
void memory_on_cache_result(struct memory *m, uint64_t token, int err, uint64_t requested,
			    uint64_t actual, const char *message);
void memory_on_cache_retry(struct memory *m, uint64_t token, int err, uint64_t retry_in_ms,
			   const char *message);
/* memory.reclaim was written: err 0 (all of it), -EAGAIN (the kernel
 * could not reclaim that much), -ETIMEDOUT (the time bound), -errno. */
void memory_on_reclaim_result(struct memory *m, uint64_t token, int err, uint64_t reclaimed);
/* memory.pressure, as the shell sees it. */
enum memory_pressure_kind {
	MEMORY_PSI_TRIGGER,  /* a PSI trigger fired: a stall past its threshold */
	MEMORY_PSI_TOTALS,   /* a reading about once a second, a trigger watching too */
	MEMORY_PSI_READING,  /* a reading about once a second, no trigger: judge it */
};
/* pr is not used for MEMORY_PSI_TRIGGER (may be NULL). */
void memory_on_pressure(struct memory *m, const struct cg_pressure *pr,
			enum memory_pressure_kind kind);

#endif
