/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The memory.high reaction state machine with a fake clock.  A tiny model
 * of the cgroup (frozen flag, memory.high) applies the actions, so each test
 * also proves that every path out of "frozen" thaws.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cgroup.h"

#define MIB (1024ull * 1024ull)

struct world {
	struct cg_react r;
	struct cg_react_action a;
	bool frozen;
	uint64_t high, max;
	unsigned freezes, thaws, requests, sets;
};

static void apply(struct world *w)
{
	if (w->a.freeze) {
		assert_false(w->frozen);   /* never freeze twice */
		w->frozen = true;
		w->freezes++;
	}
	if (w->a.thaw) {
		assert_true(w->frozen);
		w->frozen = false;
		w->thaws++;
	}
	if (w->a.set_high) {
		assert_true(w->a.new_high <= w->max);  /* D10: never above max */
		w->high = w->a.new_high;
		w->sets++;
	}
	w->requests += w->a.request_upscale;
	/* While frozen there is always a deadline that leads to a thaw. */
	if (w->frozen)
		assert_true(w->a.has_deadline);
}

static void setup_world(struct world *w, uint64_t high, uint64_t max)
{
	struct cg_react_config cfg;

	memset(w, 0, sizeof(*w));
	cg_react_config_default(&cfg);
	cg_react_init(&w->r, &cfg);
	w->high = high;
	w->max = max;
}

static void event(struct world *w, uint64_t now)
{
	cg_react_on_event(&w->r, now, w->high, w->max, &w->a);
	apply(w);
}

static void timer(struct world *w, uint64_t now)
{
	cg_react_on_timer(&w->r, now, &w->a);
	apply(w);
}

static void upscale(struct world *w, uint64_t now)
{
	cg_react_on_upscale(&w->r, now, &w->a);
	apply(w);
}

/* First event at 0 freezes; nothing arrives; the deadline at 20 thaws.
 * Leaves the machine waiting for an upscale, between freezes. */
static void timed_out_freeze(struct world *w)
{
	event(w, 0);
	assert_true(w->a.freeze && w->a.request_upscale);
	timer(w, 20);
	assert_true(w->a.thaw && w->r.waiting && !w->frozen);
}

static void test_defaults(void **state)
{
	struct cg_react_config c;

	(void)state;
	cg_react_config_default(&c);
	assert_int_equal(c.max_upscale_wait_ms, 20);
	assert_int_equal(c.min_freeze_interval_ms, 1000);
	assert_true(c.memory_high_step == 10 * MIB);
	assert_int_equal(c.memory_high_step_interval_ms, 25);
	assert_int_equal(c.upscale_retry_ms, 2000);
}

static void test_freeze_coalesce_thaw_at_deadline(void **state)
{
	struct world w;

	(void)state;
	setup_world(&w, 900 * MIB, 1000 * MIB);
	event(&w, 1000);
	assert_true(w.a.freeze && w.a.request_upscale && !w.a.thaw && !w.a.set_high);
	assert_true(w.a.has_deadline);
	assert_int_equal(w.a.deadline_ms, 1020);
	/* Events while frozen coalesce: no new freeze, no new request. */
	event(&w, 1005);
	event(&w, 1010);
	assert_false(w.a.freeze || w.a.request_upscale || w.a.set_high);
	assert_int_equal(w.a.deadline_ms, 1020);
	/* An early timer changes nothing. */
	timer(&w, 1019);
	assert_false(w.a.thaw);
	assert_true(w.frozen);
	timer(&w, 1020);
	assert_true(w.a.thaw);
	assert_false(w.frozen);
	assert_true(w.r.waiting);   /* still waiting for the upscale */
	assert_int_equal(w.freezes, 1);
	assert_int_equal(w.requests, 1);
}

static void test_early_thaw_on_upscale(void **state)
{
	struct world w;

	(void)state;
	setup_world(&w, 900 * MIB, 1000 * MIB);
	event(&w, 500);
	upscale(&w, 505);
	assert_true(w.a.thaw);
	assert_false(w.a.has_deadline);
	assert_false(w.frozen || w.r.waiting);
	/* The old deadline is gone: the timer does nothing. */
	timer(&w, 520);
	assert_false(w.a.thaw || w.a.freeze || w.a.set_high);
}

