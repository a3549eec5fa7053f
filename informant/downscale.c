/* SPDX-License-Identifier: Apache-2.0 */
/*
 * downscale.c — lowering the limits safely: PUT /downscale, and an /upscale
 * whose limits would come out lower than the ones written (a smaller size,
 * or the first /upscale after a restart, whose basis drops the sys buffer).
 *
 * Decide with plan_downscale(), shrink the file cache first (Postgres,
 * asynchronous), then lower the cgroup limits, then answer.  One runs at a
 * time; a newer /upscale or /downscale supersedes it (it is answered at
 * once and its late cache result only updates what we know of the cache).
 * If the limits cannot be written after the cache shrank, the old cache
 * size is restored (defect D22); any failure re-applies the limits that fit
 * the current state.
 */
#include "memory_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "agent_proto.h"
#include "log.h"
#include "plan.h"

/* Ties a cache result to the request that asked for it. */
struct downscale_ctx {
	struct memory *m;
	uint64_t id;
	uint64_t requested;
};

/* Hands the answer over and ends the request (done may start another). */
static void downscale_end(struct memory *m, unsigned http_status, const char *body)
{
	struct memory_downscale ds = m->downscale;

	m->downscale.active = false;
	ds.done(ds.arg, http_status, body);
}

/* The decision: a DownscaleResult for /downscale; for a shrinking /upscale
 * "{}" either way (refused = the current limits stay, the agent can do
 * nothing about it). */
static void downscale_answer(struct memory *m, bool ok, const char *status)
{
	const struct memory_downscale *ds = &m->downscale;
	struct ap_downscale_result res = { .ok = ok };
	char *body;

	log_event(ok ? LOG_INFO : LOG_WARN,
		  ds->from_upscale ? (ok ? "smaller upscale applied" : "smaller upscale: limits kept")
				   : (ok ? "downscale accepted" : "downscale refused"),
		  LF_U64("vm_bytes", ds->vm_bytes), LF_STR("status", status), LF_END);
	if (ds->from_upscale) {
		downscale_end(m, 200, "{}");
		return;
	}
	if (ok)
		m->metrics->downscales_accepted_total++;
	else
		m->metrics->downscales_rejected_total++;
	snprintf(res.status, sizeof(res.status), "%s", status);
	body = ap_encode_downscale_result(&res);
	downscale_end(m, body ? 200 : 500, body ? body : MEM_INTERNAL_ERROR);
	free(body);
}

/* Limits and cache target that fit the state as it is now. */
static void downscale_reapply(struct memory *m, const char *reason)
{
	memory_size_cache(m, 0, reason);
	(void)memory_apply_limits(m, reason);
}

void downscale_abort(struct memory *m, unsigned http_status, const char *body)
{
	if (!m->downscale.active)
		return;
	m->metrics->downscales_failed_total++;
	log_event(LOG_ERROR, "downscale failed", LF_U64("vm_bytes", m->downscale.vm_bytes),
		  LF_U64("http_status", http_status), LF_STR("error", body), LF_END);
	downscale_end(m, http_status, body);
	downscale_reapply(m, "downscale failed");
}

void downscale_supersede(struct memory *m, const char *why)
{
	if (!m->downscale.active)
		return;
	if (m->downscale.from_upscale)
		downscale_end(m, 409, why);
	else
		downscale_answer(m, false, why);
}

/* The cache is at its new size (or not managed): lower the limits. */
static void downscale_finish(struct memory *m, bool cache_set, uint64_t cache)
{
	struct memory_downscale *ds = &m->downscale;
	char status[AP_STATUS_MAX];
	uint64_t max = 0, high = 0, vm_prev = m->vm_bytes;

	m->vm_bytes = ds->vm_bytes; /* before the write: its log line shows the new size */
	if (m->cg) {
		plan_limits(&m->cfg, ds->basis, cache, &max, &high);
		if (memory_write_limits(m, max, high, "downscale") < 0) {
			m->vm_bytes = vm_prev;
			if (cache_set && ds->cache_prev_known)
				memory_size_cache(m, ds->cache_prev, "downscale rollback");
			downscale_abort(m, 500, MEM_INTERNAL_ERROR);
			return;
		}
		cg_react_on_limits_written(&m->react);
	}
	m->metrics->vm_memory_bytes = m->vm_bytes;
	if (plan_accept_status(status, sizeof(status), cache_set, cache, m->cg != NULL, high,
			       max) < 0)
		snprintf(status, sizeof(status), "Downscale applied");
	downscale_answer(m, true, status);
}

static void downscale_cache_done(void *arg, int err, uint64_t actual, const char *message)
{
	struct downscale_ctx ctx = *(struct downscale_ctx *)arg;
	struct memory *m = ctx.m;
	bool current = m->downscale.active && m->downscale.id == ctx.id;

	free(arg);
	if (err == 0)
		memory_cache_learned(m, ctx.requested, actual);
	if (!current) {
		/* Superseded: Postgres has what it has; fit the rest to it. */
		if (err != -ECANCELED)
			downscale_reapply(m, "superseded downscale's cache result");
		return;
	}
	if (err < 0) {
		m->metrics->filecache_errors_total++;
		log_event(LOG_ERROR, "file cache not resized for downscale",
			  LF_STR("error", message ? message : log_strerror(err)), LF_END);
		downscale_abort(m, 500, MEM_INTERNAL_ERROR);
		return;
	}
	downscale_finish(m, true, actual);
}

static int downscale_resize_cache(struct memory *m, uint64_t bytes)
{
	struct downscale_ctx *ctx = malloc(sizeof(*ctx));
	int r;

	if (!ctx)
		return -ENOMEM;
	*ctx = (struct downscale_ctx){ .m = m, .id = m->downscale.id, .requested = bytes };
	/* This size supersedes a background one still being retried. */
	m->cache_inflight = 0;
	r = fc_set_size(m->fc, bytes, downscale_cache_done, ctx);
	if (r < 0)
		free(ctx);
	return r;
}

void downscale_start(struct memory *m, uint64_t vm_bytes, bool from_upscale,
		     memory_done_fn done, void *arg)
{
	struct downscale_plan p;
	uint64_t current = 0;
	char err[256];

	downscale_supersede(m, "Superseded by a newer request");
	if (m->cg && cg_read_current(m->cg, &current, err, sizeof(err)) < 0) {
		log_event(LOG_ERROR, "cannot read memory.current", LF_STR("error", err), LF_END);
		done(arg, 500, MEM_INTERNAL_ERROR);
		return;
	}
	m->metrics->memory_current_bytes = current;
	plan_downscale(&m->cfg, vm_bytes, current, m->mem_total, &p);
	m->downscale = (struct memory_downscale){
		.active = true, .from_upscale = from_upscale, .id = ++m->downscale_ids,
		.vm_bytes = vm_bytes, .basis = p.basis, .cache_target = p.cache_target,
		.cache_prev = m->cache_bytes, .cache_prev_known = m->cache_known,
		.done = done, .arg = arg,
	};
	if (!p.ok) {
		downscale_answer(m, false, p.status);
		return;
	}
	if (!m->fc) {
		downscale_finish(m, false, 0);
		return;
	}
	if (downscale_resize_cache(m, p.cache_target) < 0)
		downscale_abort(m, 500, MEM_INTERNAL_ERROR);
}
