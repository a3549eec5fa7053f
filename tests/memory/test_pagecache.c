/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The memory policy core against the fake world (fake_io.h) with memory.stat,
 * memory.reclaim and PSI: memory.high events that are page cache, prediction
 * on the workload without the cache, a downscale that reclaims page cache
 * first, and stalls that ask only when the working set does not fit.  Split
 * from test_core.c (the agent sequences, the review races), whose steps it
 * shares through core_helpers.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cgroup.h"
#include "core_helpers.h"
#include "fake_io.h"

/* A cgroup of 4 GiB whose memory.current is mostly page cache. */
static void boot_with_cache(struct fake *f, struct config *cfg, uint64_t anon, uint64_t file)
{
	fake_init(f, cfg, true, false, 4 * GiB - 100 * MiB);
	f->has_stat = f->has_reclaim = true;
	f->stat = (struct cg_memory_stat){ .anon = anon, .file = file, .shmem = 16 * MiB };
	f->current = anon + file;
	assert_int_equal(fake_start(f), 0);
	fake_upscale(f, 4 * GiB);
	assert_int_equal(f->status, 200);
}

/* boot_with_cache() of 300 MiB workload and 3000 MiB page cache, flat for
 * 2 s (no growth to worry the check), then asked down to 2 GiB: the new
 * high, 1848 MiB, is below 3300 + 100.  memory.reclaim only if reclaim. */
static void downscale_into_cache(struct fake *f, struct config *cfg, bool reclaim)
{
	boot_with_cache(f, cfg, 300 * MiB, 3000 * MiB);
	f->has_reclaim = reclaim;
	run(f, 2000);
	fake_downscale(f, 2 * GiB);
}

/* boot_pg() of 8 GiB with memory.stat and memory.reclaim, anon and file
 * (page cache, no shmem) in the cgroup, flat for 2 s, then asked down to
 * 4 GiB (new high 899 MiB): the reclaim comes first, then the file cache
 * step in Postgres. */
static void downscale_with_cache_step(struct fake *f, const struct config *cfg, uint64_t anon,
				      uint64_t file)
{
	boot_pg(f, cfg, 8 * GiB);
	f->has_stat = f->has_reclaim = true;
	f->stat = (struct cg_memory_stat){ .anon = anon, .file = file };
	flat(f, anon + file);
	fake_downscale(f, 4 * GiB);
}

/* boot_with_cache() of 500 MiB workload and 500 MiB page cache; memory.stat
 * counts refaults only if refaults (5.9 and later). */
static void boot_psi(struct fake *f, struct config *cfg, bool refaults)
{
	boot_with_cache(f, cfg, 500 * MiB, 500 * MiB);
	f->stat.has_refault_file = refaults;
}

/* Samples for ms, then a PSI trigger fires. */
static void stall_after(struct fake *f, uint64_t ms)
{
	run(f, ms);
	memory_on_pressure(f->m, NULL, MEMORY_PSI_TRIGGER);
}

/* memory.high events while the cgroup is full of page cache: no freeze,
 * no ask — counted as cache events.  The old rule freezes and asks. */
static void test_page_cache_events_are_not_pressure(void **state)
{
	struct config cfg = defaults();
	struct fake f;

	(void)state;
	boot_with_cache(&f, &cfg, 500 * MiB, 3300 * MiB);
	f.current = f.high; /* the kernel reclaims cache at memory.high */
	f.stat.file = f.current - 500 * MiB;
	for (int i = 0; i < 5; i++) {
		fake_events(&f, 1);
		run(&f, 300);
	}
	assert_false(f.frozen);
	assert_int_equal(f.asks, 0);
	assert_true(f.metrics.freezes_total == 0);
	assert_true(f.metrics.memory_high_cache_events_total == 5);
	assert_true(f.metrics.workload_bytes == 516 * MiB); /* anon + shmem */
	fake_free(&f);

	cfg.cgroup.exclude_page_cache = false;
	boot_with_cache(&f, &cfg, 500 * MiB, 3300 * MiB);
	hit_high(&f);
	assert_true(f.frozen);
	assert_int_equal(f.asks, 1);
	fake_free(&f);
}

