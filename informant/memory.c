/* SPDX-License-Identifier: Apache-2.0 */
/*
 * memory.c — the memory policy's inputs: each /upscale, /downscale,
 * sample, memory.high event, timer and Postgres answer is handed to the
 * owners it concerns, in an order that keeps the invariants:
 *
 *  - memory.high ≤ memory.max, and max − high = oom_buffer outside a
 *    raise or a hold;
 *  - a limit is lowered into the workload's buffer only by a checked
 *    downscale;
 *  - the recorded VM size is the agent's once its /upscale was applied;
 *  - the cgroup is frozen at most max_upscale_wait per event.
 *
 * Ordering (defects D11, D13, D20, D22 of the original):
 *  - /upscale thaws at once, records the size, raises the cgroup limits
 *    (only as far as MemTotal shows the memory) and then grows the file
 *    cache in the background;
 *  - a /downscale, and an /upscale whose limits come out lower, shrink the
 *    cache first and only then lower the limits;
 *  - every change of an input (MemTotal, the cache, the raise, a
 *    re-created cgroup) re-plans the limits from the whole state.
 */
#include "memory_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent_proto.h"

#define MEM_NOOP_STATUS "No action taken (no cgroup or file cache enabled)"

bool memory_managed(const struct memory *m)
{
	return m->cgroup || m->filecache;
}

int memory_core_new(const struct config *cfg, struct metrics *metrics,
		    const struct memory_io *io, bool cgroup, bool filecache,
		    struct memory **out)
{
	struct memory *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->cfg = *cfg;
	m->metrics = metrics;
	m->io = *io;
	m->cgroup = cgroup;
	m->filecache = filecache;
	limits_init(m);
	cache_init(m);
	react_init(m);
	predict_init(m);
	*out = m;
	return 0;
}

void memory_core_stop(struct memory *m)
{
	downscale_abort(m, 503, "shutting down");
	react_thaw(m, "shutdown");
	for (int t = 0; t < MEMORY_TIMER__COUNT; t++)
		m->io.arm(m->io.ctx, (enum memory_timer)t, 0);
	m->stopped = true;
}

void memory_core_free(struct memory *m)
{
	if (!m)
		return;
	if (!m->stopped)
		memory_core_stop(m);
	free(m);
}

static const char *meminfo_path(const struct memory *m)
{
	return m->cfg.system.meminfo;
}

int memory_core_start(struct memory *m, const struct memory_sample *first)
{
	char why[256];

	(void)limits_take_mem_total(m, first->mem_total, first->mem_total_err, first->meminfo_read,
				    meminfo_path(m));
	predict_on_sample(m, first);
	if (m->cgroup && m->limits.mem_total &&
	    !plan_buffers_fit(&m->cfg, m->limits.mem_total, why, sizeof(why)))
		log_event(LOG_ERROR, "configured buffers do not fit in this VM",
			  LF_U64("mem_total", m->limits.mem_total), LF_STR("detail", why),
			  LF_STR("hint", "lower the buffer named in detail"), LF_END);
	/* The limits before any Postgres work: the workload must not start
	 * throttled, and Postgres may not be up yet at boot (D13). */
	if (m->cgroup)
		limits_seed(m, "start");
	cache_size(m, "start");
	return limits_sync(m, "start");
}

void memory_upscale_applied(struct memory *m)
{
	m->metrics->upscales_granted_total++;
	predict_upscale_applied(m);
	m->io.upscale_applied(m->io.ctx);
}

/* Read MemTotal now: an /upscale usually follows the hot-plug by a few
 * milliseconds, before the next sample.  True if it changed. */
static bool memory_refresh_mem_total(struct memory *m)
{
	uint64_t mem_total;
	int r = m->io.read_mem_total(m->io.ctx, &mem_total);

	return r == 0 && limits_take_mem_total(m, mem_total, 0, true, meminfo_path(m));
}

int memory_upscale(struct memory *m, uint64_t vm_bytes, memory_done_fn done, void *arg)
{
	struct plan_state st;
	bool mem_total_changed;

	if (m->stopped) {
		done(arg, 503, "shutting down");
		return 0;
	}
	if (!memory_managed(m)) {
		done(arg, 200, "{}");
		return 0;
	}
	if (vm_bytes == 0) {
		done(arg, 400, "memory must be a positive quantity");
		return 0;
	}
	/* The newest word of the agent wins over a downscale still waiting for
	 * Postgres: an upscale never waits behind it. */
	downscale_supersede(m, "Superseded by an upscale");
	react_on_upscale(m); /* thaw now: the agent has answered */
	mem_total_changed = memory_refresh_mem_total(m);
	limits_plan_state(m, &st);
	if (m->cgroup && plan_upscale_shrinks(&m->cfg, &st, vm_bytes)) {
		downscale_start(m, vm_bytes, true, done, arg);
		if (mem_total_changed) {
			/* Acted on whatever the smaller size turns out to be:
			 * after it (the downscale owns the cache meanwhile). */
			cache_size(m, "MemTotal changed");
			limits_stale(m);
		}
		return 0;
	}
	limits_set_vm(m, vm_bytes);
	log_event(LOG_INFO, "upscale received", LF_U64("vm_bytes", vm_bytes),
		  LF_U64("mem_total", m->limits.mem_total), LF_END);
	/* Start the cache first so the limits leave room for its target too. */
	cache_size(m, "upscale");
	if (limits_sync(m, "upscale") < 0) {
		done(arg, 500, MEM_INTERNAL_ERROR);
		return 0;
	}
	memory_upscale_applied(m);
	done(arg, 200, "{}");
	return 0;
}

