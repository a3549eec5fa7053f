/* SPDX-License-Identifier: Apache-2.0 */
/*
 * memory.c — limits from the VM size, /upscale and /downscale, and the file
 * cache.  The memory.high reaction and the sampler are in pressure.c.
 *
 * Ordering (see the protocol notes on defects D11, D13, D20, D22):
 *  - /upscale raises the cgroup limits at once (and so ends a freeze), then
 *    grows the file cache in the background, retried until Postgres takes
 *    it; the limits always leave room for the larger of the cache Postgres
 *    holds and the one being set, so the two never overlap past the VM.
 *  - /downscale shrinks the cache first and only then lowers the limits;
 *    if the limits cannot be written the old cache size is restored.
 *  - The limits are computed from one basis: the agent's size minus the sys
 *    buffer, never more than MemTotal (memory that has not arrived yet is
 *    not handed out); a MemTotal change recomputes them.
 */
#include "memory_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_proto.h"
#include "log.h"
#include "plan.h"

#define MEM_NOOP_STATUS "No action taken (no cgroup or file cache enabled)"

bool memory_managed(const struct memory *m)
{
	return m->cfg.cgroup.enabled || m->cfg.filecache.enabled;
}

/* The cache size the limits must leave room for. */
uint64_t memory_cache_reserved(const struct memory *m)
{
	uint64_t basis = plan_basis(&m->cfg, m->vm_bytes, m->mem_total);
	uint64_t reserved, inflight;

	if (!m->cfg.filecache.enabled || !m->cfg.filecache.in_memory)
		return 0;
	if (m->cache_known)
		reserved = m->cache_bytes;
	else /* not set yet: assume the target, capped once the cap is known */
		reserved = plan_cache_target(&m->cfg, basis);
	inflight = m->cache_inflight < m->cache_cap ? m->cache_inflight : m->cache_cap;
	return reserved > inflight ? reserved : inflight;
}

int memory_write_limits(struct memory *m, uint64_t max, uint64_t high, const char *reason)
{
	char err[512];
	int r;

	if (m->limits_written && m->limit_max == max && m->limit_high == high)
		return 0;
	if (max == 0 || high == 0) {
		/* A zero limit would OOM-kill or stall the whole workload. */
		log_event(LOG_ERROR, "refusing to write a zero cgroup limit", LF_STR("reason", reason),
			  LF_U64("memory_max", max), LF_U64("memory_high", high), LF_END);
		return -ERANGE;
	}
	/* max before high, as the original: a high above max is never seen. */
	r = cg_write_max(m->cg, max, err, sizeof(err));
	if (r == 0)
		r = cg_write_high(m->cg, high, err, sizeof(err));
	if (r < 0) {
		log_event(LOG_ERROR, "cannot write cgroup limits", LF_STR("cgroup", cg_path(m->cg)),
			  LF_STR("reason", reason), LF_STR("error", err), LF_END);
		return r;
	}
	m->limit_max = max;
	m->limit_high = high;
	m->limits_written = true;
	m->metrics->memory_max_bytes = max;
	m->metrics->memory_high_bytes = high;
	log_event(LOG_INFO, "cgroup limits set", LF_STR("reason", reason),
		  LF_U64("memory_max", max), LF_U64("memory_high", high),
		  LF_U64("vm_bytes", m->vm_bytes), LF_U64("mem_total", m->mem_total),
		  LF_U64("file_cache", memory_cache_reserved(m)), LF_END);
	return 1;
}

/* Lowering memory.high below what the workload uses (plus the buffer)
 * would throttle or OOM it: only the checked downscale path does that. */
static bool memory_lowering_unsafe(struct memory *m, uint64_t high, const char *reason)
{
	uint64_t current = 0;
	char err[256];

	if (!m->limits_written || high >= m->limit_high)
		return false;
	if (cg_read_current(m->cg, &current, err, sizeof(err)) < 0)
		current = m->metrics->memory_current_bytes; /* the last we know */
	if (current <= UINT64_MAX - m->cfg.cgroup.memory_high_buffer &&
	    high >= current + m->cfg.cgroup.memory_high_buffer)
		return false;
	log_event(LOG_WARN, "not lowering the cgroup limits into the running workload",
		  LF_STR("reason", reason), LF_U64("memory_high", high),
		  LF_U64("memory_current", current), LF_U64("kept_memory_high", m->limit_high), LF_END);
	return true;
}

/* The limits the current state asks for. */
static void memory_computed_limits(const struct memory *m, uint64_t *max, uint64_t *high)
{
	plan_limits(&m->cfg, plan_basis(&m->cfg, m->vm_bytes, m->mem_total),
		    memory_cache_reserved(m), max, high);
}

