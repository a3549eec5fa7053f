/* SPDX-License-Identifier: Apache-2.0 */
/*
 * memory_internal.h — the memory policy's state, one struct per owner.
 * Each struct is written by its own file only; the others read it.
 *
 *   mem_limits.c     VM size, MemTotal, the limits the files hold
 *   mem_cache.c      the file cache: what Postgres holds, what is being set
 *   mem_react.c      the memory.high reaction: freeze, thaw, raise, timers
 *   mem_predict.c    samples, growth estimate, pressure level, asks
 *   mem_downscale.c  one downscale's life (also a shrinking /upscale)
 *   memory.c         the inputs: dispatches each to its owners
 *
 * Decisions are plan.h's pure functions; these files apply them.
 */
#ifndef VMI_MEMORY_INTERNAL_H
#define VMI_MEMORY_INTERNAL_H

#include "cgroup.h"
#include "log.h"
#include "memctl.h"
#include "memory_core.h"
#include "plan.h"

#define MEM_INTERNAL_ERROR "Internal error"

/* How long asks wait after an applied /upscale for MemTotal to show the
 * new memory (hot-plug takes 20–400 ms, measured): asking for more before
 * the granted memory has even arrived would be a loop with the agent. */
#define MEM_HOTPLUG_WAIT_MS 2000
/* A downscale not done within this changes nothing: the HTTP agent gives
 * up on /downscale after 2 s and keeps the VM's size; applying it later
 * would hold the workload to memory the VM still has. */
#define MEM_DOWNSCALE_DEADLINE_MS 1800

struct mem_limits {
	uint64_t vm_bytes;       /* the agent's last applied size; 0 = none */
	uint64_t mem_total;      /* MemTotal last read; 0 = unknown */
	bool written;            /* max/high are what we last wrote (or found) ... */
	bool files_known;        /* ... and what the files hold now */
	uint64_t max, high;
	struct plan_limits plan; /* the last plan */
	bool in_sync;            /* the last plan is written */
	bool awaiting_memory;    /* a grant is not in MemTotal yet ... */
	uint64_t awaiting_until_ms; /* ... and asks wait until then at most */
	int mem_total_err;       /* the last MemTotal problem reported (0 = none) */
	struct log_limit write_err_log;
};

struct mem_cache {
	bool known;              /* bytes is what Postgres holds */
	uint64_t bytes;
	uint64_t cap;            /* Postgres's maximum as last seen; UINT64_MAX = none */
	uint64_t inflight;       /* a background size being set; 0 = none */
	uint64_t inflight_token;
	uint64_t last_token;     /* token source (also for the downscale's set) */
	bool resize_pending;     /* asked during a downscale: done when it ends */
};

struct mem_react {
	struct cg_react sm;
	bool frozen;             /* we froze it and have not thawed yet */
	uint64_t frozen_since_ns;
	struct log_limit thaw_err_log;
};

struct mem_predict {
	struct mc_ema ema;       /* growth of usage */
	struct mc_level_config level_cfg;
	enum mc_level level;
	uint64_t level_high;     /* the memory.high the level was judged against */
	bool have_usage;
	uint64_t current;        /* memory.current, last sample */
	uint64_t usage;          /* what decisions use: the workload or memory.current */
	bool usage_is_workload;  /* memory.stat known and [cgroup] exclude_page_cache */
	uint64_t ms_to_high;     /* at the EMA rate; UINT64_MAX = never */
	struct plan_gate gate;
	bool have_pressure;
	struct cg_pressure pressure; /* the last memory.pressure reading */
	uint64_t pressure_ms;
};

struct mem_downscale {
	bool active;
	bool from_upscale;       /* a shrinking /upscale: answered {} either way */
	bool reclaiming;         /* waiting for memory.reclaim */
	uint64_t token;          /* of its reclaim, then of its cache resize */
	uint64_t vm_bytes;
	struct plan_downscale plan;
	uint64_t cache_prev;
	bool cache_prev_known;
	memory_done_fn done;
	void *arg;
};

struct memory {
	struct config cfg;
	struct metrics *metrics;
	struct memory_io io;
	bool cgroup, filecache;  /* managed */
	void *shell;             /* memory_loop.c's state; NULL under test */
	bool stopped;            /* memory_core_stop() ran: inputs are ignored */

	struct mem_limits limits;
	struct mem_cache cache;
	struct mem_react react;
	struct mem_predict predict;
	struct mem_downscale downscale;
};

static inline uint64_t mem_now_ms(const struct memory *m)
{
	return m->io.now_ns(m->io.ctx) / 1000000u;
}

