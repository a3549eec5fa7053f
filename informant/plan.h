/* SPDX-License-Identifier: Apache-2.0 */
/*
 * plan.h — the memory planner: every decision of the memory policy as a
 * pure function of the whole input.  Numbers in, decisions out; the files
 * mem_*.c apply them.
 *
 *   plan_limits()           what memory.max/memory.high to write now
 *   plan_upscale_shrinks()  is this /upscale a downscale in disguise
 *   plan_downscale()        may the VM shrink to this size
 *   plan_need_memory()      does the workload need more memory now
 *   plan_gate_*()           may we ask the agent now (back-off)
 *
 * The sizes come from memctl's component bounds: the VM is shared by the
 * kernel (sys_buffer), the file cache (when it lives in memory), the OOM
 * buffer between memory.high and memory.max, and the workload, whose
 * share is memory.high.  A plan is feasible when the verifier finds the
 * components' minimums fit in the VM.
 */
#ifndef VMI_PLAN_H
#define VMI_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "memctl.h"

/* What the planner needs to know about the file cache. */
struct plan_cache {
	bool known;          /* bytes is what Postgres holds */
	uint64_t bytes;
	uint64_t inflight;   /* a size being set in the background; 0 = none */
	uint64_t cap;        /* Postgres's maximum as last seen; UINT64_MAX = none */
};

/* The whole input of the limits decisions. */
struct plan_state {
	uint64_t vm_bytes;     /* the agent's last applied size; 0 = none yet */
	uint64_t mem_total;    /* MemTotal; 0 = unknown */
	struct plan_cache cache;
	uint64_t raise_high;   /* the reaction's floor for memory.high; 0 = none */
	bool planned;          /* the limits in force were planned from ... */
	uint64_t planned_max, planned_high; /* ... these base values (no raise/hold) */
	bool written;          /* the files hold written_max/written_high */
	uint64_t written_max, written_high;
	uint64_t current;      /* the workload's usage, for the hold rule ... */
	uint64_t memory_current; /* ... and memory.current, page cache included */
	double growth_bps;     /* EMA growth of memory.current, bytes/s */
};

struct plan_limits {
	bool ok;               /* false: write nothing (why says) */
	uint64_t basis;        /* the memory the limits are computed from */
	uint64_t reserved;     /* file cache the limits leave room for */
	uint64_t base_max, base_high; /* computed, without raise or hold */
	uint64_t max, high;    /* to write */
	bool held;             /* a lowering was stopped above the workload */
	char why[192];
};

/* The memory the limits are computed from (one basis, D20): MemTotal
 * before the agent has said anything; afterwards the agent's size minus
 * the sys buffer, never more than MemTotal shows (memory that has not
 * been hot-plugged yet is not handed out, D11). */
uint64_t plan_basis(const struct config *cfg, uint64_t vm_bytes, uint64_t mem_total);

/* The file cache size for a basis (0 when the cache is not managed). */
uint64_t plan_cache_target(const struct config *cfg, uint64_t basis);

/* The cache the limits must leave room for: the larger of what Postgres
 * holds and what is being set (capped at Postgres's known maximum); the
 * target for the basis while nothing is known.  0 when the cache is not
 * managed or not in memory. */
uint64_t plan_cache_reserved(const struct config *cfg, const struct plan_state *st);

/* Limits for a basis and a file cache reservation (0 when the cache is
 * not in memory), before raise and hold: max = basis − reserved, high =
 * max − oom_buffer, both saturating. */
void plan_base_limits(const struct config *cfg, uint64_t basis, uint64_t reserved,
		      uint64_t *max, uint64_t *high);

/* The limits for the state: base_max = basis − reserved, base_high =
 * base_max − oom_buffer; memory.high is raised to raise_high (never above
 * memory.max).  Outside the downscale path a limit is never lowered into
 * the running workload: a lower memory.high stops at usage +
 * memory_high_buffer (and memory.max at that + oom_buffer), `held` says
 * so, and a later call lowers further once usage allows.  Nor below
 * memory.current: the kernel would reclaim the difference in the writer,
 * which is the event loop (a downscale reclaims off the loop first). */
void plan_limits(const struct config *cfg, const struct plan_state *st, struct plan_limits *out);

/* Would an /upscale to vm_bytes lower the limits in force (a smaller
 * size, or the first /upscale after a restart whose basis loses the sys
 * buffer)?  Compares the computed limits with the base of the limits in
 * force (st->planned_*), never with a raised or held memory.high. */
