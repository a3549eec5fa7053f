/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mem_downscale.c — owns one downscale's life: PUT /downscale, and an
 * /upscale whose computed limits come out lower than the current ones (a
 * smaller size, or the first /upscale after a restart, whose basis drops
 * the sys buffer).
 *
 * Decide with plan_downscale(); if the workload fits but page cache
 * does not, ask the kernel to reclaim it (memory.reclaim, off the loop)
 * and decide again on memory.current; shrink the file cache (Postgres,
 * asynchronous), then write the new limits exactly (this is the one path
 * allowed to lower them into the workload's buffer), then answer.  One
 * runs at a time; a newer /upscale or /downscale supersedes it: a
 * /downscale is answered Ok:false, a shrinking /upscale 200 {} (the agent
 * treats any 4xx on /upscale as fatal for the connection) — both change
 * nothing.  Its late cache result only updates what we know of the cache.
 * If the limits cannot be written after the cache shrank, the old cache
 * size is restored (D22); any failure re-applies the limits that fit the
 * state as it is.
 */
#include "memory_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "agent_proto.h"

/* Hands the answer over and ends the request (done may start another). */
static void downscale_end(struct memory *m, unsigned http_status, const char *body)
{
	struct mem_downscale ds = m->downscale;

	m->downscale.active = false;
	m->io.arm(m->io.ctx, MEMORY_TIMER_DOWNSCALE, 0);
	if (ds.reclaiming) /* never reclaim for a downscale that is over */
		m->io.reclaim_cancel(m->io.ctx, ds.token);
	m->downscale.reclaiming = false;
	ds.done(ds.arg, http_status, body);
	cache_after_downscale(m);
}

/* The decision: a DownscaleResult for /downscale; "{}" either way for a
 * shrinking /upscale (refused = the current limits stay). */
static void downscale_answer(struct memory *m, bool ok, const char *status)
{
	const struct mem_downscale *ds = &m->downscale;
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
	cache_size(m, reason);
	(void)limits_sync(m, reason);
}

void downscale_abort(struct memory *m, unsigned http_status, const char *body)
{
	if (!m->downscale.active)
		return;
	m->metrics->downscales_failed_total++;
	log_event(LOG_ERROR, m->downscale.from_upscale ? "smaller upscale failed" : "downscale failed",
		  LF_U64("vm_bytes", m->downscale.vm_bytes), LF_U64("http_status", http_status),
		  LF_STR("error", body), LF_END);
	/* A smaller /upscale is told {} whatever happened (limits kept): the
	 * agent drops the connection on an error to /upscale. */
	if (m->downscale.from_upscale && http_status == 500)
		downscale_end(m, 200, "{}");
	else
		downscale_end(m, http_status, body);
	downscale_reapply(m, "downscale failed");
}

void downscale_timeout(struct memory *m)
{
	char status[128];

	if (!m->downscale.active)
		return;
	snprintf(status, sizeof(status),
		 "Downscale not done within %u ms (reclaim or file cache too slow): nothing changed",
		 (unsigned)MEM_DOWNSCALE_DEADLINE_MS);
	downscale_answer(m, false, status);
	downscale_reapply(m, "downscale timed out");
}

void downscale_supersede(struct memory *m, const char *why)
{
	if (m->downscale.active)
		downscale_answer(m, false, why);
}

/* The check was made when the request came; Postgres took its time since.
 * Look again before the write: a memory.max below memory.current makes
 * the kernel reclaim in the writer (the loop) and OOM-kill what it cannot.
 * Refuses (and puts the cache back) when the limits no longer fit. */
static bool downscale_still_fits(struct memory *m, uint64_t high, bool cache_set)
{
	struct mem_downscale *ds = &m->downscale;
	uint64_t usage, current;
	char status[AP_STATUS_MAX];

	if (!predict_usage_fresh(m, &usage, &current)) {
		if (cache_set && ds->cache_prev_known)
			cache_restore(m, ds->cache_prev, "downscale rollback");
		downscale_abort(m, 500, MEM_INTERNAL_ERROR);
		return false;
	}
	if (usage + m->cfg.cgroup.memory_high_buffer <= high &&
	    current + m->cfg.cgroup.memory_high_buffer <= high)
		return true;
	if (usage + m->cfg.cgroup.memory_high_buffer > high)
		plan_usage_refusal(&m->cfg, high, usage, status, sizeof(status));
	else
		plan_reclaim_refusal(&m->cfg, high, current, 0, status, sizeof(status));
	if (cache_set && ds->cache_prev_known)
		cache_restore(m, ds->cache_prev, "downscale rollback");
	downscale_answer(m, false, status);
	downscale_reapply(m, "downscale refused after the cache step");
	return false;
}

/* The cache is at its new size (or not managed): lower the limits. */
static void downscale_finish(struct memory *m, bool cache_set, uint64_t cache)
{
	struct mem_downscale *ds = &m->downscale;
	char status[AP_STATUS_MAX];
	bool from_upscale = ds->from_upscale;
	uint64_t max = 0, high = 0;

	if (m->cgroup) {
		plan_base_limits(&m->cfg, ds->plan.basis,
				 m->cfg.filecache.in_memory ? cache : 0, &max, &high);
		if (!downscale_still_fits(m, high, cache_set))
			return;
		if (limits_write_exact(m, max, high, ds->vm_bytes,
				       from_upscale ? "smaller upscale" : "downscale") < 0) {
			if (cache_set && ds->cache_prev_known)
				cache_restore(m, ds->cache_prev, "downscale rollback");
			downscale_abort(m, 500, MEM_INTERNAL_ERROR);
			return;
		}
		react_drop_raise(m);
	}
	limits_set_vm(m, ds->vm_bytes);
	if (plan_accept_status(status, sizeof(status), cache_set, cache, m->cgroup, high, max) < 0)
		snprintf(status, sizeof(status), "Downscale applied");
	downscale_answer(m, true, status);
	if (from_upscale)
		memory_upscale_applied(m);
	(void)limits_sync(m, "downscale applied");
}

bool downscale_on_cache_result(struct memory *m, uint64_t token, int err, uint64_t requested,
			       uint64_t actual, const char *message)
{
	if (!m->downscale.active || m->downscale.token != token)
		return false;
	if (err == 0)
		cache_learned(m, requested, actual);
	if (err < 0) {
		m->metrics->filecache_errors_total++;
		log_event(LOG_ERROR, "file cache not resized for downscale",
			  LF_STR("error", message ? message : log_strerror(err)), LF_END);
		downscale_abort(m, 500, MEM_INTERNAL_ERROR);
		return true;
	}
	downscale_finish(m, true, actual);
	return true;
}

/* The decision stands (and the page cache, if any had to go, is gone):
 * the cache first, then the limits. */
static void downscale_resize(struct memory *m)
{
	uint64_t token;
	int r;

	if (!m->filecache) {
		downscale_finish(m, false, 0);
		return;
	}
	/* This size supersedes a background one still being retried. */
	token = cache_next_token(m);
	cache_forget_inflight(m);
	r = m->io.cache_set(m->io.ctx, m->downscale.plan.cache_target, false, token);
	if (r < 0) {
		log_event(LOG_ERROR, "cannot start resizing the file cache", LF_ERR(r), LF_END);
		downscale_abort(m, 500, MEM_INTERNAL_ERROR);
		return;
	}
	m->downscale.token = token;
}

void downscale_on_reclaim_result(struct memory *m, uint64_t token, int err, uint64_t reclaimed)
{
	struct mem_downscale *ds = &m->downscale;
	uint64_t usage, current;
	char status[AP_STATUS_MAX];

	if (!ds->active || !ds->reclaiming || ds->token != token)
		return; /* superseded: what the kernel dropped stays dropped */
	ds->reclaiming = false;
	m->metrics->reclaimed_bytes_total += reclaimed;
	log_event(err ? LOG_WARN : LOG_INFO, "page cache reclaimed for a downscale",
		  LF_U64("asked", ds->plan.reclaim), LF_U64("reclaimed", reclaimed),
		  LF_STR("result", err ? log_strerror(err) : "all of it"), LF_END);
	if (!predict_usage_fresh(m, &usage, &current)) {
		downscale_abort(m, 500, MEM_INTERNAL_ERROR);
		return;
	}
	if (current + m->cfg.cgroup.memory_high_buffer > ds->plan.new_high) {
		plan_reclaim_refusal(&m->cfg, ds->plan.new_high, current, reclaimed, status,
				     sizeof(status));
		downscale_answer(m, false, status);
		return;
	}
	downscale_resize(m);
}

/* Page cache must go before the limits: the kernel reclaims it, off the
 * loop, bounded in time.  Where memory.reclaim does not exist the decision
 * falls back to memory.current, as on kernels without it. */
static void downscale_reclaim(struct memory *m, const struct plan_state *st, uint64_t current)
{
	struct mem_downscale *ds = &m->downscale;
	uint64_t token = cache_next_token(m);
	int r = m->io.reclaim(m->io.ctx, ds->plan.reclaim, token);

	if (r < 0) {
		log_event(r == -ENOENT ? LOG_DEBUG : LOG_WARN,
			  "no reclaim: the downscale is judged on memory.current", LF_ERR(r), LF_END);
		plan_downscale(&m->cfg, st, ds->vm_bytes, current, current, &ds->plan);
		if (!ds->plan.ok)
			downscale_answer(m, false, ds->plan.status);
		else
			downscale_resize(m);
		return;
	}
	m->metrics->reclaims_total++;
	ds->reclaiming = true;
	ds->token = token;
	log_event(LOG_INFO, "reclaiming page cache for a downscale", LF_U64("bytes", ds->plan.reclaim),
		  LF_U64("memory_current", current), LF_U64("new_memory_high", ds->plan.new_high),
		  LF_END);
}

void downscale_start(struct memory *m, uint64_t vm_bytes, bool from_upscale,
		     memory_done_fn done, void *arg)
{
	struct plan_state st;
	struct plan_downscale p;
	uint64_t usage = 0, current = 0;

	downscale_supersede(m, "Superseded by a newer request");
	if (m->cgroup && !predict_usage_fresh(m, &usage, &current)) {
		log_event(LOG_ERROR, "cannot read memory.current", LF_END);
		done(arg, 500, MEM_INTERNAL_ERROR);
		return;
	}
	limits_plan_state(m, &st);
	plan_downscale(&m->cfg, &st, vm_bytes, current, usage, &p);
	m->downscale = (struct mem_downscale){
		.active = true, .from_upscale = from_upscale, .vm_bytes = vm_bytes, .plan = p,
		.cache_prev = m->cache.bytes, .cache_prev_known = m->cache.known,
		.done = done, .arg = arg,
	};
	m->io.arm(m->io.ctx, MEMORY_TIMER_DOWNSCALE, MEM_DOWNSCALE_DEADLINE_MS * 1000000ull);
	if (!p.ok)
		downscale_answer(m, false, p.status);
	else if (p.reclaim)
		downscale_reclaim(m, &st, current);
	else
		downscale_resize(m);
}
