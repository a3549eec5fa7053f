/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pressure.c — reacting to memory pressure on the loop thread.
 *
 * Two sources feed it: the cgroup's memory.events watcher (a memory.high
 * event → the cg_react state machine decides to freeze, ask, raise, thaw)
 * and the shared sampler (every [sampler] interval: MemTotal changes, a
 * safety-net poll of memory.events, and the growth estimate that asks for
 * an upscale *before* memory.high is reached).
 *
 * The freeze bound does not depend on the state machine alone: every
 * freeze arms freeze_guard for max_upscale_wait, which thaws
 * unconditionally, and a failed thaw is retried every millisecond.
 */
#include "memory_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

#define PRESSURE_THAW_RETRY_NS 1000000u /* 1 ms */

static void pressure_apply(struct memory *m, const struct cg_react_action *a);

static double pressure_ms_since(uint64_t since_ns)
{
	return (double)(loop_now_ns() - since_ns) / 1e6;
}

void pressure_thaw(struct memory *m, const char *why)
{
	struct cg_react_action a;
	char err[512];
	double frozen_ms;

	if (!m->frozen)
		return;
	if (cg_thaw(m->cg, err, sizeof(err)) < 0) {
		uint64_t dropped;

		if (log_limit_allow(&m->thaw_err_log, loop_now_ms(), 1000, &dropped))
			log_event(LOG_ERROR, "CANNOT THAW the cgroup, retrying every millisecond",
				  LF_STR("cgroup", cg_path(m->cg)), LF_STR("reason", why),
				  LF_STR("error", err), LF_U64("failures_not_logged", dropped),
				  LF_END);
		cg_react_on_thaw_failed(&m->react, loop_now_ms(), &a);
		(void)loop_timer_arm_ns(m->freeze_guard, PRESSURE_THAW_RETRY_NS, 0);
		pressure_apply(m, &a);
		return;
	}
	frozen_ms = pressure_ms_since(m->frozen_since_ns);
	m->frozen = false;
	(void)loop_timer_arm(m->freeze_guard, 0, 0);
	m->metrics->frozen_seconds_total += frozen_ms / 1e3;
	m->metrics->last_freeze_ms = frozen_ms;
	log_event(LOG_INFO, "cgroup thawed", LF_STR("reason", why), LF_MS("frozen_ms", frozen_ms),
		  LF_END);
}

static void pressure_freeze(struct memory *m)
{
	char err[512];
	int r;

	r = cg_freeze(m->cg, err, sizeof(err));
	if (r < 0) {
		/* Half-written freeze: make sure it is undone. */
		log_event(LOG_ERROR, "cannot freeze the cgroup", LF_STR("error", err), LF_END);
		m->frozen = true;
		m->frozen_since_ns = loop_now_ns();
		pressure_thaw(m, "freeze failed");
		return;
	}
	m->frozen = true;
	m->frozen_since_ns = loop_now_ns();
	m->metrics->freezes_total++;
	/* The hard bound, armed at the moment of freezing. */
	r = loop_timer_arm(m->freeze_guard, m->cfg.cgroup.max_upscale_wait_ms, 0);
	if (r < 0) {
		log_event(LOG_ERROR, "cannot arm the freeze bound, thawing now", LF_ERR(r), LF_END);
		pressure_thaw(m, "no freeze bound");
		return;
	}
	log_event(LOG_INFO, "cgroup frozen, asking for upscale",
		  LF_U64("max_wait_ms", m->cfg.cgroup.max_upscale_wait_ms), LF_END);
}

static void pressure_set_high(struct memory *m, uint64_t high)
{
	char err[512];

	if (cg_write_high(m->cg, high, err, sizeof(err)) < 0) {
		log_event(LOG_ERROR, "cannot raise memory.high", LF_U64("bytes", high),
			  LF_STR("error", err), LF_END);
		return;
	}
	/* m->limit_high tracks the file, so the next computed write differs
	 * and puts the computed value back. */
	if (high > m->limit_high)
		m->metrics->memory_high_raises_total++;
	log_event(LOG_INFO, high > m->limit_high ? "memory.high raised" : "memory.high lowered back",
		  LF_U64("memory_high", high), LF_U64("was", m->limit_high), LF_END);
	m->limit_high = high;
	m->metrics->memory_high_bytes = high;
}

