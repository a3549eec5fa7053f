/* SPDX-License-Identifier: Apache-2.0 */
/*
 * memory.h — the informant's memory policy: cgroup limits from the VM
 * size, the memory.high reaction (freeze ≤ max_upscale_wait, stepwise
 * raise), asking for memory before memory.high is reached, and the file
 * cache.  What it does is described in README "How memory is managed".
 *
 * It asks for memory through a hook (the agent set decides whom to ask);
 * /upscale and /downscale are applied asynchronously (Postgres is slow)
 * and answered through a completion callback.
 *
 * The policy is a state machine over struct memory_io (memory_core.h);
 * memory_new() plugs in the real cgroup, Postgres, sampler and loop
 * (memory_loop.c), the unit tests plug in fakes.
 */
#ifndef VMI_MEMORY_H
#define VMI_MEMORY_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "loop.h"
#include "metrics.h"

struct memory;

/* What the policy needs from the agent set. */
struct memory_hooks {
	/* Ask the current agent for more memory (predicted = before any
	 * memory.high event).  The policy has already applied its back-off:
	 * every call should reach an agent. */
	void (*request_upscale)(void *arg, bool predicted);
	/* An /upscale (or UpscaleNotification) was applied: the wish the
	 * agent set may still hold for delivery is fulfilled. */
	void (*upscale_applied)(void *arg);
	void *arg;
};

/* Completion of memory_upscale()/memory_downscale(): the HTTP status and
 * body to answer with (body is JSON for 200, plain text otherwise). */
typedef void (*memory_done_fn)(void *arg, unsigned http_status, const char *body);

struct memory_status {
	bool cgroup_managed, filecache_managed;
	uint64_t vm_bytes;            /* the agent's last applied size; 0 = none */
	uint64_t mem_total_bytes;     /* MemTotal now */
	uint64_t memory_current;      /* 0 if unknown */
	uint64_t usage;               /* what decisions use (0 if unknown) ... */
	bool usage_is_workload;       /* ... memory.current − (file − shmem), or memory.current */
	bool limits_known;            /* memory_high/max are what the files hold */
	uint64_t memory_high, memory_max;
	bool raised;                  /* memory.high raised above the computed value */
	bool held;                    /* the limits are not the computed ones: a
				       * lowering held above the workload, no plan
				       * fits (the last limits are kept), or they are
				       * to be written yet (a downscale in progress,
				       * a failed write retried at the next sample) */
	uint64_t file_cache_bytes;
	bool file_cache_known;
	bool frozen;
	bool ask_pending;             /* an ask is out and no upscale applied since */
	double growth_bytes_per_sec;  /* EMA */
	const char *pressure;         /* "normal" | "warning" | "critical" */
};

int memory_new(struct loop *loop, const struct config *cfg, struct metrics *metrics,
	       const struct memory_hooks *hooks, struct memory **out);
/* Thaws the cgroup (always), then frees.  Pending completions run with 503. */
void memory_free(struct memory *m);
/* Start-up: thaw, write initial limits from MemTotal, size the file cache
 * (in the background), start watching and sampling.  -errno on fatal error. */
int memory_start(struct memory *m);

bool memory_managed(const struct memory *m); /* cgroup or file cache */

/* PUT /upscale from the current agent: the VM now has vm_bytes.  done runs
 * exactly once (possibly before this returns): 200 "{}" also when a
 * smaller size was refused (the limits stay), 500 when the limits could
 * not be written. */
int memory_upscale(struct memory *m, uint64_t vm_bytes, memory_done_fn done, void *arg);
/* PUT /downscale: may the VM shrink to vm_bytes?  done gets 200 with a
 * DownscaleResult body (Ok true/false) or 500 "Internal error". */
int memory_downscale(struct memory *m, uint64_t vm_bytes, memory_done_fn done, void *arg);

void memory_get_status(const struct memory *m, struct memory_status *out);
/* SIGHUP: apply what can change at run time. */
void memory_reconfigure(struct memory *m, const struct config *cfg);

#endif
