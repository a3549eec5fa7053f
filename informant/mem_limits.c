/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mem_limits.c — owns the VM size, MemTotal and the limits the cgroup's
 * files hold.  The only writer of memory.max and memory.high.
 *
 * limits_sync() is idempotent: it plans from the whole state (plan.h) and
 * writes only what differs, so every owner that changes an input — a new
 * VM size, MemTotal, the cache, the raise — just calls it.  A failed write
 * leaves the limits out of sync and the next sample tries again.  What
 * /status and /metrics report is what the files hold: nothing while that
 * is unknown (after a failed write, in a re-created cgroup).  The hold rule
 * keeps judging against what we last wrote, so restoring limits into
 * reset files is never taken for a lowering.
 */
#include "memory_internal.h"

#include <errno.h>
#include <string.h>

void limits_init(struct memory *m)
{
	memset(&m->limits, 0, sizeof(m->limits));
}

void limits_plan_state(const struct memory *m, struct plan_state *st)
{
	memset(st, 0, sizeof(*st));
	st->vm_bytes = m->limits.vm_bytes;
	st->mem_total = m->limits.mem_total;
	st->cache = (struct plan_cache){
		.known = m->cache.known, .bytes = m->cache.bytes,
		.inflight = m->cache.inflight, .cap = m->cache.cap,
	};
	st->planned = m->limits.plan.ok;
	st->planned_max = m->limits.plan.base_max;
	st->planned_high = m->limits.plan.base_high;
	st->raise_high = react_raise(m);
	st->written = m->limits.written;
	st->written_max = m->limits.max;
	st->written_high = m->limits.high;
	st->growth_bps = mc_ema_rate(&m->predict.ema);
}

static void limits_publish(struct memory *m)
{
	bool known = m->limits.written && m->limits.files_known;

	m->metrics->memory_max_bytes = known ? m->limits.max : 0;
	m->metrics->memory_high_bytes = known ? m->limits.high : 0;
}

void limits_seed(struct memory *m, const char *reason)
{
	uint64_t max, high;
	char err[512];

	m->limits.in_sync = false;
	if (m->io.read_limits(m->io.ctx, &max, &high, err, sizeof(err)) < 0) {
		log_event(LOG_WARN, "cannot read the cgroup limits", LF_STR("reason", reason),
			  LF_STR("error", err), LF_END);
		m->limits.written = m->limits.files_known = false;
	} else {
		m->limits.written = m->limits.files_known = true;
		m->limits.max = max;
		m->limits.high = high;
	}
	limits_publish(m);
}

void limits_stale(struct memory *m)
{
	m->limits.in_sync = false;
}

void limits_files_reset(struct memory *m)
{
	m->limits.files_known = false;
	m->limits.in_sync = false;
	limits_publish(m);
}

/* One file; what it holds is unknown after a failure. */
static int limits_write_one(struct memory *m, enum memory_limit which, uint64_t bytes,
			    const char *reason)
{
	char err[512];
	uint64_t dropped;
	int r;

	r = m->io.write_limit(m->io.ctx, which, bytes, err, sizeof(err));
	if (r == 0)
		return 0;
	m->limits.files_known = false;
	limits_publish(m);
	if (log_limit_allow(&m->limits.write_err_log, mem_now_ms(m), 1000, &dropped))
		log_event(LOG_ERROR, "cannot write cgroup limits", LF_STR("reason", reason),
			  LF_STR("error", err), LF_U64("failures_not_logged", dropped),
			  LF_STR("hint", "retried at every sample"), LF_END);
	return r;
}

static int limits_write(struct memory *m, uint64_t max, uint64_t high, const char *reason)
{
	int r;

	if (max == 0 || high == 0) {
		/* A zero limit would OOM-kill or stall the whole workload. */
		log_event(LOG_ERROR, "refusing to write a zero cgroup limit", LF_STR("reason", reason),
			  LF_U64("memory_max", max), LF_U64("memory_high", high), LF_END);
		return -ERANGE;
	}
	/* Never let the kernel see memory.high above memory.max: raise max
	 * first, lower high first. */
	if (m->limits.files_known && high < m->limits.high) {
		r = limits_write_one(m, MEMORY_LIMIT_HIGH, high, reason);
		if (r == 0)
			r = limits_write_one(m, MEMORY_LIMIT_MAX, max, reason);
	} else {
		r = limits_write_one(m, MEMORY_LIMIT_MAX, max, reason);
		if (r == 0)
			r = limits_write_one(m, MEMORY_LIMIT_HIGH, high, reason);
	}
	if (r < 0)
		return r;
	m->limits.written = m->limits.files_known = true;
	m->limits.max = max;
	m->limits.high = high;
	limits_publish(m);
	return 0;
}

/* Usage and memory.current now, for the hold rule: read afresh (a
 * lowering is rare and the last sample may be 100 ms old), else the last
 * sample, else "everything" (hold every lowering). */
static void limits_current_now(struct memory *m, struct plan_state *st)
{
	uint64_t usage, current;

	if (predict_usage_now(m, &usage, &current)) {
		st->current = usage;
		st->memory_current = current;
	} else {
		st->current = st->memory_current = UINT64_MAX;
	}
}

static bool limits_lower(const struct memory *m, const struct plan_limits *p)
{
	return m->limits.written && (p->high < m->limits.high || p->max < m->limits.max);
}