static void pressure_apply(struct memory *m, const struct cg_react_action *a)
{
	uint64_t now = loop_now_ms();

	if (a->freeze && !m->frozen)
		pressure_freeze(m);
	if (a->request_upscale && m->request_upscale(m->request_arg, false) < 0)
		log_event(LOG_WARN, "upscale request not sent", LF_END);
	if (a->set_high)
		pressure_set_high(m, a->new_high);
	if (a->thaw)
		pressure_thaw(m, "reaction");
	if (a->has_deadline) {
		uint64_t delay = a->deadline_ms > now ? a->deadline_ms - now : 0;
		/* 0 would disarm: a due deadline runs in the next round. */
		(void)loop_timer_arm_ns(m->react_timer, delay ? delay * 1000000u : 1, 0);
	}
}

static void pressure_events(struct memory *m, uint64_t n, const char *source)
{
	struct cg_react_action a;
	uint64_t high = m->limit_high, max = m->limit_max;
	char err[256];

	if (!n)
		return;
	m->metrics->memory_high_events_total += n;
	/* The raise adds to what the file holds (the kernel rounds to pages). */
	if (cg_read_high(m->cg, &high, err, sizeof(err)) < 0 ||
	    cg_read_max(m->cg, &max, err, sizeof(err)) < 0)
		log_event(LOG_WARN, "cannot read limits, using the last written",
			  LF_STR("error", err), LF_END);
	log_event(LOG_DEBUG, "memory.high event", LF_U64("count", n), LF_STR("source", source),
		  LF_END);
	cg_react_on_event(&m->react, loop_now_ms(), high, max, &a);
	pressure_apply(m, &a);
}

/* A broken memory.events shows on every tick: say so once a second. */
static void pressure_watch_error(struct memory *m, const char *what, const char *err)
{
	uint64_t dropped;

	if (log_limit_allow(&m->watch_err_log, loop_now_ms(), 1000, &dropped))
		log_event(LOG_WARN, what, LF_STR("error", err), LF_U64("repeats_not_logged", dropped),
			  LF_END);
}

static void pressure_watch_readable(void *arg, uint32_t events)
{
	struct memory *m = arg;
	uint64_t n = 0;
	char err[512];

	(void)events;
	if (cg_watch_process(m->cg, &n, err, sizeof(err)) < 0)
		pressure_watch_error(m, "memory.events watch", err);
	pressure_events(m, n, "inotify");
}

static void pressure_react_timer(void *arg)
{
	struct memory *m = arg;
	struct cg_react_action a;

	cg_react_on_timer(&m->react, loop_now_ms(), &a);
	pressure_apply(m, &a);
}

static void pressure_freeze_guard(void *arg)
{
	struct memory *m = arg;

	if (!m->frozen)
		return;
	pressure_react_timer(m);
	if (m->frozen)
		pressure_thaw(m, "freeze bound");
}

void pressure_limits_written(struct memory *m, bool upscale)
{
	struct cg_react_action a;

	if (!m->cg || !upscale)
		return;
	cg_react_on_upscale(&m->react, loop_now_ms(), &a);
	pressure_apply(m, &a);
	pressure_thaw(m, "upscale arrived"); /* whatever the state machine says */
}

/* Ask before memory.high is reached: when memory.current, growing at its
 * EMA rate, would reach memory.high within the horizon, or has reached the
 * critical share of it.  Rate-limited; the reaction's own asks win. */
