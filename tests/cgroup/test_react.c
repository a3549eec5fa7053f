/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The memory.high reaction state machine with a fake clock.  A tiny model
 * of the cgroup (frozen flag, memory.high = max(base, raise) capped at
 * max) applies the actions, so each test also proves that every path out
 * of "frozen" thaws and that the raise never passes memory.max.
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
	uint64_t base, high, max;
	unsigned freezes, thaws, wants, raises;
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
	if (w->a.raise_changed) {
		assert_true(w->r.raised <= w->max);  /* D10: never above max */
		w->raises++;
	}
	w->high = w->r.raised > w->base ? w->r.raised : w->base;
	w->wants += w->a.want_memory;
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
	w->base = w->high = high;
	w->max = max;
}

static void event(struct world *w, uint64_t now)
{
	cg_react_on_event(&w->r, now, w->high, w->max, &w->a);
	apply(w);
}

static void timer(struct world *w, uint64_t now)
{
	cg_react_on_timer(&w->r, now, w->base, &w->a);
	apply(w);
}

static void upscale(struct world *w, uint64_t now)
{
	cg_react_on_upscale(&w->r, now, &w->a);
	apply(w);
}

/* First event at 0 freezes; nothing arrives; the deadline at 20 thaws. */
static void timed_out_freeze(struct world *w)
{
	event(w, 0);
	assert_true(w->a.freeze && w->a.want_memory);
	timer(w, 20);
	assert_true(w->a.thaw && !w->frozen);
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
	assert_int_equal(c.relax_after_ms, 1000);
}

static void test_freeze_coalesce_thaw_at_deadline(void **state)
{
	struct world w;

	(void)state;
	setup_world(&w, 900 * MIB, 1000 * MIB);
	event(&w, 1000);
	assert_true(w.a.freeze && w.a.want_memory && !w.a.thaw && !w.a.raise_changed);
	assert_true(w.a.has_deadline);
	assert_int_equal(w.a.deadline_ms, 1020);
	/* Events while frozen coalesce: no new freeze, no raise. */
	event(&w, 1005);
	event(&w, 1010);
	assert_false(w.a.freeze || w.a.raise_changed);
	assert_int_equal(w.a.deadline_ms, 1020);
	/* An early timer changes nothing. */
	timer(&w, 1019);
	assert_false(w.a.thaw);
	assert_true(w.frozen);
	timer(&w, 1020);
	assert_true(w.a.thaw);
	assert_false(w.frozen);
	assert_int_equal(w.freezes, 1);
	assert_int_equal(w.wants, 3); /* every event wants: the caller's gate decides */
}

static void test_early_thaw_on_upscale(void **state)
{
	struct world w;

	(void)state;
	setup_world(&w, 900 * MIB, 1000 * MIB);
	event(&w, 5);
	assert_true(w.a.freeze);
	upscale(&w, 7);
	assert_true(w.a.thaw);
	upscale(&w, 8); /* nothing frozen: nothing to do */
	assert_false(w.a.thaw);
}

static void test_rate_limit_between_freezes(void **state)
{
	struct world w;

	(void)state;
	setup_world(&w, 900 * MIB, 2000 * MIB);
	timed_out_freeze(&w);
	event(&w, 500); /* within 1 s of the thaw: raise, no freeze */
	assert_false(w.a.freeze);
	assert_true(w.a.raise_changed);
	event(&w, 1019);
	assert_false(w.a.freeze);
	event(&w, 1020); /* 1 s after the thaw */
	assert_true(w.a.freeze);
	assert_int_equal(w.freezes, 2);
}

static void test_stepwise_raise_cadence_and_cap(void **state)
{
	struct world w;

	(void)state;
	setup_world(&w, 900 * MIB, 935 * MIB);
	timed_out_freeze(&w);
	event(&w, 30);
	assert_true(w.high == 910 * MIB);
	event(&w, 40); /* within 25 ms of the last step: no step */
	assert_false(w.a.raise_changed);
	event(&w, 55);
	assert_true(w.high == 920 * MIB);
	event(&w, 80);
	assert_true(w.high == 930 * MIB);
	event(&w, 105);
	assert_true(w.high == 935 * MIB); /* capped at memory.max */
	event(&w, 130);
	assert_false(w.a.raise_changed);
	assert_true(w.high == 935 * MIB);
}

static void test_raise_needs_room_below_max(void **state)
{
	struct world w;

	(void)state;
	setup_world(&w, 1000 * MIB, 1000 * MIB);
	timed_out_freeze(&w);
	event(&w, 30);
	assert_false(w.a.raise_changed);
	setup_world(&w, CG_UNLIMITED, CG_UNLIMITED);
	timed_out_freeze(&w);
	event(&w, 30);
	assert_false(w.a.raise_changed);
}

static void test_upscale_keeps_the_raise_until_the_base_catches_up(void **state)
{
	struct world w;

	(void)state;
	setup_world(&w, 900 * MIB, 2000 * MIB);
	timed_out_freeze(&w);
	event(&w, 30);
	event(&w, 55);
	assert_true(w.high == 920 * MIB);
	upscale(&w, 60);
	/* The granted memory has not arrived: the floor stays. */
	assert_true(w.r.raised == 920 * MIB);
	assert_false(cg_react_on_base(&w.r, 910 * MIB));
	assert_true(w.r.raised == 920 * MIB);
	/* MemTotal grew: the computed memory.high passed the floor. */
	assert_true(cg_react_on_base(&w.r, 1500 * MIB));
	assert_true(w.r.raised == 0);
	timer(&w, 5000);
	assert_false(w.a.raise_changed || w.a.has_deadline);
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
	assert_false(w.a.raise_changed);
	timer(&w, 1105);
	assert_true(w.a.raise_changed && w.high == 930 * MIB);
	assert_int_equal(w.a.deadline_ms, 1130);
	timer(&w, 1110);
	assert_false(w.a.raise_changed);   /* step cadence holds when lowering too */
	for (t = 1130; w.a.has_deadline && t < 5000; t += 25)
		timer(&w, t);
	assert_true(w.high == 900 * MIB);  /* back to the computed value, not below */
	assert_true(w.r.raised == 0);
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
	event(&w, 1090);                    /* raise from the value the file holds */
	assert_true(w.a.raise_changed && w.high == 920 * MIB);
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
	/* The caller's thaw failed: the cgroup is still frozen. */
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

static void test_drop_raise(void **state)
{
	struct world w;

	(void)state;
	setup_world(&w, 900 * MIB, 2000 * MIB);
	timed_out_freeze(&w);
	event(&w, 30);
	assert_true(w.r.raised != 0);
	cg_react_drop_raise(&w.r);
	timer(&w, 5000);
	assert_false(w.a.raise_changed || w.a.has_deadline);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_freeze_coalesce_thaw_at_deadline),
		cmocka_unit_test(test_early_thaw_on_upscale),
		cmocka_unit_test(test_rate_limit_between_freezes),
		cmocka_unit_test(test_stepwise_raise_cadence_and_cap),
		cmocka_unit_test(test_raise_needs_room_below_max),
		cmocka_unit_test(test_upscale_keeps_the_raise_until_the_base_catches_up),
		cmocka_unit_test(test_lower_back_after_pressure),
		cmocka_unit_test(test_lower_interrupted_by_pressure),
		cmocka_unit_test(test_thaw_failure_retried),
		cmocka_unit_test(test_drop_raise),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
