/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mem_predict.c — owns what the samples say about the workload (memory.current,
 * its EMA growth, the pressure level) and the asks for memory.
 *
 * Asks come from two sides — a memory.high event (mem_react.c) and a
 * sample that predicts memory.high within the horizon or finds usage
 * critical — and all of them pass one gate (plan_gate_*): the first goes
 * out at once, an unanswered wish is asked again after 2, 4, then every
 * 8 s; an applied upscale starts the series over.  While granted memory
 * has not shown up in MemTotal yet, nobody asks (the agent just gave).
 *
 * The level (for /status and the logs) is judged against the memory.high
 * the files hold; when that changes (an upscale, a downscale, a raise) it
 * is judged afresh, so hysteresis from the old limits cannot keep
 * "critical" alive.  Asks never rest on hysteresis: plan_need_memory()
 * applies the critical share as it is.
 */
#include "memory_internal.h"

#include <string.h>

/* A stall without a trigger: "some" grew by 100 ms within about a second
 * (the trigger's own threshold). */
#define PREDICT_STALL_US 100000u
#define PREDICT_STALL_WINDOW_MS 1000u
/* Page cache read again within 1–2 s of a stall: 4 MiB of 4 KiB pages.
 * A scan that is read once refaults almost nothing (a few hundred pages of
 * program text in the VM test), a working set that does not fit
 * refaults all it reads (tens of thousands of pages a second there). */
#define PREDICT_REFAULT_PAGES 1024u

void predict_init(struct memory *m)
{
	memset(&m->predict, 0, sizeof(m->predict));
	(void)mc_ema_init(&m->predict.ema, MC_EMA_ALPHA_DEFAULT);
	m->predict.level = MC_LEVEL_NORMAL;
	m->predict.ms_to_high = UINT64_MAX;
	plan_gate_reset(&m->predict.gate);
	predict_configure(m);
}

void predict_configure(struct memory *m)
{
	plan_level_config(&m->cfg, &m->predict.level_cfg);
}

/* What decisions use: the workload (memory.current without reclaimable
 * page cache) where memory.stat is known and the rule is on, else
 * memory.current.  Page cache is the kernel's to drop at memory.high; it
 * is not the workload's need. */
static uint64_t usage_of(const struct memory *m, uint64_t current, const struct cg_memory_stat *st,
			 bool stat_ok, bool *is_workload)
{
	*is_workload = stat_ok && m->cfg.cgroup.exclude_page_cache;
	return *is_workload ? cg_workload_bytes(current, st) : current;
}

bool predict_usage_fresh(struct memory *m, uint64_t *usage, uint64_t *current)
{
	struct cg_memory_stat st;
	bool stat_ok = false, workload;
	char err[256];

	if (!m->cgroup || m->io.read_current(m->io.ctx, current, err, sizeof(err)) < 0)
		return false;
	if (m->cfg.cgroup.exclude_page_cache)
		stat_ok = m->io.read_stat(m->io.ctx, &st, err, sizeof(err)) == 0;
	*usage = usage_of(m, *current, &st, stat_ok, &workload);
	return true;
}

bool predict_usage_now(struct memory *m, uint64_t *usage, uint64_t *current)
{
	if (predict_usage_fresh(m, usage, current))
		return true;
	if (!m->predict.have_usage)
		return false;
	*usage = m->predict.usage;
	*current = m->predict.current;
	return true;
}

void predict_upscale_applied(struct memory *m)
{
	plan_gate_reset(&m->predict.gate);
}

static const char *need_name(enum plan_need need)
{
	return need == PLAN_NEED_PREDICTED ? "predicted" : "critical";
}

/* May an ask go out now? */
static bool predict_gate_open(struct memory *m, bool predicted, uint64_t now)
{
	/* A freeze has just asked (or could not); the sample's view adds
	 * nothing until it ends. */
	if (predicted && m->react.frozen)
		return false;
	if (limits_awaiting_memory(m, now))
		return false;
	return plan_gate_allows(&m->cfg, &m->predict.gate, now, predicted, NULL);
}