int memory_apply_limits(struct memory *m, const char *reason)
{
	uint64_t basis = plan_basis(&m->cfg, m->vm_bytes, m->mem_total), max, high;
	char why[256];
	int r;

	if (!m->cg || m->downscale.active)
		return 0;
	if (basis == 0) {
		/* Never write memory.max = 0: it would OOM-kill the workload. */
		log_event(LOG_WARN, "cgroup limits not written: no memory size known yet",
			  LF_STR("reason", reason), LF_STR("meminfo", m->cfg.system.meminfo), LF_END);
		return 0;
	}
	if (!plan_buffers_fit(&m->cfg, basis, why, sizeof(why))) {
		/* A size smaller than the buffers is not a VM we can run in
		 * (garbage in meminfo, or an absurd agent number). */
		log_event(LOG_ERROR, "cgroup limits not written: the memory size is smaller than "
			  "the buffers", LF_STR("reason", reason), LF_U64("vm_bytes", m->vm_bytes),
			  LF_U64("mem_total", m->mem_total), LF_STR("detail", why), LF_END);
		return 0;
	}
	memory_computed_limits(m, &max, &high);
	if (memory_lowering_unsafe(m, high, reason))
		return 0;
	r = memory_write_limits(m, max, high, reason);
	if (r > 0)
		cg_react_on_limits_written(&m->react);
	return r < 0 ? r : 0;
}

/* One background resize: what was asked, to tell a completion of an older
 * request from the newest one. */
struct memory_resize {
	struct memory *m;
	uint64_t requested;
};

static void memory_cache_retry(void *arg, int err, uint32_t retry_in_ms, const char *message)
{
	struct memory_resize *rs = arg;

	rs->m->metrics->filecache_errors_total++;
	log_event(LOG_WARN, "file cache size not set yet, retrying", LF_U64("bytes", rs->requested),
		  LF_U64("retry_in_ms", retry_in_ms), LF_STR("error", message), LF_ERR(err), LF_END);
}

void memory_cache_learned(struct memory *m, uint64_t requested, uint64_t actual)
{
	m->cache_known = true;
	m->cache_bytes = actual;
	/* Less than asked (both whole MiB) means Postgres's maximum capped it. */
	if (actual < requested)
		m->cache_cap = actual;
	m->metrics->file_cache_bytes = actual;
}

static void memory_cache_done(void *arg, int err, uint64_t actual, const char *message)
{
	struct memory_resize rs = *(struct memory_resize *)arg;
	struct memory *m = rs.m;

	free(arg);
	if (m->cache_inflight == rs.requested)
		m->cache_inflight = 0;
	if (err == -ECANCELED)
		return; /* superseded by a newer size, which reports itself */
	if (err < 0) {
		m->metrics->filecache_errors_total++;
		log_event(LOG_ERROR, "file cache size not set", LF_U64("bytes", rs.requested),
			  LF_STR("error", message), LF_END);
		return;
	}
	memory_cache_learned(m, rs.requested, actual);
	log_event(LOG_INFO, "file cache size set", LF_U64("bytes", actual),
		  LF_U64("requested", rs.requested), LF_END);
	(void)memory_apply_limits(m, "file cache set");
}

void memory_size_cache(struct memory *m, uint64_t bytes, const char *reason)
{
	struct memory_resize *rs;
	uint64_t target = bytes;
	int r;

	if (!m->fc)
		return;
	if (!target)
		target = plan_cache_target(&m->cfg,
					   plan_basis(&m->cfg, m->vm_bytes, m->mem_total));
	if (m->cache_inflight == target && target)
		return; /* already on its way */
	if (!m->cache_inflight && m->cache_known &&
	    m->cache_bytes == (target < m->cache_cap ? target : m->cache_cap))
		return; /* already there */
	rs = malloc(sizeof(*rs));
	if (!rs) {
		log_event(LOG_ERROR, "out of memory for a file cache resize", LF_END);
		return;
	}
	*rs = (struct memory_resize){ .m = m, .requested = target };
	r = fc_ensure_size(m->fc, target, memory_cache_done, memory_cache_retry, rs);
	if (r < 0) {
		free(rs);
		log_event(LOG_ERROR, "cannot start setting the file cache size",
			  LF_STR("reason", reason), LF_U64("bytes", target), LF_ERR(r), LF_END);
		return;
	}
	m->cache_inflight = target;
	log_event(LOG_DEBUG, "file cache size requested", LF_STR("reason", reason),
		  LF_U64("bytes", target), LF_END);
}

