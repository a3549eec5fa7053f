/* SPDX-License-Identifier: Apache-2.0 */
/* Table tests of mc_scale, mc_fit, mc_worker_budget and mc_split. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "memctl.h"
#include "testutil.h"

#define GiB (1024ull * 1024 * 1024)
#define M UINT64_MAX

struct scale_case {
	uint64_t v;
	double f;
	int ret;
	uint64_t out;
};

static void test_scale(void **state)
{
	const struct scale_case cases[] = {
		{ 1000, 0.7, 0, 700 },
		{ 10 * GiB, 0.7, 0, 7516192768ull },
		{ 0, 0.7, 0, 0 },
		{ 12345, 0, 0, 0 },
		{ 12345, 1, 0, 12345 },
		{ M, 1, 0, M },
		{ M, 0.5, 0, M / 2 },
		{ M, 0.95, 0, 17524406870024074034ull },
		{ 1000000000, 1e-9, 0, 1 },
		{ 999999999, 1e-9, 0, 0 },
		{ 1000, -0.1, -EINVAL, 0 },
		{ 1000, 1.0000001, -EINVAL, 0 },
		{ 1000, NAN, -EINVAL, 0 },
		{ 1000, INFINITY, -EINVAL, 0 },
	};

	(void)state;
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		uint64_t out = 42;

		print_message("scale #%zu\n", i);
		assert_int_equal(mc_scale(cases[i].v, cases[i].f, &out), cases[i].ret);
		assert_true(out == (cases[i].ret == 0 ? cases[i].out : 42));
	}
}

struct fit_case {
	const char *name;
	struct mc_fit_input in;
	int ret;
	struct mc_fit out;
};

static void test_fit(void **state)
{
	const double h = MC_HEADROOM_DEFAULT;
	const struct fit_case cases[] = {
		{ "all fit", { 10 * GiB, GiB, GiB, 4, h }, 0, { 4, 7516192768ull, false, false } },
		{ "reduced", { 10 * GiB, GiB, GiB, 10, h }, 0, { 6, 7516192768ull, true, false } },
		{ "exactly one", { 1000, 400, 600, 3, 1 }, 0, { 1, 1000, true, false } },
		{ "one byte short", { 1000, 401, 600, 3, 1 }, 0, { 1, 1000, true, true } },
		{ "fixed fills budget", { 1000, 1000, 1, 1, 1 }, 0, { 1, 1000, false, true } },
		{ "fixed above budget", { 1000, 5000, 1, 4, 1 }, 0, { 1, 1000, true, true } },
		{ "free units", { 1000, 10, 0, 1000000, h }, 0, { 1000000, 700, false, false } },
		{ "free units, fixed too big", { 1000, 701, 0, 8, h }, 0, { 1, 700, true, true } },
		{ "nothing available", { 0, 0, 1, 2, h }, 0, { 1, 0, true, true } },
		{ "nothing needed", { 0, 0, 0, 3, h }, 0, { 3, 0, false, false } },
		{ "huge fixed", { M, M - 1, 1, 5, 1 }, 0, { 1, M, true, false } },
		{ "no wrap on fixed + unit", { M, M, M, 1, 1 }, 0, { 1, M, false, true } },
		{ "huge count", { M, 0, 1, M, 1 }, 0, { M, M, false, false } },
		{ "zero wanted", { 1000, 0, 1, 0, h }, -EINVAL, { 0 } },
		{ "zero headroom", { 1000, 0, 1, 1, 0 }, -EINVAL, { 0 } },
		{ "negative headroom", { 1000, 0, 1, 1, -0.7 }, -EINVAL, { 0 } },
		{ "headroom above 1", { 1000, 0, 1, 1, 1.5 }, -EINVAL, { 0 } },
		{ "headroom NaN", { 1000, 0, 1, 1, NAN }, -EINVAL, { 0 } },
	};

	(void)state;
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		const struct fit_case *c = &cases[i];
		struct mc_fit out = { 0 };
		char err[128] = "";
		int r = mc_fit(&c->in, &out, err, sizeof(err));

		print_message("fit: %s\n", c->name);
		assert_int_equal(r, c->ret);
		assert_err_text(r, err);
		if (r < 0)
			continue;
		assert_true(out.units == c->out.units);
		assert_true(out.budget == c->out.budget);
		assert_int_equal(out.reduced, c->out.reduced);
		assert_int_equal(out.overflow, c->out.overflow);
	}
}

struct worker_case {
	const char *name;
	struct mc_worker_input in;
	int ret;
	struct mc_worker_budget out;
};

static void test_worker_budget(void **state)
{
	const struct worker_case cases[] = {
		{ "cores limit", { 10000000, 0.5, 1000000, 500000, 4, 1.5, 0 }, 0,
		  { 6, 4000000, 8, 6 } },
		{ "memory limits", { 10000000, 0.5, 1000000, 500000, 16, 1.5, 0 }, 0,
		  { 8, 4000000, 8, 24 } },
		{ "cap", { 10000000, 0.5, 1000000, 500000, 16, 1.5, 5 }, 0, { 5, 4000000, 8, 24 } },
		{ "cap above both", { 10000000, 0.5, 1000000, 500000, 16, 1.5, 100 }, 0,
		  { 8, 4000000, 8, 24 } },
		{ "base eats all", { 10000000, 0.5, 6000000, 500000, 4, 1, 0 }, 0, { 1, 0, 0, 4 } },
		{ "free workers", { 1000, 1, 0, 0, 3, 2, 0 }, 0, { 6, 1000, M, 6 } },
		{ "ratio below one core", { 1000, 1, 0, 0, 2, 0.25, 0 }, 0, { 1, 1000, M, 0 } },
		{ "exact ratio product", { 1000, 1, 0, 0, 100, 0.29, 0 }, 0, { 29, 1000, M, 29 } },
		{ "largest cores", { M, 1, 0, 0, UINT32_MAX, 1024, 0 }, 0,
		  { 4398046510080ull, M, M, 4398046510080ull } },
		{ "largest memory", { M, 1, 0, 1, 1, 1, 0 }, 0, { 1, M, M, 1 } },
		{ "fraction 0", { 1000, 0, 0, 1, 1, 1, 0 }, -EINVAL, { 0 } },
		{ "fraction > 1", { 1000, 1.1, 0, 1, 1, 1, 0 }, -EINVAL, { 0 } },
		{ "fraction NaN", { 1000, NAN, 0, 1, 1, 1, 0 }, -EINVAL, { 0 } },
		{ "no cores", { 1000, 1, 0, 1, 0, 1, 0 }, -EINVAL, { 0 } },
		{ "ratio 0", { 1000, 1, 0, 1, 1, 0, 0 }, -EINVAL, { 0 } },
		{ "ratio too big", { 1000, 1, 0, 1, 1, 2000, 0 }, -EINVAL, { 0 } },
		{ "ratio infinite", { 1000, 1, 0, 1, 1, INFINITY, 0 }, -EINVAL, { 0 } },
	};

	(void)state;
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		const struct worker_case *c = &cases[i];
		struct mc_worker_budget out = { 0 };
		char err[128] = "";
		int r = mc_worker_budget(&c->in, &out, err, sizeof(err));

		print_message("workers: %s\n", c->name);
		assert_int_equal(r, c->ret);
		assert_err_text(r, err);
		if (r < 0)
			continue;
		assert_true(out.workers == c->out.workers);
		assert_true(out.usable == c->out.usable);
		assert_true(out.by_memory == c->out.by_memory);
		assert_true(out.by_cores == c->out.by_cores);
	}
}

struct split_case {
	const char *name;
	uint64_t total;
	struct mc_split_config cfg;
	int ret;
	struct mc_split out;
};

static void test_split(void **state)
{
	const struct mc_split_config d = MC_SPLIT_DEFAULT;
	const struct split_case cases[] = {
		{ "default", 1000000, d, 0, { 950000, 570000, 285000, 95000 } },
		{ "zero", 0, d, 0, { 0, 0, 0, 0 } },
		{ "remainder to in-flight", 7, d, 0, { 6, 3, 1, 2 } },
		{ "largest", M, d, 0,
		  { 17524406870024074034ull, 10514644122014444420ull, 5257322061007222210ull,
		    1752440687002407404ull } },
		{ "partial split", 1000, { 1, 0.5, 0.25, 0 }, 0, { 1000, 500, 250, 0 } },
		{ "partial split rounds down", 7, { 1, 0.5, 0.25, 0.1 }, 0, { 7, 3, 1, 0 } },
		{ "usable 0", 1000, { 0, 0.6, 0.3, 0.1 }, -EINVAL, { 0 } },
		{ "usable > 1", 1000, { 1.01, 0.6, 0.3, 0.1 }, -EINVAL, { 0 } },
		{ "negative share", 1000, { 0.95, -0.1, 0.3, 0.1 }, -EINVAL, { 0 } },
		{ "shares above 1", 1000, { 0.95, 0.6, 0.3, 0.2 }, -EINVAL, { 0 } },
		{ "NaN share", 1000, { 0.95, 0.6, NAN, 0.1 }, -EINVAL, { 0 } },
	};

	(void)state;
	for (size_t i = 0; i < N_ELEMS(cases); i++) {
		const struct split_case *c = &cases[i];
		struct mc_split out = { 0 };
		char err[128] = "";
		int r = mc_split(c->total, &c->cfg, &out, err, sizeof(err));

		print_message("split: %s\n", c->name);
		assert_int_equal(r, c->ret);
		assert_err_text(r, err);
		if (r < 0)
			continue;
		assert_true(out.usable == c->out.usable);
		assert_true(out.work == c->out.work);
		assert_true(out.aggregate == c->out.aggregate);
		assert_true(out.in_flight == c->out.in_flight);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scale),
		cmocka_unit_test(test_fit),
		cmocka_unit_test(test_worker_budget),
		cmocka_unit_test(test_split),
	};

	return cmocka_run_group_tests_name("memctl-budget", tests, NULL, NULL);
}