/* Growth that is page cache does not predict anything; anonymous growth
 * does. */
static void test_prediction_on_the_workload(void **state)
{
	struct config cfg = defaults();
	struct fake f;

	(void)state;
	boot_with_cache(&f, &cfg, 500 * MiB, 500 * MiB);
	for (int i = 0; i < 40; i++) { /* a scan: +100 MiB of cache a tick */
		f.stat.file += 100 * MiB;
		f.current += 100 * MiB;
		if (f.current > f.high)
			f.current = f.high, f.stat.file = f.high - 500 * MiB;
		run(&f, 100);
	}
	assert_int_equal(f.asks, 0);
	for (int i = 0; i < 40 && !f.asks; i++) { /* a sort: anon grows */
		f.stat.anon += 100 * MiB;
		f.stat.file -= 100 * MiB; /* the kernel drops cache for it */
		run(&f, 100);
	}
	assert_int_equal(f.asks, 1);
	assert_true(f.ask_predicted[0]);
	fake_free(&f);
}

/* A downscale the workload fits but the page cache does not: reclaim,
 * then lower; a kernel that cannot reclaim enough: refused, saying how
 * much; no memory.reclaim: the old rule decides. */
static void test_downscale_reclaims_first(void **state)
{
	struct config cfg = defaults();
	struct fake f;

	(void)state;
	downscale_into_cache(&f, &cfg, true); /* new high 1848 MiB < 3300 + 100 */
	assert_int_equal(f.answers, 1);       /* waits for the kernel */
	assert_true(f.reclaim_open);
	/* the difference, and a quarter of the buffer for what comes in between */
	assert_true(f.reclaim_bytes == 3300 * MiB + 100 * MiB - 1848 * MiB + 25 * MiB);
	fake_reclaim_answer(&f, UINT64_MAX);
	assert_int_equal(f.answers, 2);
	assert_non_null(strstr(f.body, "\"Ok\":true"));
	assert_true(f.high == 1848 * MiB);
	assert_true(f.metrics.reclaims_total == 1);
	fake_free(&f);

	downscale_into_cache(&f, &cfg, true);
	fake_reclaim_answer(&f, 1000 * MiB); /* the kernel gives up early */
	assert_non_null(strstr(f.body, "\"Ok\":false"));
	assert_non_null(strstr(f.body, "Page cache not reclaimed: 552 MiB could not be reclaimed "
				       "(1000 MiB were)"));
	assert_true(f.high == 4 * GiB - 200 * MiB); /* nothing lowered */
	fake_free(&f);

	downscale_into_cache(&f, &cfg, false);
	assert_non_null(strstr(f.body, "Calculated memory.high too low"));
	assert_int_equal(f.reclaims, 0);
	fake_free(&f);
}

/* Reclaim, then the file cache step in Postgres: the cgroup charges a
 * little meanwhile (Postgres's own connection for the step; 0.5–0.9 MiB in
 * the VM test).  A reclaim to the exact byte made the check before the
 * write refuse every such downscale; the reclaim's room absorbs it.  The
 * room is never more than the page cache there is. */
static void test_reclaim_leaves_room_for_the_cache_step(void **state)
{
	struct config cfg = defaults();
	struct fake f;

	(void)state;
	/* new high 899 MiB: workload 600 + 100 fits */
	downscale_with_cache_step(&f, &cfg, 600 * MiB, 400 * MiB);
	assert_true(f.reclaim_open);
	assert_true(f.reclaim_bytes == 1000 * MiB + 100 * MiB - 899 * MiB + 25 * MiB);
	fake_reclaim_answer(&f, UINT64_MAX);
	assert_int_equal(f.answers, 1); /* now the file cache step */
	f.current += MiB;               /* charged meanwhile */
	f.stat.file += MiB;
	pg_answer_next(&f, 0);
	assert_int_equal(f.answers, 2);
	assert_non_null(strstr(f.body, "\"Ok\":true"));
	assert_true(f.high == 899 * MiB);
	fake_free(&f);

	/* More than the room comes in between: refused, and the text says
	 * what the reclaim took. */
	downscale_with_cache_step(&f, &cfg, 600 * MiB, 400 * MiB);
	fake_reclaim_answer(&f, UINT64_MAX);
	f.current += 40 * MiB;
	f.stat.file += 40 * MiB;
	pg_answer_next(&f, 0);
	assert_int_equal(f.answers, 2);
	assert_non_null(strstr(f.body, "Page cache not reclaimed: 15 MiB could not be reclaimed "
				       "(226 MiB were)"));
	fake_free(&f);

	/* Page cache just above the line: the reclaim asks for what there is. */
	/* 795 + 100 fits 899; 805 + 100 does not */
	downscale_with_cache_step(&f, &cfg, 795 * MiB, 10 * MiB);
	assert_true(f.reclaim_open);
	assert_true(f.reclaim_bytes == 10 * MiB);
	fake_free(&f);
}