/* Would an /upscale to vm_bytes lower the limits written now?  Then it is
 * a downscale in disguise (a smaller size, or the first /upscale after a
 * restart) and must shrink the cache first and pass the check (D12, D20). */
static bool memory_upscale_lowers(struct memory *m, uint64_t vm_bytes)
{
	uint64_t vm_prev = m->vm_bytes, max, high;

	if (!m->cg || !m->limits_written)
		return false;
	m->vm_bytes = vm_bytes;
	memory_computed_limits(m, &max, &high);
	m->vm_bytes = vm_prev;
	return max < m->limit_max || high < m->limit_high;
}

int memory_upscale(struct memory *m, uint64_t vm_bytes, memory_done_fn done, void *arg)
{
	if (!memory_managed(m)) {
		done(arg, 200, "{}");
		return 0;
	}
	if (vm_bytes == 0) {
		done(arg, 400, "memory must be a positive quantity");
		return 0;
	}
	/* The newest word of the agent wins over a downscale still waiting for
	 * Postgres (defect: an upscale must never wait behind it). */
	downscale_supersede(m, "Superseded by an upscale");
	pressure_refresh_mem_total(m);
	if (memory_upscale_lowers(m, vm_bytes)) {
		downscale_start(m, vm_bytes, true, done, arg);
		pressure_limits_written(m, true); /* thaw now: the agent has answered */
		return 0;
	}
	m->vm_bytes = vm_bytes;
	m->metrics->vm_memory_bytes = vm_bytes;
	log_event(LOG_INFO, "upscale received", LF_U64("vm_bytes", vm_bytes), LF_END);
	/* Start the cache first so the limits leave room for its target too. */
	memory_size_cache(m, 0, "upscale");
	if (memory_apply_limits(m, "upscale") < 0) {
		pressure_limits_written(m, true); /* still thaw at once */
		done(arg, 500, MEM_INTERNAL_ERROR);
		return 0;
	}
	pressure_limits_written(m, true);
	done(arg, 200, "{}");
	return 0;
}

