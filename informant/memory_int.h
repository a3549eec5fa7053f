/* SPDX-License-Identifier: Apache-2.0 */
/*
 * memory_int.h — state shared by memory.c (limits, /upscale, /downscale,
 * file cache) and pressure.c (memory.high reaction, sampler, prediction).
 * Everything runs on the loop thread.
 */
#ifndef VMI_MEMORY_INT_H
#define VMI_MEMORY_INT_H

#include "cgroup.h"
#include "filecache.h"
#include "memctl.h"
#include "log.h"
#include "memory.h"

struct memory_downscale {
	bool active;
	bool from_upscale;    /* a shrinking /upscale: answered {} */
	uint64_t id;          /* ties the cache result to this request */
	uint64_t vm_bytes, basis, cache_target, cache_prev;
	bool cache_prev_known;
	memory_done_fn done;
	void *arg;
};

struct memory {
	struct loop *loop;
	struct config cfg;
	struct metrics *metrics;
	memory_request_upscale_fn request_upscale;
	void *request_arg;

	/* cgroup and the memory.high reaction */
	struct cg *cg;
	struct cg_react react;
	struct loop_timer *react_timer;  /* the state machine's next deadline */
	struct loop_timer *freeze_guard; /* thaws max_upscale_wait after a freeze, always */
	bool frozen;                     /* we froze it and have not thawed yet */
	struct log_limit thaw_err_log, watch_err_log;
	uint64_t frozen_since_ns;

	/* what the limits are computed from, and what was written */
	uint64_t vm_bytes;    /* the agent's last size; 0 before any */
	uint64_t mem_total;   /* MemTotal last read; 0 if unknown */
	uint64_t limit_max, limit_high;
	bool limits_written;

	/* file cache */
	struct fc *fc;
	bool cache_known;         /* cache_bytes is what Postgres holds */
	uint64_t cache_bytes;
	uint64_t cache_cap;       /* Postgres's maximum once learned, else UINT64_MAX */
	uint64_t cache_inflight;  /* a size being set in the background, 0 if none */

	/* the one /downscale in progress (it waits for Postgres) */
	struct memory_downscale downscale;
	uint64_t downscale_ids;

	/* sampler and prediction */
	struct mc_sampler *sampler;
	struct mc_ema ema;
	enum mc_level level;
	struct mc_level_config level_cfg;
	uint64_t last_predict_ms;
	struct mc_sample last_sample;
	bool have_sample;
};

#define MEM_INTERNAL_ERROR "Internal error"

/* memory.c */
uint64_t memory_cache_reserved(const struct memory *m);
/* Recompute the limits from the current basis and write them if changed
 * (not while a downscale is between its steps, not before the basis is
 * known).  0 or -errno. */
int memory_apply_limits(struct memory *m, const char *reason);
/* Write exactly these limits (max first): 1 if written, 0 if they were
 * already there, -errno. */
int memory_write_limits(struct memory *m, uint64_t max, uint64_t high, const char *reason);
/* Set the file cache to the size that fits the basis (or to bytes when
 * non-zero), in the background, retried until Postgres takes it. */
void memory_size_cache(struct memory *m, uint64_t bytes, const char *reason);
void memory_cache_learned(struct memory *m, uint64_t requested, uint64_t actual);

/* downscale.c */
/* Lower the limits to vm_bytes: check, cache first, then the cgroup; a
 * pending one is superseded.  from_upscale: answer as /upscale does. */
void downscale_start(struct memory *m, uint64_t vm_bytes, bool from_upscale,
		     memory_done_fn done, void *arg);
/* Answer a pending one now (Ok:false / 409) without touching anything. */
void downscale_supersede(struct memory *m, const char *why);
/* Answer a pending one with an error and re-apply what fits now. */
void downscale_abort(struct memory *m, unsigned http_status, const char *body);

/* pressure.c */
int pressure_start(struct memory *m);
void pressure_stop(struct memory *m);
/* The reaction and sampler settings in m->cfg changed. */
void pressure_reconfigure(struct memory *m);
/* The limits were rewritten: upscale = an /upscale arrived (thaw now). */
void pressure_limits_written(struct memory *m, bool upscale);
/* Read MemTotal now (an /upscale usually follows a hot-plug by a few ms,
 * before the next sample). */
void pressure_refresh_mem_total(struct memory *m);
/* Thaw now if we froze it; logs loudly and retries on failure. */
void pressure_thaw(struct memory *m, const char *why);

#endif