/* PSI: a trigger asks at once; readings ask when "some" grew by 100 ms
 * within a second; totals alone (a trigger watches) never ask.  Here the
 * reclaimed page cache is read again (refaults): the working set does not
 * fit. */
static void test_psi_stalls_ask(void **state)
{
	struct config cfg = defaults();
	struct cg_pressure pr = { 0 };
	struct fake f;

	(void)state;
	boot_psi(&f, &cfg, true);
	memory_on_pressure(f.m, &pr, MEMORY_PSI_READING);
	for (int s = 0; s < 3; s++) {
		f.stat.refault_file += 5000; /* pages, each second */
		run(&f, 1000);
		pr.some_total_us += s == 0 ? 50000 : 150000;
		memory_on_pressure(f.m, &pr, s == 1 ? MEMORY_PSI_TOTALS : MEMORY_PSI_READING);
		/* 50 ms: noise; 150 ms as totals: a trigger is watching */
		assert_int_equal(f.asks, s == 2 ? 1 : 0);
	}
	assert_false(f.ask_predicted[0]);
	assert_true(f.metrics.psi_some_seconds_total > 0.34);
	run(&f, 2500); /* past the back-off's first step */
	f.stat.refault_file += 5000;
	stall_after(&f, 300);
	assert_int_equal(f.asks, 2);
	assert_true(f.metrics.psi_stalls_total == 2);
	fake_free(&f);
}

/* A stall while the kernel reclaims page cache that nobody reads again
 * (a scan larger than memory.high: the kernel counts that reclaim as
 * stall) asks nothing; the same stall asks once the cache is read again
 * or once the workload itself reaches memory.high. */
static void test_psi_stall_from_cache_reclaim(void **state)
{
	struct config cfg = defaults();
	struct fake f;

	(void)state;
	boot_psi(&f, &cfg, true);
	f.stat.refault_file = 100000; /* old refaults do not count */
	for (int s = 0; s < 4; s++) {
		f.stat.refault_file += 300; /* program text, now and then */
		stall_after(&f, 1000);
	}
	assert_int_equal(f.asks, 0);
	assert_true(f.metrics.psi_stalls_total == 0);
	f.stat.refault_file += 2000; /* 8 MiB read again: thrashing */
	stall_after(&f, 300);
	assert_int_equal(f.asks, 1);
	fake_free(&f);

	boot_psi(&f, &cfg, true);
	run(&f, 1000);
	f.stat.anon = f.high - 110 * MiB; /* + shmem 16 + buffer 100 > high */
	f.current = f.stat.anon + f.stat.file;
	stall_after(&f, 300);
	assert_true(f.asks >= 1);
	fake_free(&f);

	/* Without refault counts (before 5.9) the workload decides alone. */
	boot_psi(&f, &cfg, false);
	stall_after(&f, 1000);
	assert_int_equal(f.asks, 0);
	fake_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_page_cache_events_are_not_pressure),
		cmocka_unit_test(test_prediction_on_the_workload),
		cmocka_unit_test(test_downscale_reclaims_first),
		cmocka_unit_test(test_reclaim_leaves_room_for_the_cache_step),
		cmocka_unit_test(test_psi_stalls_ask),
		cmocka_unit_test(test_psi_stall_from_cache_reclaim),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