static void limits_log_plan(struct memory *m, const char *reason)
{
	const struct plan_limits *p = &m->limits.plan;

	log_event(LOG_INFO, "cgroup limits set", LF_STR("reason", reason),
		  LF_U64("memory_max", p->max), LF_U64("memory_high", p->high),
		  LF_U64("computed_memory_high", p->base_high), LF_BOOL("held", p->held),
		  LF_U64("vm_bytes", m->limits.vm_bytes), LF_U64("mem_total", m->limits.mem_total),
		  LF_U64("file_cache", p->reserved), LF_END);
}

int limits_sync(struct memory *m, const char *reason)
{
	struct plan_state st;
	struct plan_limits p;
	uint64_t old_base_high = m->limits.plan.base_high;
	bool was_ok = m->limits.plan.ok;
	int r;

	if (!m->cgroup)
		return 0;
	if (m->downscale.active) {
		/* Between its steps the downscale owns the next write; the
		 * first sample after it plans again. */
		m->limits.in_sync = false;
		return 0;
	}
	limits_plan_state(m, &st);
	plan_limits(&m->cfg, &st, &p);
	if (p.ok && limits_lower(m, &p)) {
		limits_current_now(m, &st);
		plan_limits(&m->cfg, &st, &p);
	}
	if (!p.ok) {
		if (was_ok || m->limits.in_sync)
			log_event(LOG_WARN, "cgroup limits not written", LF_STR("reason", reason),
				  LF_STR("why", p.why), LF_U64("vm_bytes", m->limits.vm_bytes),
				  LF_U64("mem_total", m->limits.mem_total), LF_END);
		m->limits.plan = p;
		m->limits.in_sync = false;
		return 0;
	}
	m->limits.plan = p;
	if (m->limits.files_known && p.max == m->limits.max && p.high == m->limits.high) {
		m->limits.in_sync = true;
	} else {
		r = limits_write(m, p.max, p.high, reason);
		m->limits.in_sync = r == 0;
		if (r < 0)
			return r;
		limits_log_plan(m, reason);
	}
	if (!was_ok || p.base_high != old_base_high)
		react_base_changed(m, p.base_high);
	return 0;
}

int limits_write_exact(struct memory *m, uint64_t max, uint64_t high, uint64_t vm_bytes,
		       const char *reason)
{
	int r = limits_write(m, max, high, reason);

	if (r < 0)
		return r;
	/* The next sync plans from the new state and agrees with this. */
	m->limits.in_sync = false;
	log_event(LOG_INFO, "cgroup limits set", LF_STR("reason", reason),
		  LF_U64("memory_max", max), LF_U64("memory_high", high),
		  LF_U64("vm_bytes", vm_bytes), LF_END);
	return 0;
}

void limits_set_vm(struct memory *m, uint64_t vm_bytes)
{
	bool grows = vm_bytes > m->limits.vm_bytes;

	m->limits.vm_bytes = vm_bytes;
	m->metrics->vm_memory_bytes = vm_bytes;
	/* A grant MemTotal does not show yet: the memory is on its way. */
	m->limits.awaiting_memory =
		grows && plan_basis(&m->cfg, vm_bytes, 0) > m->limits.mem_total;
	m->limits.awaiting_until_ms = mem_now_ms(m) + MEM_HOTPLUG_WAIT_MS;
}

bool limits_awaiting_memory(struct memory *m, uint64_t now_ms)
{
	if (m->limits.awaiting_memory && now_ms >= m->limits.awaiting_until_ms)
		m->limits.awaiting_memory = false;
	return m->limits.awaiting_memory;
}

/* A meminfo without MemTotal is said once, at once, with the file named;
 * again only after it was fine in between or the problem changed. */
static void limits_mem_total_problem(struct memory *m, int err, bool read, const char *path)
{
	if (err == m->limits.mem_total_err)
		return;
	m->limits.mem_total_err = err;
	if (!read)
		log_event(LOG_ERROR, "cannot read the meminfo file", LF_STR("meminfo", path),
			  LF_ERR(err), LF_STR("hint", "check [system] meminfo"), LF_END);
	else
		log_event(LOG_ERROR,
			  err == -ENOENT ? "the meminfo file has no MemTotal line"
					 : "the meminfo file has a malformed MemTotal line",
			  LF_STR("meminfo", path), LF_ERR(err),
			  LF_STR("hint", "limits keep the last MemTotal until it is readable"),
			  LF_END);
}

bool limits_take_mem_total(struct memory *m, uint64_t mem_total, int err, bool read,
			   const char *path)
{
	if (err) {
		limits_mem_total_problem(m, err, read, path);
		return false;
	}
	if (m->limits.mem_total_err) {
		log_event(LOG_INFO, "MemTotal readable again", LF_STR("meminfo", path), LF_END);
		m->limits.mem_total_err = 0;
	}
	if (mem_total == m->limits.mem_total)
		return false;
	log_event(LOG_INFO, "MemTotal changed", LF_U64("from", m->limits.mem_total),
		  LF_U64("to", mem_total), LF_END);
	if (mem_total > m->limits.mem_total)
		m->limits.awaiting_memory = false; /* the grant arrived */
	m->limits.mem_total = mem_total;
	return true;
}