/* mem_limits.c */
void limits_init(struct memory *m);
/* The planner's input from every owner's state. */
void limits_plan_state(const struct memory *m, struct plan_state *st);
/* Take what the files hold as written (start-up). */
void limits_seed(struct memory *m, const char *reason);
/* The files were reset (a re-created cgroup): write the limits again, as
 * they were meant, and claim nothing about the files until then. */
void limits_files_reset(struct memory *m);
/* Plan again at the next sample (an input changed outside a sync). */
void limits_stale(struct memory *m);
/* Plan the limits and write what differs (not while a downscale is
 * between its steps).  0 or -errno. */
int limits_sync(struct memory *m, const char *reason);
/* The downscale path: exactly these limits, max first.  0 or -errno. */
int limits_write_exact(struct memory *m, uint64_t max, uint64_t high, uint64_t vm_bytes,
		       const char *reason);
/* The agent's size was applied. */
void limits_set_vm(struct memory *m, uint64_t vm_bytes);
/* A MemTotal reading (sample or on demand); true if it changed. */
bool limits_take_mem_total(struct memory *m, uint64_t mem_total, int err, bool read,
			   const char *path_hint);
/* Are asks to wait for granted memory to show up? */
bool limits_awaiting_memory(struct memory *m, uint64_t now_ms);

/* mem_cache.c */
void cache_init(struct memory *m);
uint64_t cache_next_token(struct memory *m);
/* Set the cache to the target for the basis in the background. */
void cache_size(struct memory *m, const char *reason);
/* A size set by someone else (the downscale) supersedes ours. */
void cache_forget_inflight(struct memory *m);
/* The downscale ended: a resize asked for meanwhile goes out now. */
void cache_after_downscale(struct memory *m);
void cache_learned(struct memory *m, uint64_t requested, uint64_t actual);
/* Set bytes once in the background, retried until Postgres takes it. */
void cache_restore(struct memory *m, uint64_t bytes, const char *reason);
void cache_on_result(struct memory *m, uint64_t token, int err, uint64_t requested,
		     uint64_t actual, const char *message);

/* mem_react.c */
void react_init(struct memory *m);
void react_configure(struct memory *m);
void react_on_events(struct memory *m, uint64_t n);
void react_on_upscale(struct memory *m);
void react_on_timer(struct memory *m, enum memory_timer t);
void react_thaw(struct memory *m, const char *why);
/* The floor the raise asks for (0 = none). */
uint64_t react_raise(const struct memory *m);
/* The computed memory.high is now base_high. */
void react_base_changed(struct memory *m, uint64_t base_high);
void react_drop_raise(struct memory *m);

/* mem_predict.c */
void predict_init(struct memory *m);
void predict_configure(struct memory *m);
void predict_on_sample(struct memory *m, const struct memory_sample *s);
/* Pressure wants memory: ask if the back-off allows. */
void predict_want(struct memory *m, bool predicted, const char *why);
void predict_upscale_applied(struct memory *m);
/* The usage decisions are made on, read now (memory.current and, under
 * the page-cache rule, memory.stat); the last sample's if the read fails. */
bool predict_usage_now(struct memory *m, uint64_t *usage, uint64_t *current);
/* The same without the fallback: a decision that must not rest on an old
 * sample (a downscale). */
bool predict_usage_fresh(struct memory *m, uint64_t *usage, uint64_t *current);
void predict_on_pressure(struct memory *m, const struct cg_pressure *pr,
			 enum memory_pressure_kind kind);

/* mem_downscale.c */
void downscale_start(struct memory *m, uint64_t vm_bytes, bool from_upscale,
		     memory_done_fn done, void *arg);
/* Answer a pending one now without touching anything. */
void downscale_supersede(struct memory *m, const char *why);
/* Answer a pending one with an error and re-apply what fits now. */
void downscale_abort(struct memory *m, unsigned http_status, const char *body);
/* Its deadline passed: answered as refused, nothing changed. */
void downscale_timeout(struct memory *m);
/* A reclaim result; ignored unless it is the pending downscale's. */
void downscale_on_reclaim_result(struct memory *m, uint64_t token, int err, uint64_t reclaimed);
/* A cache result for the downscale's token; false if not its. */
bool downscale_on_cache_result(struct memory *m, uint64_t token, int err, uint64_t requested,
			       uint64_t actual, const char *message);

/* memory.c */
/* An /upscale was applied: count it, tell the agent set, reset asks. */
void memory_upscale_applied(struct memory *m);

#endif