bool plan_upscale_shrinks(const struct config *cfg, const struct plan_state *st,
			  uint64_t vm_bytes);

struct plan_downscale {
	bool ok;
	uint64_t basis;
	uint64_t cache_target;   /* uncapped, as the check uses it */
	uint64_t new_max, new_high;
	uint64_t reclaim;        /* page cache to reclaim before the limits go down */
	char status[512];        /* the refusal text when !ok */
};

/* May the VM shrink to vm_bytes?  usage is what the workload holds (the
 * workload's memory, or memory.current under the old rule), current is
 * memory.current.  Refused (with the protocol's Status text) when the new
 * memory.high < usage + memory_high_buffer, when the components' minimums
 * do not fit the new size, or — with prediction on — when the new
 * memory.high would make the daemon ask for memory at once (a ping-pong
 * with the agent).  When usage fits but memory.current (page cache
 * included) does not, reclaim says how much page cache must go first. */
void plan_downscale(const struct config *cfg, const struct plan_state *st, uint64_t vm_bytes,
		    uint64_t current, uint64_t usage, struct plan_downscale *out);
/* The original's refusal text: new high < usage + memory_high_buffer. */
void plan_usage_refusal(const struct config *cfg, uint64_t new_high, uint64_t usage, char *out,
			size_t outlen);
/* The refusal after a reclaim that left memory.current too high. */
void plan_reclaim_refusal(const struct config *cfg, uint64_t new_high, uint64_t current,
			  uint64_t reclaimed, char *out, size_t outlen);

/* Start-up check of the configuration against the VM: the kernel's share
 * and the cgroup's buffers must fit in MemTotal.  True, or false with the
 * offending component in why. */
bool plan_buffers_fit(const struct config *cfg, uint64_t mem_total, char *why, size_t whylen);

/* "Set file cache size to N MiB" / "Set cgroup memory.high to H MiB, of
 * new max M MiB" joined with "; " as the original did.  0 or -ENOSPC. */
int plan_accept_status(char *out, size_t outlen, bool cache_set, uint64_t cache_bytes,
		       bool cgroup_set, uint64_t high, uint64_t max);

/* ---- asking for memory --------------------------------------------------- */

/* Pressure levels for memory.high: critical at critical_ratio, warning
 * ten points below, five points of hysteresis. */
void plan_level_config(const struct config *cfg, struct mc_level_config *out);

enum plan_need {
	PLAN_NEED_NONE,
	PLAN_NEED_PREDICTED,  /* memory.high within the horizon at the EMA rate */
	PLAN_NEED_CRITICAL,   /* usage at the critical level */
};

/* Does the workload need more memory, judged from one sample: usage
 * reaches memory.high within the horizon at the growth rate (ms_to_high,
 * UINT64_MAX = never), or usage is at least critical_ratio x memory.high.
 * The threshold is applied as it is: the levels' hysteresis keeps a
 * level on display, it never makes an ask. */
enum plan_need plan_need_memory(const struct config *cfg, uint64_t current, uint64_t high,
				uint64_t ms_to_high);

/* The back-off of asks for the same wish: the first ask goes out at once,
 * a wish the agent leaves unanswered is asked again after 2 s, 4 s, then
 * every PLAN_ASK_STEP_MAX_MS — below the 10 s for which today's agent
 * keeps a request valid, so the agent always holds a live one.  A
 * predicted ask also comes at least [predict] min_interval after the
 * previous ask.  An applied upscale starts the series over. */
#define PLAN_ASK_STEP_FIRST_MS 2000
#define PLAN_ASK_STEP_MAX_MS 8000

struct plan_gate {
	bool asked;            /* an ask went out since the last reset */
	uint64_t last_ask_ms;
	bool any;              /* an ask ever went out */
	uint64_t last_any_ms;  /* the last ask of all (kept across resets) */
	uint64_t step_ms;      /* wait after last_ask_ms before the next ask */
};

void plan_gate_reset(struct plan_gate *g);
/* May an ask go out at now?  A predicted ask also waits [predict]
 * min_interval after any ask.  If not, *next_ms (if not NULL) says when. */
bool plan_gate_allows(const struct config *cfg, const struct plan_gate *g, uint64_t now,
		      bool predicted, uint64_t *next_ms);
/* An ask went out at now: the next step doubles, up to the cap. */
void plan_gate_asked(struct plan_gate *g, uint64_t now);

#endif
