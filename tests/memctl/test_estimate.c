/* SPDX-License-Identifier: Apache-2.0 */
/* Table tests of the growth estimator, pressure levels and bounds. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "memctl.h"
#include "testutil.h"

#define M UINT64_MAX
#define MAX_STEPS 6

struct ema_step {
	uint64_t ts, value;
	bool have_rate;
	double rate;
};

struct ema_case {
	const char *name;
	struct ema_step steps[MAX_STEPS];
	size_t n;
};

static const struct ema_case ema_cases[] = {
	{ "steady then faster",
	  { { 0, 0, false, 0 },
	    { 1000, 1000, true, 1000 },
	    { 2000, 2000, true, 1000 },
	    { 3000, 3200, true, 1060 },   /* 0.3 x 1200 + 0.7 x 1000 */
	    { 4000, 4800, true, 1222 } },  /* 0.3 x 1600 + 0.7 x 1060 */
	  5 },
	{ "shrinking",
	  { { 0, 10000, false, 0 },
	    { 1000, 9000, true, -1000 },
	    { 2000, 8000, true, -1000 },
	    { 3000, 8000, true, -700 } },
	  4 },
	{ "zero dt re-anchors",
	  { { 1000, 100, false, 0 },
	    { 1000, 500, false, 0 },
	    { 2000, 1500, true, 1000 } },
	  3 },
	{ "time going back re-anchors, before a rate",
	  { { 5000, 100, false, 0 },
	    { 4000, 200, false, 0 },
	    { 5000, 1200, true, 1000 } },
	  3 },
	{ "time going back keeps the rate",
	  { { 0, 0, false, 0 },
	    { 1000, 1000, true, 1000 },
	    { 500, 5000, true, 1000 },
	    { 1500, 6000, true, 1000 } },
	  4 },
	{ "from flat",
	  { { 0, 0, false, 0 },
	    { 1000, 0, true, 0 },
	    { 2000, 1, true, 0.3 } },
	  3 },
	{ "small growth from flat",
	  { { 0, 0, false, 0 },
	    { 1000, 0, true, 0 },
	    { 2000, 5, true, 1.5 },
	    { 3000, 100, true, 29.55 } },
	  4 },
	{ "extreme values stay finite",
	  { { 0, 0, false, 0 },
	    { 1, M, true, 1.8446744073709552e22 },
	    { 2, 0, true, 0.4 * 1.8446744073709552e22 } },
	  3 },
	{ "huge interval",
	  { { 0, 0, false, 0 },
	    { M, M, true, 1000 } },
	  2 },
};

static void test_ema(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ELEMS(ema_cases); i++) {
		const struct ema_case *c = &ema_cases[i];
		struct mc_ema e;

		print_message("ema: %s\n", c->name);
		assert_int_equal(mc_ema_init(&e, MC_EMA_ALPHA_DEFAULT), 0);
		for (size_t k = 0; k < c->n; k++) {
			const struct ema_step *st = &c->steps[k];

			print_message("  step %zu\n", k);
			mc_ema_update(&e, st->ts, st->value);
			assert_int_equal(e.have_rate, st->have_rate);
			assert_near(mc_ema_rate(&e), st->rate, fabs(st->rate) * 1e-12);
			assert_true(isfinite(mc_ema_rate(&e)));
		}
	}
}

static void test_ema_params(void **state)
{
	const double bad_alpha[] = { 0, -0.3, 1.0001, NAN, INFINITY };
	struct mc_ema e;

	(void)state;
	for (size_t i = 0; i < N_ELEMS(bad_alpha); i++)
		assert_int_equal(mc_ema_init(&e, bad_alpha[i]), -EINVAL);
	assert_int_equal(mc_ema_init(&e, 1), 0);
	/* alpha 1: the rate is the last observation. */
	mc_ema_update(&e, 0, 0);
	mc_ema_update(&e, 1000, 100);
	mc_ema_update(&e, 2000, 600);
	assert_near(mc_ema_rate(&e), 500, 0);
}

