/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cgreact.c — what to do about memory.high events (pure: times in, actions
 * out).  The caller performs the actions and arms one timer for the
 * returned deadline.
 *
 * Freeze on an event (at most once per min_freeze_interval, counted from
 * the thaw) and thaw when the upscale arrives or after max_upscale_wait —
 * never later (D7).  Between freezes, events that keep coming raise a
 * floor for memory.high a step at a time up to memory.max (D10).  When
 * pressure ends without the limits catching up, the floor is walked back
 * step by step.  Whether an event leads to an ask is not decided here: the
 * caller's back-off gate owns that (every event says it wants memory).
 */
#include <string.h>

#include "cgroup.h"

#define MIB (1024u * 1024u)

void cg_react_config_default(struct cg_react_config *cfg)
{
	cfg->max_upscale_wait_ms = 20;
	cfg->min_freeze_interval_ms = 1000;
	cfg->memory_high_step = 10 * MIB;
	cfg->memory_high_step_interval_ms = 25;
	cfg->relax_after_ms = 1000;
}

void cg_react_init(struct cg_react *r, const struct cg_react_config *cfg)
{
	memset(r, 0, sizeof(*r));
	r->cfg = *cfg;
}

/* Time since `then`; 0 if the clock looks like it went backwards. */
static uint64_t since(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static void consider(struct cg_react_action *out, uint64_t when)
{
	if (!out->has_deadline || when < out->deadline_ms)
		out->deadline_ms = when;
	out->has_deadline = true;
}

/* The one timer the caller needs next: the freeze deadline, or the next
 * lowering step of a raised memory.high. */
static void compute_deadline(const struct cg_react *r, struct cg_react_action *out)
{
	out->has_deadline = false;
	out->deadline_ms = 0;
	if (r->frozen)
		consider(out, r->freeze_deadline);
	else if (r->raised && r->cfg.relax_after_ms > 0) {
		uint64_t quiet = add_sat(r->last_event, r->cfg.relax_after_ms);
		uint64_t step = add_sat(r->last_step, r->cfg.memory_high_step_interval_ms);

		consider(out, quiet > step ? quiet : step);
	}
}

static void thaw(struct cg_react *r, uint64_t now, struct cg_react_action *out)
{
	out->thaw = true;
	r->frozen = false;
	r->ever_thawed = true;
	r->last_thaw = now;
}

static void set_raise(struct cg_react *r, uint64_t now, uint64_t value, struct cg_react_action *out)
{
	out->raise_changed = true;
	r->raised = value;
	r->last_step = now;
}

/* One step above what the file holds, capped at memory.max. */
static void raise_high(struct cg_react *r, uint64_t now, uint64_t high, uint64_t max,
		       struct cg_react_action *out)
{
	uint64_t from = high > r->raised ? high : r->raised;
	uint64_t next;

	if (r->raised && since(now, r->last_step) < r->cfg.memory_high_step_interval_ms)
		return;
	if (from >= max || r->cfg.memory_high_step == 0)
		return;
	next = add_sat(from, r->cfg.memory_high_step);
	set_raise(r, now, next > max ? max : next, out);
}

void cg_react_on_event(struct cg_react *r, uint64_t now, uint64_t high, uint64_t max,
		       struct cg_react_action *out)
{
	memset(out, 0, sizeof(*out));
	r->last_event = now;
	out->want_memory = true;
	if (r->frozen) {
		/* Coalesced: the freeze already stands with its deadline. */
	} else if (!r->ever_thawed || since(now, r->last_thaw) >= r->cfg.min_freeze_interval_ms) {
		out->freeze = true;
		r->frozen = true;
		r->freeze_deadline = add_sat(now, r->cfg.max_upscale_wait_ms);
	} else {
		raise_high(r, now, high, max, out);
	}
	compute_deadline(r, out);
}

void cg_react_on_upscale(struct cg_react *r, uint64_t now, struct cg_react_action *out)
{
	memset(out, 0, sizeof(*out));
	if (r->frozen)
		thaw(r, now, out);
	compute_deadline(r, out);
}

void cg_react_on_timer(struct cg_react *r, uint64_t now, uint64_t base_high,
		       struct cg_react_action *out)
{
	memset(out, 0, sizeof(*out));
	if (r->frozen) {
		if (now >= r->freeze_deadline)
			thaw(r, now, out);
	} else if (r->raised && r->cfg.relax_after_ms > 0 &&
		   since(now, r->last_event) >= r->cfg.relax_after_ms &&
		   since(now, r->last_step) >= r->cfg.memory_high_step_interval_ms) {
		uint64_t next = r->raised > r->cfg.memory_high_step ?
					r->raised - r->cfg.memory_high_step : 0;

		set_raise(r, now, next > base_high ? next : 0, out);
	}
	compute_deadline(r, out);
}

void cg_react_on_thaw_failed(struct cg_react *r, uint64_t now, struct cg_react_action *out)
{
	uint64_t wait = r->cfg.max_upscale_wait_ms ? r->cfg.max_upscale_wait_ms : 1;

	memset(out, 0, sizeof(*out));
	r->frozen = true;
	r->freeze_deadline = add_sat(now, wait);
	compute_deadline(r, out);
}

bool cg_react_on_base(struct cg_react *r, uint64_t base_high)
{
	if (!r->raised || r->raised > base_high)
		return false;
	r->raised = 0;
	return true;
}

void cg_react_drop_raise(struct cg_react *r)
{
	r->raised = 0;
}
