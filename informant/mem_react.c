/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mem_react.c — owns the reaction to memory.high events: the freeze, the
 * thaw, the raise of memory.high and their timers.  cg_react decides; this
 * file performs its actions.
 *
 * The freeze bound does not rest on the state machine alone: every freeze
 * arms the thaw guard for max_upscale_wait, which thaws unconditionally,
 * and a failed thaw is retried every millisecond.  The raise is a floor
 * handed to the limits owner (mem_limits.c), which writes memory.high; an
 * upscale leaves the floor in place until the computed limits catch up
 * with it, so memory that has been granted but not hot-plugged yet never
 * costs the workload its raise.
 */
#include "memory_internal.h"

#include <string.h>

#define REACT_THAW_RETRY_NS 1000000u /* 1 ms */

static void react_apply(struct memory *m, const struct cg_react_action *a);

void react_init(struct memory *m)
{
	struct cg_react_config rc;

	memset(&m->react, 0, sizeof(m->react));
	cg_react_config_default(&rc);
	cg_react_init(&m->react.sm, &rc);
	react_configure(m);
}

void react_configure(struct memory *m)
{
	struct cg_react_config *rc = &m->react.sm.cfg;

	rc->max_upscale_wait_ms = m->cfg.cgroup.max_upscale_wait_ms;
	rc->min_freeze_interval_ms = m->cfg.cgroup.min_freeze_interval_ms;
	rc->memory_high_step = m->cfg.cgroup.memory_high_step;
	rc->memory_high_step_interval_ms = m->cfg.cgroup.memory_high_step_interval_ms;
}

uint64_t react_raise(const struct memory *m)
{
	return m->react.sm.raised;
}

void react_thaw(struct memory *m, const char *why)
{
	struct cg_react_action a;
	uint64_t dropped, now_ns;
	double frozen_ms;
	char err[512];

	if (!m->react.frozen)
		return;
	if (m->io.set_frozen(m->io.ctx, false, err, sizeof(err)) < 0) {
		if (log_limit_allow(&m->react.thaw_err_log, mem_now_ms(m), 1000, &dropped))
			log_event(LOG_ERROR, "CANNOT THAW the cgroup, retrying every millisecond",
				  LF_STR("reason", why), LF_STR("error", err),
				  LF_U64("failures_not_logged", dropped), LF_END);
		cg_react_on_thaw_failed(&m->react.sm, mem_now_ms(m), &a);
		m->io.arm(m->io.ctx, MEMORY_TIMER_THAW_GUARD, REACT_THAW_RETRY_NS);
		react_apply(m, &a);
		return;
	}
	now_ns = m->io.now_ns(m->io.ctx);
	frozen_ms = (double)(now_ns - m->react.frozen_since_ns) / 1e6;
	m->react.frozen = false;
	m->metrics->frozen = false;
	m->io.arm(m->io.ctx, MEMORY_TIMER_THAW_GUARD, 0);
	m->metrics->frozen_seconds_total += frozen_ms / 1e3;
	m->metrics->last_freeze_seconds = frozen_ms / 1e3;
	log_event(LOG_INFO, "cgroup thawed", LF_STR("reason", why), LF_MS("frozen_ms", frozen_ms),
		  LF_END);
}

static void react_freeze(struct memory *m)
{
	char err[512];

	m->react.frozen = true;
	m->metrics->frozen = true;
	m->react.frozen_since_ns = m->io.now_ns(m->io.ctx);
	if (m->io.set_frozen(m->io.ctx, true, err, sizeof(err)) < 0) {
		/* Perhaps half-written: make sure it is undone. */
		log_event(LOG_ERROR, "cannot freeze the cgroup", LF_STR("error", err), LF_END);
		react_thaw(m, "freeze failed");
		return;
	}
	m->metrics->freezes_total++;
	/* The hard bound, armed at the moment of freezing. */
	m->io.arm(m->io.ctx, MEMORY_TIMER_THAW_GUARD,
		  (m->cfg.cgroup.max_upscale_wait_ms ? m->cfg.cgroup.max_upscale_wait_ms : 1) *
			  1000000u);
	log_event(LOG_INFO, "cgroup frozen",
		  LF_U64("max_wait_ms", m->cfg.cgroup.max_upscale_wait_ms), LF_END);
}