struct ttl_case {
	const char *name;
	uint64_t t1, v1, t2, v2; /* two samples; t1 == t2 means no rate */
	uint64_t current, limit, ms;
};

static void test_time_to_limit(void **state)
{
	const struct ttl_case cases[] = {
		{ "from zero", 0, 0, 1000, 1000, 0, 2000, 2000 },
		{ "part way", 0, 0, 1000, 1000, 1500, 2000, 500 },
		{ "rounded up", 0, 0, 1000, 3000, 1999, 2000, 1 },
		{ "at the limit", 0, 0, 1000, 1000, 2000, 2000, 0 },
		{ "past the limit", 0, 0, 1000, 1000, 5000, 2000, 0 },
		{ "past, not growing", 0, 10, 1000, 5, 5000, 2000, 0 },
		{ "unlimited", 0, 0, 1000, 1000, 1500, 0, M },
		{ "flat", 0, 5, 1000, 5, 0, 2000, M },
		{ "shrinking", 0, 5, 1000, 1, 0, 2000, M },
		{ "no rate yet", 0, 0, 0, 0, 0, 2000, M },
		{ "beyond 2^64 ms", 0, 0, M, 1, 0, M, M },
		{ "saturates", 0, 0, 1000, 1, 0, M, M },
		{ "large but finite", 0, 0, 1000, 1000, 0, 1000000000000000ull,
		  1000000000000000ull },
	};

	(void)state;
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		const struct ttl_case *c = &cases[i];
		struct mc_ema e;

		print_message("time to limit: %s\n", c->name);
		assert_int_equal(mc_ema_init(&e, MC_EMA_ALPHA_DEFAULT), 0);
		mc_ema_update(&e, c->t1, c->v1);
		mc_ema_update(&e, c->t2, c->v2);
		assert_true(mc_ema_time_to_limit(&e, c->current, c->limit) == c->ms);
	}
}

struct level_case {
	const char *name;
	struct mc_level_config cfg;
	uint64_t limit;
	uint64_t values[8];
	enum mc_level want[8];
	size_t n;
};

#define N MC_LEVEL_NORMAL
#define W MC_LEVEL_WARNING
#define C MC_LEVEL_CRITICAL

static const struct level_case level_cases[] = {
	{ "rising", MC_LEVEL_DEFAULT, 1000, { 0, 799, 800, 899, 900, 1000, 2000 },
	  { N, N, W, W, C, C, C }, 7 },
	{ "falling from critical", MC_LEVEL_DEFAULT, 1000, { 950, 851, 850, 849, 751, 750, 749 },
	  { C, C, C, W, W, W, N }, 7 },
	{ "no flapping at the line", MC_LEVEL_DEFAULT, 1000,
	  { 800, 799, 801, 790, 760, 749, 799, 800 }, { W, W, W, W, W, N, N, W }, 8 },
	{ "critical straight to normal", MC_LEVEL_DEFAULT, 1000, { 900, 100 }, { C, N }, 2 },
	{ "critical straight to warning line", MC_LEVEL_DEFAULT, 1000, { 900, 800, 780 },
	  { C, W, W }, 3 },
	{ "unlimited", MC_LEVEL_DEFAULT, 0, { 0, M }, { N, N }, 2 },
	{ "threshold rounds up", MC_LEVEL_DEFAULT, 1001, { 800, 801, 901 }, { N, W, C }, 3 },
	{ "huge limit", MC_LEVEL_DEFAULT, M, { M / 2, M / 5 * 4 - 1, M / 5 * 4, M },
	  { N, N, W, C }, 4 },
	{ "no hysteresis", { 0.8, 0.9, 0 }, 1000, { 800, 799, 900, 899 }, { W, N, C, W }, 4 },
	{ "wide hysteresis", { 0.5, 0.6, 0.3 }, 100, { 60, 31, 29, 50, 21, 19 },
	  { C, C, W, W, W, N }, 6 },
};