static void predict_ask(struct memory *m, bool predicted, const char *why, uint64_t now)
{
	struct mem_predict *p = &m->predict;

	plan_gate_asked(&p->gate, now);
	log_event(LOG_INFO, "asking for upscale", LF_STR("reason", why),
		  LF_BOOL("predicted", predicted), LF_STR("pressure", mc_level_name(p->level)),
		  LF_U64("next_ask_after_ms", p->gate.step_ms), LF_END);
	m->io.ask(m->io.ctx, predicted);
}

void predict_want(struct memory *m, bool predicted, const char *why)
{
	uint64_t now = mem_now_ms(m);

	if (predict_gate_open(m, predicted, now))
		predict_ask(m, predicted, why, now);
}

/* Judge one sample: level, time to memory.high, and whether to ask. */
static void predict_judge(struct memory *m, uint64_t now)
{
	struct mem_predict *p = &m->predict;
	uint64_t high = m->limits.high;
	enum mc_level prev;
	enum plan_need need;

	if (!m->limits.written || high == 0 || high == CG_UNLIMITED) {
		p->level = MC_LEVEL_NORMAL;
		m->metrics->pressure_level = p->level;
		p->ms_to_high = UINT64_MAX;
		return;
	}
	prev = high == p->level_high ? p->level : MC_LEVEL_NORMAL;
	p->level_high = high;
	p->level = mc_level_next(&p->level_cfg, prev, p->usage, high);
	m->metrics->pressure_level = p->level;
	p->ms_to_high = mc_ema_time_to_limit(&p->ema, p->usage, high);
	need = plan_need_memory(&m->cfg, p->usage, high, p->ms_to_high);
	if (need == PLAN_NEED_NONE || !predict_gate_open(m, true, now))
		return;
	/* "Never" has no number: the key is left out rather than 0 ("now"). */
	if (p->ms_to_high == UINT64_MAX)
		log_event(LOG_INFO, "more memory needed", LF_STR("why", need_name(need)),
			  LF_U64("usage", p->usage), LF_U64("memory_current", p->current),
			  LF_U64("memory_high", high),
			  LF_DBL("growth_bytes_per_sec", mc_ema_rate(&p->ema)),
			  LF_STR("pressure", mc_level_name(p->level)), LF_END);
	else
		log_event(LOG_INFO, "more memory needed", LF_STR("why", need_name(need)),
			  LF_U64("usage", p->usage), LF_U64("memory_current", p->current),
			  LF_U64("memory_high", high),
			  LF_DBL("growth_bytes_per_sec", mc_ema_rate(&p->ema)),
			  LF_U64("ms_to_high", p->ms_to_high),
			  LF_STR("pressure", mc_level_name(p->level)), LF_END);
	predict_ask(m, true, need_name(need), now);
}

/* Refaults at the start of each second, so a stall sees those of the
 * last one to two seconds. */
static void predict_track_refaults(struct mem_predict *p, const struct memory_sample *s,
				   uint64_t now)
{
	if (!s->stat_ok || !s->stat.has_refault_file) {
		p->have_refaults = false;
		return;
	}
	if (!p->have_refaults || s->stat.refault_file < p->refaults) {
		/* First reading, or a re-created cgroup started counting anew. */
		p->refaults_mark = p->refaults_prev_mark = s->stat.refault_file;
		p->refaults_mark_ms = now;
	} else if (now - p->refaults_mark_ms >= PREDICT_STALL_WINDOW_MS) {
		p->refaults_prev_mark = p->refaults_mark;
		p->refaults_mark = s->stat.refault_file;
		p->refaults_mark_ms = now;
	}
	p->refaults = s->stat.refault_file;
	p->have_refaults = true;
}

