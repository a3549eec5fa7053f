/* SPDX-License-Identifier: Apache-2.0 */
/*
 * downscale.c — PUT /downscale: decide with plan_downscale(), shrink the
 * file cache first (Postgres, asynchronous), then lower the cgroup limits,
 * then answer.  Only one downscale runs at a time; an /upscale that arrives
 * while Postgres is busy wins, and the downscale is answered Ok:false.
 * If the limits cannot be written after the cache shrank, the old cache
 * size is restored (defect D22).
 */
#include "memory_int.h"

#include <stdio.h>
#include <stdlib.h>

#include "agent_proto.h"
#include "log.h"
#include "plan.h"

/* Ends the downscale in progress: answers 200 with a DownscaleResult. */
static void downscale_answer(struct memory *m, bool ok, const char *status)
{
	struct memory_downscale ds = m->downscale;
	struct ap_downscale_result res = { .ok = ok };
	char *body;

	m->downscale.active = false;
	snprintf(res.status, sizeof(res.status), "%s", status);
	if (ok)
		m->metrics->downscales_accepted_total++;
	else
		m->metrics->downscales_rejected_total++;
	log_event(ok ? LOG_INFO : LOG_WARN, ok ? "downscale accepted" : "downscale refused",
		  LF_U64("vm_bytes", ds.vm_bytes), LF_STR("status", status), LF_END);
	body = ap_encode_downscale_result(&res);
	if (!body) {
		ds.done(ds.arg, 500, MEM_INTERNAL_ERROR);
		return;
	}
	ds.done(ds.arg, 200, body);
	free(body);
}

void downscale_abort(struct memory *m, unsigned http_status, const char *body)
{
	struct memory_downscale ds = m->downscale;

	if (!ds.active)
		return;
	m->downscale.active = false;
	log_event(LOG_ERROR, "downscale failed", LF_U64("vm_bytes", ds.vm_bytes),
		  LF_U64("http_status", http_status), LF_STR("error", body), LF_END);
	ds.done(ds.arg, http_status, body);
}

/* The cache is at its new size (or not managed): lower the limits. */
static void downscale_finish(struct memory *m, bool cache_set, uint64_t cache)
{
	struct memory_downscale *ds = &m->downscale;
	char status[AP_STATUS_MAX];
	uint64_t max = 0, high = 0;

	if (ds->generation != m->generation) {
		ds->active = false;
		memory_size_cache(m, 0, "downscale superseded");
		(void)memory_apply_limits(m, "downscale superseded");
		ds->active = true;
		downscale_answer(m, false, "Superseded by an upscale that arrived meanwhile");
		return;
	}
	if (m->cg) {
		uint64_t vm_prev = m->vm_bytes;

		plan_limits(&m->cfg, ds->basis, cache, &max, &high);
		m->vm_bytes = ds->vm_bytes; /* so the limits' log line shows the new size */
		if (memory_write_limits(m, max, high, "downscale") < 0) {
			m->vm_bytes = vm_prev;
			if (cache_set && ds->cache_prev_known)
				memory_size_cache(m, ds->cache_prev, "downscale rollback");
			downscale_abort(m, 500, MEM_INTERNAL_ERROR);
			return;
		}
		cg_react_on_limits_written(&m->react);
	}
	m->vm_bytes = ds->vm_bytes;
	m->metrics->vm_memory_bytes = m->vm_bytes;
	if (plan_accept_status(status, sizeof(status), cache_set, cache, m->cg != NULL, high,
			       max) < 0)
		snprintf(status, sizeof(status), "Downscale applied");
	downscale_answer(m, true, status);
}

static void downscale_cache_done(void *arg, int err, uint64_t actual, const char *message)
{
	struct memory *m = arg;

	if (!m->downscale.active)
		return;
	if (err < 0) {
		m->metrics->filecache_errors_total++;
		log_event(LOG_ERROR, "file cache not resized for downscale",
			  LF_STR("error", message ? message : log_strerror(err)), LF_END);
		downscale_abort(m, 500, MEM_INTERNAL_ERROR);
		return;
	}
	memory_cache_learned(m, m->downscale.cache_target, actual);
	downscale_finish(m, true, actual);
}

void downscale_start(struct memory *m, uint64_t vm_bytes, memory_done_fn done, void *arg)
{
	struct downscale_plan p;
	uint64_t current = 0;
	char err[256];
	int r;

	if (m->downscale.active) {
		done(arg, 409, "another downscale is in progress");
		return;
	}
	if (m->cg && cg_read_current(m->cg, &current, err, sizeof(err)) < 0) {
		log_event(LOG_ERROR, "cannot read memory.current", LF_STR("error", err), LF_END);
		done(arg, 500, MEM_INTERNAL_ERROR);
		return;
	}
	m->metrics->memory_current_bytes = current;
	plan_downscale(&m->cfg, vm_bytes, current, &p);
	m->downscale = (struct memory_downscale){
		.active = true, .vm_bytes = vm_bytes, .basis = p.basis,
		.cache_target = p.cache_target, .cache_prev = m->cache_bytes,
		.cache_prev_known = m->cache_known, .generation = m->generation,
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
	/* This size supersedes a background one still being retried. */
	m->cache_inflight = 0;
	r = fc_set_size(m->fc, p.cache_target, downscale_cache_done, m);
	if (r < 0)
		downscale_abort(m, 500, MEM_INTERNAL_ERROR);
}