int memory_downscale(struct memory *m, uint64_t vm_bytes, memory_done_fn done, void *arg)
{
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

static void memory_fc_readable(void *arg, uint32_t events)
{
	struct memory *m = arg;
	int r;

	(void)events;
	r = fc_process(m->fc);
	if (r < 0)
		log_event(LOG_WARN, "file cache connection processing failed", LF_ERR(r), LF_END);
}

int memory_new(struct loop *loop, const struct config *cfg, struct metrics *metrics,
	       memory_request_upscale_fn request_upscale, void *request_arg, struct memory **out)
{
	struct memory *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->loop = loop;
	m->cfg = *cfg;
	m->metrics = metrics;
	m->request_upscale = request_upscale;
	m->request_arg = request_arg;
	m->cache_cap = UINT64_MAX;
	*out = m;
	return 0;
}

static int memory_open_cgroup(struct memory *m)
{
	char err[512];
	int r;

	r = cg_open(m->cfg.cgroup.root, m->cfg.cgroup.name, &m->cg, err, sizeof(err));
	if (r < 0) {
		log_event(LOG_ERROR, "cannot open the cgroup", LF_STR("root", m->cfg.cgroup.root),
			  LF_STR("name", m->cfg.cgroup.name), LF_STR("error", err),
			  LF_STR("hint", "create it (cgroup v2) or set [cgroup] enabled = false"),
			  LF_END);
		return r;
	}
	log_event(LOG_INFO, "cgroup opened and thawed", LF_STR("path", cg_path(m->cg)),
		  LF_BOOL("cgroupfs", cg_is_cgroupfs(m->cg)), LF_END);
	return 0;
}

static int memory_open_filecache(struct memory *m)
{
	struct fc_pg_config pg = {
		.connstr = m->cfg.filecache.connstr,
		.size_setting = m->cfg.filecache.size_setting,
		.max_size_setting = m->cfg.filecache.max_size_setting,
		.connect_timeout_ms = m->cfg.filecache.connect_timeout_ms,
		.query_timeout_ms = 1000,
	};
	char err[512];
	int r;

	r = fc_new(&pg, &m->fc, err, sizeof(err));
	if (r < 0) {
		log_event(LOG_ERROR, "cannot set up the file cache", LF_STR("error", err), LF_END);
		return r;
	}
	if (fc_connstr_resolves_names(m->cfg.filecache.connstr))
		log_event(LOG_WARN, "the file cache connection names a host: libpq resolves it "
			  "synchronously, which can stall the event loop",
			  LF_STR("connstr", fc_connstr_display(m->fc)),
			  LF_STR("hint", "use an IP address, hostaddr=, or a socket directory"), LF_END);
	r = loop_add_fd(m->loop, fc_fd(m->fc), EPOLLIN, memory_fc_readable, m);
	if (r < 0) {
		log_event(LOG_ERROR, "cannot watch the file cache connection", LF_ERR(r), LF_END);
		fc_free(m->fc);
		m->fc = NULL;
	}
	return r;
}

/* Buffers larger than the VM leave the workload no room at all: say so
 * once, loudly, with the key to change. */
static void memory_check_buffers(const struct memory *m)
{
	char why[256];

	if (m->cg && m->mem_total && !plan_buffers_fit(&m->cfg, m->mem_total, why, sizeof(why)))
		log_event(LOG_ERROR, "configured buffers do not fit in this VM",
			  LF_U64("mem_total", m->mem_total), LF_STR("detail", why),
			  LF_STR("hint", "lower the buffer named in detail"), LF_END);
}

int memory_start(struct memory *m)
{
	int r;

	if (m->cfg.cgroup.enabled) {
		r = memory_open_cgroup(m);
		if (r < 0)
			return r;
	}
	if (m->cfg.filecache.enabled) {
		r = memory_open_filecache(m);
		if (r < 0)
			return r;
	}
	/* MemTotal first, then the limits before any Postgres work (the
	 * workload must not start throttled), then the cache in the
	 * background: Postgres may not be up yet at boot (D13). */
	r = pressure_start(m);
	if (r < 0)
		return r;
	memory_check_buffers(m);
	memory_size_cache(m, 0, "start");
	r = memory_apply_limits(m, "start");
	return r < 0 ? r : 0;
}

void memory_free(struct memory *m)
{
	char err[512];

	if (!m)
		return;
	downscale_abort(m, 503, "shutting down");
	pressure_stop(m);
	if (m->fc) {
		(void)loop_del_fd(m->loop, fc_fd(m->fc));
		fc_free(m->fc);
	}
	if (m->cg && cg_close(m->cg, err, sizeof(err)) < 0)
		log_event(LOG_ERROR, "cgroup may be left frozen: thaw failed at exit",
			  LF_STR("error", err), LF_END);
	free(m);
}

void memory_get_status(const struct memory *m, struct memory_status *out)
{
	memset(out, 0, sizeof(*out));
	out->cgroup_managed = m->cg != NULL;
	out->filecache_managed = m->fc != NULL;
	out->vm_bytes = m->vm_bytes;
	out->mem_total_bytes = m->mem_total;
	out->memory_high = m->limit_high;
	out->memory_max = m->limit_max;
	out->memory_current = m->have_sample && m->last_sample.cg_current_ok ?
				      m->last_sample.cg_current : 0;
	out->file_cache_bytes = m->cache_bytes;
	out->file_cache_known = m->cache_known;
	out->frozen = m->frozen;
	out->waiting_on_upscale = m->react.waiting;
	out->growth_bytes_per_sec = mc_ema_rate(&m->ema);
	out->pressure = mc_level_name(m->level);
}

void memory_reconfigure(struct memory *m, const struct config *cfg)
{
	/* Paths, the cgroup name and the connstr need a restart (the daemon
	 * logs that); buffers, steps and prediction apply at once. */
	m->cfg.cgroup.oom_buffer = cfg->cgroup.oom_buffer;
	m->cfg.cgroup.memory_high_buffer = cfg->cgroup.memory_high_buffer;
	m->cfg.cgroup.max_upscale_wait_ms = cfg->cgroup.max_upscale_wait_ms;
	m->cfg.cgroup.min_freeze_interval_ms = cfg->cgroup.min_freeze_interval_ms;
	m->cfg.cgroup.memory_high_step = cfg->cgroup.memory_high_step;
	m->cfg.cgroup.memory_high_step_interval_ms = cfg->cgroup.memory_high_step_interval_ms;
	m->cfg.system.sys_buffer = cfg->system.sys_buffer;
	m->cfg.filecache.resource_multiplier = cfg->filecache.resource_multiplier;
	m->cfg.filecache.min_remaining_after_cache = cfg->filecache.min_remaining_after_cache;
	m->cfg.filecache.spread_factor = cfg->filecache.spread_factor;
	m->cfg.predict = cfg->predict;
	m->cfg.sampler = cfg->sampler;
	pressure_reconfigure(m);
	memory_size_cache(m, 0, "reconfigure");
	(void)memory_apply_limits(m, "reconfigure");
}