void predict_on_sample(struct memory *m, const struct memory_sample *s)
{
	struct mem_predict *p = &m->predict;
	uint64_t now = mem_now_ms(m);
	bool was_workload;

	p->have_usage = s->current_ok;
	if (!s->current_ok)
		return;
	was_workload = p->usage_is_workload;
	p->current = s->current;
	p->usage = usage_of(m, s->current, &s->stat, s->stat_ok, &p->usage_is_workload);
	predict_track_refaults(p, s, now);
	if (p->usage_is_workload != was_workload)
		/* Another quantity (the rule switched, memory.stat came or went):
		 * its difference is not growth. */
		(void)mc_ema_init(&p->ema, MC_EMA_ALPHA_DEFAULT);
	m->metrics->memory_current_bytes = s->current;
	m->metrics->workload_bytes = p->usage_is_workload ? p->usage : 0;
	mc_ema_update(&p->ema, now, p->usage);
	if (!m->cgroup || !m->cfg.predict.enabled)
		return;
	predict_judge(m, now);
}

/* Would more memory have spared the stall?  Yes when the workload itself
 * is at memory.high (reclaim cannot make room for it; the kernel
 * throttles), or when page cache the kernel reclaimed is being read again
 * (refaults: the working set does not fit).  Not when the stall is the
 * kernel reclaiming page cache nobody reads again: it counts its reclaim
 * at memory.high as stall ("some" grew by 10-20 % of the time while a
 * Postgres scan twice memory.high ran in the VM test, past the trigger),
 * yet more memory would only fill with more of the same cache.  Without
 * refault counts (kernels before 5.9) only the first rule applies. */
static bool predict_stall_needs_memory(const struct memory *m, uint64_t *refaulted)
{
	const struct mem_predict *p = &m->predict;

	*refaulted = p->have_refaults ? p->refaults - p->refaults_prev_mark : 0;
	if (!m->limits.written || !p->have_usage ||
	    p->usage + m->cfg.cgroup.memory_high_buffer >= m->limits.high)
		return true;
	return *refaulted >= PREDICT_REFAULT_PAGES;
}

/* PSI: a stall is the workload waiting for memory, whatever the estimate
 * says — reason enough to ask when more memory would have spared it.
 * With a trigger the kernel tells us; without one (plain directories,
 * older kernels) a reading about once a second counts as a stall when
 * "some" grew by the trigger's threshold, 100 ms within the last second. */
void predict_on_pressure(struct memory *m, const struct cg_pressure *pr,
			 enum memory_pressure_kind kind)
{
	struct mem_predict *p = &m->predict;
	uint64_t now = mem_now_ms(m), refaulted;
	bool stall = kind == MEMORY_PSI_TRIGGER;

	if (kind == MEMORY_PSI_READING && p->have_pressure &&
	    pr->some_total_us >= p->pressure.some_total_us &&
	    now - p->pressure_ms <= 2 * PREDICT_STALL_WINDOW_MS)
		stall = pr->some_total_us - p->pressure.some_total_us >= PREDICT_STALL_US;
	if (kind != MEMORY_PSI_TRIGGER) {
		p->pressure = *pr;
		p->pressure_ms = now;
		p->have_pressure = true;
		m->metrics->psi_some_seconds_total = (double)pr->some_total_us / 1e6;
		m->metrics->psi_full_seconds_total = (double)pr->full_total_us / 1e6;
	}
	if (!stall || !m->cgroup)
		return;
	if (!predict_stall_needs_memory(m, &refaulted)) {
		log_event(LOG_DEBUG, "memory stall from page cache reclaim, nothing refaulted",
			  LF_BOOL("trigger", kind == MEMORY_PSI_TRIGGER), LF_U64("usage", p->usage),
			  LF_U64("refaulted_pages", refaulted), LF_U64("memory_high", m->limits.high),
			  LF_END);
		return;
	}
	m->metrics->psi_stalls_total++;
	log_event(LOG_INFO, "memory stall", LF_BOOL("trigger", kind == MEMORY_PSI_TRIGGER),
		  LF_U64("usage", p->usage), LF_U64("refaulted_pages", refaulted),
		  LF_U64("memory_high", m->limits.high), LF_END);
	predict_want(m, false, "memory stall (PSI)");
}