static void test_levels(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ELEMS(level_cases); i++) {
		const struct level_case *c = &level_cases[i];
		enum mc_level level = MC_LEVEL_NORMAL;

		print_message("levels: %s\n", c->name);
		for (size_t k = 0; k < c->n; k++) {
			level = mc_level_next(&c->cfg, level, c->values[k], c->limit);
			print_message("  %zu: %s\n", k, mc_level_name(level));
			assert_int_equal(level, c->want[k]);
		}
	}
}

static void test_level_names(void **state)
{
	(void)state;
	assert_string_equal(mc_level_name(MC_LEVEL_NORMAL), "normal");
	assert_string_equal(mc_level_name(MC_LEVEL_WARNING), "warning");
	assert_string_equal(mc_level_name(MC_LEVEL_CRITICAL), "critical");
	assert_string_equal(mc_level_name((enum mc_level)7), "unknown");
}

struct bounds_case {
	const char *name;
	struct mc_bound b[3];
	size_t n;
	uint64_t total;
	int ret;
	size_t offending;
	uint64_t min_sum;
	const char *in_err; /* substring the message must contain */
};

static void test_bounds(void **state)
{
	const struct bounds_case cases[] = {
		{ "fits", { { "postgres", 512, 0 }, { "filecache", 128, 640 },
		  { "system", 256, 0 } },
		  3, 1000, 0, 0, 896, NULL },
		{ "fits exactly", { { "postgres", 512, 0 }, { "filecache", 128, 0 },
		  { "system", 256, 0 } }, 3, 896, 0, 0, 896, NULL },
		{ "last breaks it", { { "postgres", 512, 0 }, { "filecache", 128, 0 },
		  { "system", 256, 0 } }, 3, 800, -ENOSPC, 2, 896, "system" },
		{ "first breaks it", { { "postgres", 512, 0 }, { "filecache", 128, 0 },
		  { "system", 256, 0 } }, 3, 100, -ENOSPC, 0, 896, "postgres" },
		{ "min above firm", { { "postgres", 512, 0 }, { "filecache", 200, 100 } }, 2, 1000,
		  -EINVAL, 1, 712, "filecache" },
		{ "min equals firm", { { "filecache", 100, 100 } }, 1, 100, 0, 0, 100, NULL },
		{ "sum overflows", { { "a", M, 0 }, { "b", 1, 0 } }, 2, M, -ENOSPC, 1, M, "b" },
		{ "none", { { NULL, 0, 0 } }, 0, 0, 0, 0, 0, NULL },
		{ "zero minimums, zero total", { { "a", 0, 0 }, { "b", 0, 0 } }, 2, 0, 0, 0, 0,
		  NULL },
		{ "unnamed", { { "a", 1, 0 }, { NULL, 5, 0 } }, 2, 3, -ENOSPC, 1, 6, "#1" },
	};

	(void)state;
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		const struct bounds_case *c = &cases[i];
		size_t offending = 99;
		char err[256] = "";
		int r = mc_bounds_verify(c->b, c->n, c->total, &offending, err, sizeof(err));

		print_message("bounds: %s: %s\n", c->name, err);
		assert_int_equal(r, c->ret);
		assert_true(mc_bounds_min_sum(c->b, c->n) == c->min_sum);
		if (r == 0) {
			assert_int_equal(offending, 99);
			continue;
		}
		assert_int_equal(offending, c->offending);
		assert_non_null(strstr(err, c->in_err));
	}
	assert_int_equal(mc_bounds_verify(NULL, 1, 10, NULL, NULL, 0), -EINVAL);
	assert_int_equal(mc_bounds_verify(NULL, 0, 10, NULL, NULL, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ema),
		cmocka_unit_test(test_ema_params),
		cmocka_unit_test(test_time_to_limit),
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_level_names),
		cmocka_unit_test(test_bounds),
	};

	return cmocka_run_group_tests_name("memctl-estimate", tests, NULL, NULL);
}