static void pressure_predict(struct memory *m, const struct mc_sample *s)
{
	uint64_t high = m->limit_high, ttl;
	bool soon;

	if (!m->cfg.predict.enabled || !m->cg || !s->cg_current_ok || !m->limits_written ||
	    high == 0 || high == CG_UNLIMITED)
		return;
	(void)mc_ema_update(&m->ema, s->ts_ms, s->cg_current);
	m->level = mc_level_next(&m->level_cfg, m->level, s->cg_current, high);
	ttl = mc_ema_time_to_limit(&m->ema, s->cg_current, high);
	soon = ttl <= m->cfg.predict.horizon_ms;
	if (!soon && m->level != MC_LEVEL_CRITICAL)
		return;
	/* While frozen the reaction has just asked; otherwise the agent set
	 * rate-limits repeated asks, so a wish left open does not mute us. */
	if (m->frozen)
		return;
	if (m->last_predict_ms && s->ts_ms - m->last_predict_ms < m->cfg.predict.min_interval_ms)
		return;
	m->last_predict_ms = s->ts_ms;
	log_event(LOG_INFO, "memory.high predicted, asking for upscale",
		  LF_U64("memory_current", s->cg_current), LF_U64("memory_high", high),
		  LF_DBL("growth_bytes_per_sec", mc_ema_rate(&m->ema)),
		  LF_U64("ms_to_high", ttl == UINT64_MAX ? 0 : ttl),
		  LF_STR("level", mc_level_name(m->level)), LF_END);
	if (m->request_upscale(m->request_arg, true) < 0)
		log_event(LOG_WARN, "predictive upscale request not sent", LF_END);
}

/* Takes a sample's MemTotal; true if it changed (and says so in the log). */
static bool pressure_take_mem_total(struct memory *m, const struct mc_sample *s)
{
	if (!s->mem.mem_total_ok || s->mem.mem_total == m->mem_total)
		return false;
	log_event(LOG_INFO, "MemTotal changed", LF_U64("from", m->mem_total),
		  LF_U64("to", s->mem.mem_total), LF_END);
	m->mem_total = s->mem.mem_total;
	return true;
}

void pressure_refresh_mem_total(struct memory *m)
{
	struct mc_sample s;

	if (m->sampler && mc_sampler_read(m->sampler, &s) == 0)
		(void)pressure_take_mem_total(m, &s);
}

static void pressure_mem_total(struct memory *m, const struct mc_sample *s)
{
	if (!pressure_take_mem_total(m, s))
		return;
	memory_size_cache(m, 0, "MemTotal changed");
	(void)memory_apply_limits(m, "MemTotal changed");
}

static int pressure_on_sample(void *arg, const struct mc_sample *s)
{
	struct memory *m = arg;
	uint64_t n = 0;
	char err[512];

	m->last_sample = *s;
	m->have_sample = true;
	if (s->cg_current_ok)
		m->metrics->memory_current_bytes = s->cg_current;
	pressure_mem_total(m, s);
	if (m->cg) {
		/* Safety net for a missed notification (defect D3). */
		if (cg_watch_poll(m->cg, &n, err, sizeof(err)) < 0)
			pressure_watch_error(m, "memory.events poll", err);
		pressure_events(m, n, "poll");
	}
	pressure_predict(m, s);
	return 0;
}

static void pressure_on_sampler_error(void *arg, int err, const char *what)
{
	(void)arg;
	log_event(LOG_WARN, "sampler", LF_STR("step", what), LF_ERR(err), LF_END);
}

static void pressure_sampler_readable(void *arg, uint32_t events)
{
	struct memory *m = arg;
	int r;

	(void)events;
	r = mc_sampler_process(m->sampler);
	if (r < 0)
		log_event(LOG_ERROR, "sampler timer failed", LF_ERR(r), LF_END);
}

static void pressure_configure(struct memory *m)
{
	struct cg_react_config rc;
	double crit = m->cfg.predict.critical_ratio;

	cg_react_config_default(&rc);
	rc.max_upscale_wait_ms = m->cfg.cgroup.max_upscale_wait_ms;
	rc.min_freeze_interval_ms = m->cfg.cgroup.min_freeze_interval_ms;
	rc.memory_high_step = m->cfg.cgroup.memory_high_step;
	rc.memory_high_step_interval_ms = m->cfg.cgroup.memory_high_step_interval_ms;
	m->react.cfg = rc;
	/* Critical at critical_ratio, warning 10 points below, 5-point
	 * hysteresis (smaller for tiny ratios so the config stays valid). */
	m->level_cfg.critical = crit;
	m->level_cfg.warning = crit > 0.2 ? crit - 0.1 : crit / 2;
	m->level_cfg.hysteresis = m->level_cfg.warning > 0.1 ? 0.05 : m->level_cfg.warning / 2;
}

