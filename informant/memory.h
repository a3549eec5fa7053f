/* SPDX-License-Identifier: Apache-2.0 */
/*
 * memory.h — the informant's memory policy on the loop thread: cgroup limits
 * from the VM size, the memory.high reaction (freeze ≤ max_upscale_wait,
 * stepwise raise), the sampler-driven predictive upscale, and the file
 * cache.  Owns the cgroup, filecache and memctl objects.
 *
 * It asks for more memory through a callback (the agent set decides whom
 * to ask); /upscale and /downscale are applied asynchronously (Postgres is
 * slow) and answered through a completion callback.
 */
#ifndef VMI_MEMORY_H
#define VMI_MEMORY_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "loop.h"
#include "metrics.h"

struct memory;

/* Ask the current agent for more memory; predicted = before any
 * memory.high event.  Returns 0 if a request was sent or is kept pending. */
typedef int (*memory_request_upscale_fn)(void *arg, bool predicted);

/* Completion of memory_upscale()/memory_downscale(): the HTTP status and
 * body to answer with (body is JSON for 200, plain text otherwise). */
typedef void (*memory_done_fn)(void *arg, unsigned http_status, const char *body);

struct memory_status {
	bool cgroup_managed, filecache_managed;
	uint64_t vm_bytes;            /* what the limits are computed from */
	uint64_t mem_total_bytes;     /* MemTotal now */
	uint64_t memory_current, memory_high, memory_max; /* 0 if unknown */
	uint64_t file_cache_bytes;
	bool file_cache_known;
	bool frozen;
	bool waiting_on_upscale;      /* a memory.high/prediction ask is open */
	double growth_bytes_per_sec;  /* EMA */
	const char *pressure;         /* "normal" | "warning" | "critical" */
};

int memory_new(struct loop *loop, const struct config *cfg, struct metrics *metrics,
	       memory_request_upscale_fn request_upscale, void *request_arg, struct memory **out);
/* Thaws the cgroup (always), then frees.  Pending completions run with 503. */
void memory_free(struct memory *m);
/* Start-up: thaw, write initial limits from MemTotal, size the file cache
 * (in the background), start watching and sampling.  -errno on fatal error. */
int memory_start(struct memory *m);

bool memory_managed(const struct memory *m); /* cgroup or file cache */

/* PUT /upscale from the current agent: the VM now has vm_bytes.  done runs
 * exactly once (possibly before this returns). */
int memory_upscale(struct memory *m, uint64_t vm_bytes, memory_done_fn done, void *arg);
/* PUT /downscale: may the VM shrink to vm_bytes?  done gets 200 with a
 * DownscaleResult body (Ok true/false) or 500 "Internal error". */
int memory_downscale(struct memory *m, uint64_t vm_bytes, memory_done_fn done, void *arg);

void memory_get_status(const struct memory *m, struct memory_status *out);
/* SIGHUP: apply what can change at run time. */
void memory_reconfigure(struct memory *m, const struct config *cfg);

#endif