static void test_rate_limit_between_freezes(void **state)
{
	struct world w;

	(void)state;
	setup_world(&w, 900 * MIB, 1000 * MIB);
	event(&w, 0);
	upscale(&w, 10);            /* thawed at 10, not waiting */
	/* Within 1 s of the thaw: ask again, do not freeze. */
	event(&w, 500);
	assert_false(w.a.freeze);
	assert_true(w.a.request_upscale);
	assert_true(w.r.waiting);
	upscale(&w, 600);
	event(&w, 1009);
	assert_false(w.a.freeze);
	/* 1000 ms after the thaw (not after the freeze) a freeze is allowed. */
	upscale(&w, 1009);
	event(&w, 1010);
	assert_true(w.a.freeze && w.a.request_upscale);
	timer(&w, 1030);
	assert_true(w.a.thaw);
	assert_int_equal(w.freezes, 2);
}

static void test_stepwise_raise_cadence_and_cap(void **state)
{
	struct world w;
	uint64_t t;

	(void)state;
	setup_world(&w, 900 * MIB, 925 * MIB);
	timed_out_freeze(&w);
	event(&w, 30);
	assert_true(w.a.set_high);
	assert_true(w.high == 910 * MIB);
	assert_false(w.a.request_upscale);   /* retry not due yet */
	/* Within 25 ms of the step: nothing. */
	event(&w, 40);
	event(&w, 54);
	assert_false(w.a.set_high);
	event(&w, 55);
	assert_true(w.a.set_high);
	assert_true(w.high == 920 * MIB);
	/* Next step would be 930 MiB: capped at memory.max. */
	event(&w, 80);
	assert_true(w.a.set_high);
	assert_true(w.high == 925 * MIB);
	/* At max: no more writes, whatever the cadence. */
	for (t = 105; t < 1000; t += 25) {
		event(&w, t);
		assert_false(w.a.set_high || w.a.freeze);
	}
	assert_int_equal(w.sets, 3);
}

static void test_raise_needs_finite_high(void **state)
{
	struct world w;

	(void)state;
	setup_world(&w, CG_UNLIMITED, CG_UNLIMITED);
	timed_out_freeze(&w);
	event(&w, 100);
	assert_false(w.a.set_high);
	/* Unlimited max: the raise is uncapped but saturates. */
	setup_world(&w, 900 * MIB, CG_UNLIMITED);
	timed_out_freeze(&w);
	event(&w, 100);
	assert_true(w.a.set_high && w.high == 910 * MIB);
}

static void test_rerequest_after_retry(void **state)
{
	struct world w;

	(void)state;
	setup_world(&w, 100 * MIB, 10000 * MIB);
	event(&w, 0);
	assert_int_equal(w.requests, 1);
	timer(&w, 20);
	event(&w, 500);             /* between freezes: raise only, the ask is open */
	assert_false(w.a.request_upscale);
	/* 1 s after the thaw a freeze is allowed, but the ask is only 1020 ms old. */
	event(&w, 1020);
	assert_true(w.a.freeze);
	assert_false(w.a.request_upscale);
	timer(&w, 1040);
	/* Next freeze at 2040: 2 s since the ask, so ask again (D9). */
	event(&w, 2040);
	assert_true(w.a.freeze && w.a.request_upscale);
	timer(&w, 2060);
	event(&w, 3060);
	assert_true(w.a.freeze);
	assert_false(w.a.request_upscale);
	timer(&w, 3080);
	event(&w, 4080);
	assert_true(w.a.freeze && w.a.request_upscale);
	assert_int_equal(w.requests, 3);
	timer(&w, 4100);
	assert_false(w.frozen);
}

static void test_rerequest_without_freeze(void **state)
{
	struct world w;
	struct cg_react_config cfg;

	(void)state;
	setup_world(&w, 100 * MIB, 10000 * MIB);
	cg_react_config_default(&cfg);
	cfg.min_freeze_interval_ms = 60000;   /* only the raise path runs */
	cg_react_init(&w.r, &cfg);
	timed_out_freeze(&w);
	for (uint64_t t = 25; t <= 4100; t += 25)
		event(&w, t);
	/* Asked at 0, then again at 2000 and 4000. */
	assert_int_equal(w.requests, 3);
	assert_int_equal(w.freezes, 1);
}

static void test_upscale_resets_everything(void **state)
{
	struct world w;

	(void)state;
	setup_world(&w, 900 * MIB, 2000 * MIB);
	timed_out_freeze(&w);
	event(&w, 30);
	assert_true(w.r.raised && w.r.waiting);
	upscale(&w, 40);
	assert_false(w.a.thaw);     /* was not frozen */
	assert_false(w.r.raised || w.r.waiting || w.r.frozen);
	assert_false(w.a.has_deadline);  /* nothing to lower: the limits were rewritten */
	/* Next event (within the freeze interval) asks again rather than raising. */
	event(&w, 100);
	assert_true(w.a.request_upscale && !w.a.set_high && !w.a.freeze);
}

