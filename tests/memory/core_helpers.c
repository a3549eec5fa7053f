/* SPDX-License-Identifier: Apache-2.0 */
/*
 * core_helpers.c — see core_helpers.h.  A failed step fails the running
 * cmocka test, as it did when it was a static helper of test_core.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core_helpers.h"

struct config defaults(void)
{
	struct config cfg;

	config_defaults(&cfg);
	return cfg;
}

void start_sized(struct fake *f, uint64_t vm)
{
	assert_int_equal(fake_start(f), 0);
	fake_upscale(f, vm);
}

void boot(struct fake *f, const struct config *cfg, bool cache, uint64_t vm)
{
	fake_init(f, cfg, true, cache, vm - 100 * MiB);
	start_sized(f, vm);
	assert_int_equal(f->status, 200);
}

void boot_pg(struct fake *f, const struct config *cfg, uint64_t vm)
{
	boot(f, cfg, true, vm);
	fake_pg_settle(f);
}

void run(struct fake *f, uint64_t ms)
{
	for (uint64_t t = 0; t < ms; t += 100) {
		fake_advance(f, 100);
		fake_sample(f);
	}
}

void flat(struct fake *f, uint64_t current)
{
	f->current = current;
	run(f, 2000);
}

void hit_high(struct fake *f)
{
	f->current = f->high;
	fake_events(f, 1);
}

void pg_answer_next(struct fake *f, int err)
{
	fake_pg_answer(f, fake_pg_next(f), err);
}