int memory_downscale(struct memory *m, uint64_t vm_bytes, memory_done_fn done, void *arg)
{
	if (m->stopped) {
		done(arg, 503, "shutting down");
		return 0;
	}
	if (!memory_managed(m)) {
		struct ap_downscale_result res = { .ok = true, .status = MEM_NOOP_STATUS };
		char *body = ap_encode_downscale_result(&res);

		done(arg, body ? 200 : 500, body ? body : MEM_INTERNAL_ERROR);
		free(body);
		return 0;
	}
	if (vm_bytes == 0) {
		done(arg, 400, "memory must be a positive quantity");
		return 0;
	}
	downscale_start(m, vm_bytes, false, done, arg);
	return 0;
}

void memory_on_sample(struct memory *m, const struct memory_sample *s)
{
	bool mem_total_changed;

	if (m->stopped)
		return;
	mem_total_changed = limits_take_mem_total(m, s->mem_total, s->mem_total_err,
						  s->meminfo_read, meminfo_path(m));

	predict_on_sample(m, s);
	if (mem_total_changed)
		cache_size(m, "MemTotal changed");
	/* Re-plan when something changed, a write failed, or a lowering was
	 * held above the workload (usage may allow more now). */
	if (mem_total_changed || !m->limits.in_sync || m->limits.plan.held)
		(void)limits_sync(m, mem_total_changed ? "MemTotal changed" : "sample");
}

bool memory_awaiting_memory(struct memory *m)
{
	return !m->stopped && limits_awaiting_memory(m, mem_now_ms(m));
}

void memory_on_high_events(struct memory *m, uint64_t n)
{
	if (m->stopped)
		return;
	react_on_events(m, n);
}

void memory_on_cgroup_recreated(struct memory *m)
{
	if (m->stopped)
		return;
	if (!m->cgroup)
		return;
	log_event(LOG_WARN, "the cgroup directory was created anew; writing the limits again",
		  LF_END);
	/* The new files hold the kernel's defaults, and nothing is frozen. */
	limits_files_reset(m);
	(void)limits_sync(m, "cgroup re-created");
}

void memory_on_timer(struct memory *m, enum memory_timer t)
{
	if (m->stopped)
		return;
	if (t == MEMORY_TIMER_DOWNSCALE)
		downscale_timeout(m);
	else
		react_on_timer(m, t);
}

void memory_on_cache_result(struct memory *m, uint64_t token, int err, uint64_t requested,
			    uint64_t actual, const char *message)
{
	if (m->stopped)
		return;
	if (downscale_on_cache_result(m, token, err, requested, actual, message))
		return;
	if (token != m->cache.inflight_token && err == 0) {
		/* A superseded request that Postgres carried out anyway: that
		 * is what it holds now; fit the rest to it. */
		cache_learned(m, requested, actual);
		cache_size(m, "superseded cache result");
		(void)limits_sync(m, "superseded cache result");
		return;
	}
	cache_on_result(m, token, err, requested, actual, message);
}

void memory_on_reclaim_result(struct memory *m, uint64_t token, int err, uint64_t reclaimed)
{
	if (!m->stopped)
		downscale_on_reclaim_result(m, token, err, reclaimed);
}

void memory_on_pressure(struct memory *m, const struct cg_pressure *pr,
			enum memory_pressure_kind kind)
{
	if (!m->stopped)
		predict_on_pressure(m, pr, kind);
}

void memory_on_cache_retry(struct memory *m, uint64_t token, int err, uint64_t retry_in_ms,
			   const char *message)
{
	(void)token;
	m->metrics->filecache_errors_total++;
	log_event(LOG_WARN, "file cache size not set yet, retrying",
		  LF_U64("retry_in_ms", retry_in_ms), LF_STR("error", message),
		  LF_STR("errno", log_strerror(err)), LF_END);
}

void memory_get_status(const struct memory *m, struct memory_status *out)
{
	memset(out, 0, sizeof(*out));
	out->cgroup_managed = m->cgroup;
	out->filecache_managed = m->filecache;
	out->vm_bytes = m->limits.vm_bytes;
	out->mem_total_bytes = m->limits.mem_total;
	out->limits_known = m->limits.written && m->limits.files_known;
	out->memory_high = out->limits_known ? m->limits.high : 0;
	out->memory_max = out->limits_known ? m->limits.max : 0;
	out->raised = m->react.sm.raised != 0;
	out->held = m->limits.plan.held || !m->limits.plan.ok || !m->limits.in_sync;
	out->memory_current = m->predict.have_usage ? m->predict.current : 0;
	out->usage = m->predict.have_usage ? m->predict.usage : 0;
	out->usage_is_workload = m->predict.usage_is_workload;
	out->file_cache_bytes = m->cache.bytes;
	out->file_cache_known = m->cache.known;
	out->frozen = m->react.frozen;
	out->ask_pending = m->predict.gate.asked;
	out->growth_bytes_per_sec = mc_ema_rate(&m->predict.ema);
	out->pressure = mc_level_name(m->predict.level);
}

void memory_core_reconfigure(struct memory *m, const struct config *cfg)
{
	/* What a reload applies is the key table's call (config.c): paths, the
	 * cgroup name and the connstr need a restart (the daemon logs that);
	 * buffers, steps and prediction apply at once. */
	config_apply_reload(&m->cfg, cfg, NULL, NULL);
	react_configure(m);
	predict_configure(m);
	cache_size(m, "reconfigure");
	(void)limits_sync(m, "reconfigure");
}