static void test_upscale_with_nothing_pending(void **state)
{
	struct world w;

	(void)state;
	setup_world(&w, 900 * MIB, 1000 * MIB);
	upscale(&w, 5);
	assert_false(w.a.thaw || w.a.freeze || w.a.request_upscale || w.a.set_high);
	assert_false(w.a.has_deadline);
	/* The first event still freezes (never frozen before). */
	event(&w, 6);
	assert_true(w.a.freeze);
	upscale(&w, 7);
	assert_true(w.a.thaw);
}

static void test_lower_back_after_pressure(void **state)
{
	struct world w;
	uint64_t t;

	(void)state;
	setup_world(&w, 900 * MIB, 2000 * MIB);
	timed_out_freeze(&w);
	for (t = 30; t <= 105; t += 25)
		event(&w, t);               /* raises at 30, 55, 80, 105 */
	assert_true(w.high == 940 * MIB);
	assert_true(w.a.has_deadline);
	assert_int_equal(w.a.deadline_ms, 1105);  /* 1 s after the last event */
	timer(&w, 1000);
	assert_false(w.a.set_high);
	timer(&w, 1105);
	assert_true(w.a.set_high && w.high == 930 * MIB);
	assert_int_equal(w.a.deadline_ms, 1130);
	timer(&w, 1110);
	assert_false(w.a.set_high);        /* step cadence holds when lowering too */
	for (t = 1130; w.a.has_deadline && t < 5000; t += 25)
		timer(&w, t);
	assert_true(w.high == 900 * MIB);  /* back to the computed value, not below */
	assert_false(w.r.raised);
	assert_false(w.a.has_deadline);
}

static void test_lower_interrupted_by_pressure(void **state)
{
	struct world w;

	(void)state;
	setup_world(&w, 900 * MIB, 2000 * MIB);
	timed_out_freeze(&w);
	event(&w, 30);
	event(&w, 55);                      /* 920 MiB */
	timer(&w, 1055);                    /* lowered to 910 MiB */
	assert_true(w.high == 910 * MIB);
	event(&w, 1060);                    /* pressure again: freeze allowed */
	assert_true(w.a.freeze);
	timer(&w, 1080);
	event(&w, 1090);                    /* raise from the value read */
	assert_true(w.a.set_high && w.high == 920 * MIB);
	/* The base stays the value before the first raise. */
	for (uint64_t t = 2090; w.a.has_deadline && t < 9000; t += 25)
		timer(&w, t);
	assert_true(w.high == 900 * MIB);
}

static void test_thaw_failure_retried(void **state)
{
	struct world w;

	(void)state;
	setup_world(&w, 900 * MIB, 1000 * MIB);
	timed_out_freeze(&w);
	assert_true(w.a.thaw);
	/* The caller's cg_thaw failed: the cgroup is still frozen. */
	w.frozen = true;
	cg_react_on_thaw_failed(&w.r, 20, &w.a);
	apply(&w);
	assert_true(w.a.has_deadline && w.a.deadline_ms == 40);
	event(&w, 30);                      /* coalesced, no second freeze */
	assert_false(w.a.freeze);
	timer(&w, 40);
	assert_true(w.a.thaw);
	assert_false(w.frozen);
}

static void test_limits_written_forgets_raise(void **state)
{
	struct world w;

	(void)state;
	setup_world(&w, 900 * MIB, 2000 * MIB);
	timed_out_freeze(&w);
	event(&w, 30);
	assert_true(w.r.raised);
	cg_react_on_limits_written(&w.r);
	timer(&w, 5000);
	assert_false(w.a.set_high || w.a.has_deadline);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_freeze_coalesce_thaw_at_deadline),
		cmocka_unit_test(test_early_thaw_on_upscale),
		cmocka_unit_test(test_rate_limit_between_freezes),
		cmocka_unit_test(test_stepwise_raise_cadence_and_cap),
		cmocka_unit_test(test_raise_needs_finite_high),
		cmocka_unit_test(test_rerequest_after_retry),
		cmocka_unit_test(test_rerequest_without_freeze),
		cmocka_unit_test(test_upscale_resets_everything),
		cmocka_unit_test(test_upscale_with_nothing_pending),
		cmocka_unit_test(test_lower_back_after_pressure),
		cmocka_unit_test(test_lower_interrupted_by_pressure),
		cmocka_unit_test(test_thaw_failure_retried),
		cmocka_unit_test(test_limits_written_forgets_raise),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