static int pressure_start_sampler(struct memory *m)
{
	char cgdir[2 * CONFIG_STR_MAX + 2], err[512];
	struct mc_sampler_config sc = {
		.meminfo_path = m->cfg.system.meminfo,
		/* System-wide PSI: the contract allows only six files in the
		 * cgroup, and memory.pressure is not one of them. */
		.psi_path = "/proc/pressure/memory",
		.interval_ms = m->cfg.sampler.interval_ms ? m->cfg.sampler.interval_ms : 1000,
		.immediate = true,
	};
	struct mc_sample first;
	int r;

	if (m->cg) {
		snprintf(cgdir, sizeof(cgdir), "%s", cg_path(m->cg));
		sc.cgroup_dir = cgdir;
	}
	r = mc_sampler_new(&sc, pressure_on_sample, pressure_on_sampler_error, m, &m->sampler, err,
			   sizeof(err));
	if (r < 0) {
		log_event(LOG_ERROR, "cannot set up the sampler", LF_STR("error", err), LF_END);
		return r;
	}
	(void)mc_sampler_read(m->sampler, &first);
	if (first.mem.mem_total_ok)
		m->mem_total = first.mem.mem_total;
	else
		log_event(LOG_WARN, "cannot read MemTotal yet; limits wait for it",
			  LF_STR("meminfo", m->cfg.system.meminfo), LF_END);
	if (!m->cfg.sampler.interval_ms)
		return 0; /* sampling off: MemTotal read once, no prediction */
	r = loop_add_fd(m->loop, mc_sampler_fd(m->sampler), EPOLLIN, pressure_sampler_readable, m);
	if (r == 0)
		r = mc_sampler_start(m->sampler);
	if (r < 0)
		log_event(LOG_ERROR, "cannot start the sampler", LF_ERR(r), LF_END);
	return r;
}

static int pressure_start_watch(struct memory *m)
{
	char err[512];
	int r;

	r = cg_watch_start(m->cg, err, sizeof(err));
	if (r < 0) {
		log_event(LOG_ERROR, "cannot watch memory.events", LF_STR("error", err), LF_END);
		return r;
	}
	r = loop_add_fd(m->loop, cg_watch_fd(m->cg), EPOLLIN, pressure_watch_readable, m);
	if (r == 0)
		r = loop_timer_new(m->loop, pressure_react_timer, m, &m->react_timer);
	if (r == 0)
		r = loop_timer_new(m->loop, pressure_freeze_guard, m, &m->freeze_guard);
	if (r < 0)
		log_event(LOG_ERROR, "cannot set up the memory.high reaction", LF_ERR(r), LF_END);
	return r;
}

int pressure_start(struct memory *m)
{
	struct cg_react_config rc;
	int r;

	cg_react_config_default(&rc);
	cg_react_init(&m->react, &rc);
	pressure_configure(m);
	(void)mc_ema_init(&m->ema, MC_EMA_ALPHA_DEFAULT);
	m->level = MC_LEVEL_NORMAL;
	if (m->cg) {
		r = pressure_start_watch(m);
		if (r < 0)
			return r;
	}
	return pressure_start_sampler(m);
}

void pressure_stop(struct memory *m)
{
	if (m->sampler) {
		(void)loop_del_fd(m->loop, mc_sampler_fd(m->sampler));
		mc_sampler_free(m->sampler);
		m->sampler = NULL;
	}
	if (m->cg && cg_watch_fd(m->cg) >= 0)
		(void)loop_del_fd(m->loop, cg_watch_fd(m->cg));
	if (m->frozen)
		pressure_thaw(m, "shutdown");
	loop_timer_free(m->react_timer);
	loop_timer_free(m->freeze_guard);
	m->react_timer = m->freeze_guard = NULL;
}

void pressure_reconfigure(struct memory *m)
{
	int r;

	pressure_configure(m);
	if (!m->sampler)
		return;
	if (mc_sampler_running(m->sampler) != (m->cfg.sampler.interval_ms != 0)) {
		log_event(LOG_WARN, "turning sampling on or off needs a restart", LF_END);
		return;
	}
	if (!m->cfg.sampler.interval_ms)
		return;
	r = mc_sampler_set_interval(m->sampler, m->cfg.sampler.interval_ms);
	if (r < 0)
		log_event(LOG_WARN, "sampler interval not changed", LF_ERR(r), LF_END);
}