static void react_apply(struct memory *m, const struct cg_react_action *a)
{
	uint64_t now = mem_now_ms(m);

	if (a->freeze && !m->react.frozen)
		react_freeze(m);
	if (a->want_memory)
		predict_want(m, false, "memory.high event");
	if (a->raise_changed) {
		if (m->react.sm.raised > m->limits.high && m->limits.written)
			m->metrics->memory_high_raises_total++;
		(void)limits_sync(m, m->react.sm.raised ? "memory.high raised"
							: "memory.high raise ended");
	}
	if (a->thaw)
		react_thaw(m, "reaction");
	if (a->has_deadline) {
		uint64_t delay = a->deadline_ms > now ? a->deadline_ms - now : 0;

		/* 0 would disarm: a due deadline runs in the next round. */
		m->io.arm(m->io.ctx, MEMORY_TIMER_REACT, delay ? delay * 1000000u : 1);
	}
}

/* An event is pressure when the workload (with its buffer) reaches
 * memory.high.  Otherwise it is page cache the kernel reclaimed at
 * memory.high — nothing to freeze for, nothing to ask — or an event from
 * before an upscale that has since moved memory.high. */
static bool react_pressure(struct memory *m, uint64_t n)
{
	uint64_t usage, current;

	if (!m->limits.written || !predict_usage_now(m, &usage, &current) ||
	    usage + m->cfg.cgroup.memory_high_buffer >= m->limits.high)
		return true;
	m->metrics->memory_high_cache_events_total += n;
	log_event(LOG_DEBUG, "memory.high event without pressure", LF_U64("count", n),
		  LF_U64("usage", usage), LF_U64("memory_current", current),
		  LF_U64("memory_high", m->limits.high), LF_END);
	return false;
}

void react_on_events(struct memory *m, uint64_t n)
{
	struct cg_react_action a;

	if (!n || !m->cgroup)
		return;
	m->metrics->memory_high_events_total += n;
	if (!react_pressure(m, n))
		return;
	log_event(LOG_DEBUG, "memory.high event", LF_U64("count", n), LF_END);
	cg_react_on_event(&m->react.sm, mem_now_ms(m),
			  m->limits.written ? m->limits.high : CG_UNLIMITED,
			  m->limits.written ? m->limits.max : CG_UNLIMITED, &a);
	react_apply(m, &a);
}

void react_on_upscale(struct memory *m)
{
	struct cg_react_action a;

	if (!m->cgroup)
		return;
	cg_react_on_upscale(&m->react.sm, mem_now_ms(m), &a);
	react_apply(m, &a);
	react_thaw(m, "upscale arrived"); /* whatever the state machine says */
}

void react_on_timer(struct memory *m, enum memory_timer t)
{
	struct cg_react_action a;

	if (t == MEMORY_TIMER_THAW_GUARD && !m->react.frozen)
		return;
	cg_react_on_timer(&m->react.sm, mem_now_ms(m), m->limits.plan.base_high, &a);
	react_apply(m, &a);
	if (t == MEMORY_TIMER_THAW_GUARD && m->react.frozen)
		react_thaw(m, "freeze bound");
}

void react_base_changed(struct memory *m, uint64_t base_high)
{
	if (cg_react_on_base(&m->react.sm, base_high))
		log_event(LOG_INFO, "memory.high raise ended: the limits caught up",
			  LF_U64("memory_high", base_high), LF_END);
}

void react_drop_raise(struct memory *m)
{
	cg_react_drop_raise(&m->react.sm);
}
