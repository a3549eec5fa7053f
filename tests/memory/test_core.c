/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The memory policy core against the fake world (fake_io.h): the agent
 * sequences that went wrong before the planner (each test names its case
 * of the policy issue), the orchestration around Postgres: superseding,
 * the rollback after a failed cgroup write, the cache cap, and the races
 * around a downscale found in review.  Page cache, PSI and reclaim have
 * their own program (test_pagecache.c); the steps both take are in
 * core_helpers.c.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cgroup.h"
#include "core_helpers.h"
#include "fake_io.h"
#include "plan.h"

static void status(struct fake *f, struct memory_status *st)
{
	memory_get_status(f->m, st);
}

/* boot_pg(), then usage flat at current: where the races R1 and R5 start. */
static void boot_settled(struct fake *f, const struct config *cfg, uint64_t vm, uint64_t current)
{
	boot_pg(f, cfg, vm);
	flat(f, current);
}

/* Usage at 0.95 of memory.high: critical. */
static void usage_critical(struct fake *f)
{
	f->current = f->high / 100 * 95;
}

/* The agent grants: the hot-plugged memory reaches MemTotal first, then
 * the /upscale to vm bytes comes. */
static void grant(struct fake *f, uint64_t vm)
{
	f->mem_total = vm - 100 * MiB;
	fake_upscale(f, vm);
}

/* Pressure at memory.high until the raise reaches memory.max: one event
 * every 30 ms. */
static void raise_to_max(struct fake *f)
{
	for (int i = 0; i < 200 && f->high < f->max; i++) {
		hit_high(f);
		fake_advance(f, 30);
	}
	assert_true(f->high == f->max);
}

/* Case 1: an /upscale that arrives while memory.high is raised, before the
 * hot-plug reaches MemTotal, is applied; the raise stays until MemTotal
 * grows, then the limits are the new size's with the OOM buffer back. */
static void test_upscale_during_raise_keeps_the_memory(void **state)
{
	struct config cfg = defaults();
	struct memory_status st;
	struct fake f;
	uint64_t granted;

	(void)state;
	boot(&f, &cfg, false, 4 * GiB);
	assert_int_equal(f.status, 200);
	assert_true(f.max == 4 * GiB - 100 * MiB && f.high == f.max - 100 * MiB);
	raise_to_max(&f);
	granted = f.metrics.upscales_granted_total;

	fake_upscale(&f, 5 * GiB); /* before the memory arrives */
	assert_int_equal(f.status, 200);
	assert_string_equal(f.body, "{}");
	status(&f, &st);
	assert_true(st.vm_bytes == 5 * GiB);
	assert_true(f.metrics.upscales_granted_total == granted + 1);
	assert_true(f.high == f.max); /* still raised: the workload is there */

	f.mem_total = 5 * GiB - 100 * MiB; /* the hot-plug lands */
	fake_sample(&f);
	assert_true(f.max == 5 * GiB - 100 * MiB);
	assert_true(f.max - f.high == cfg.cgroup.oom_buffer);
	status(&f, &st);
	assert_false(st.raised || st.held);
	fake_free(&f);
}

/* Case 2: after an upscale leaves usage at 0.88 of the new memory.high
 * with zero growth, nothing asks: the level is judged afresh (the old
 * hysteresis kept "critical" down to 0.85). */
static void test_level_judged_afresh_after_new_limits(void **state)
{
	struct config cfg = defaults();
	struct fake f;
	size_t asks;

	(void)state;
	boot(&f, &cfg, false, 2 * GiB);
	/* Usage steps to critical (0.95 of memory.high) and stays there. */
	usage_critical(&f);
	run(&f, 5000);
	assert_true(f.asks >= 1);
	/* The agent grants a little: usage is now 0.88 of the new high. */
	grant(&f, 2195 * MiB);
	assert_true(f.current * 100 / f.high >= 86 && f.current * 100 / f.high <= 89);
	asks = f.asks;
	run(&f, 10000);
	assert_int_equal(f.asks, asks);
	fake_free(&f);
}

/* Case 2, other half: a downscale that would leave usage critical is
 * refused, so the daemon does not ask for the memory back at once. */
static void test_no_ping_pong_after_downscale(void **state)
{
	struct config cfg = defaults();
	struct fake f;
	size_t asks;

	(void)state;
	boot(&f, &cfg, false, 8 * GiB);
	f.current = 3700 * MiB; /* 4 GiB would leave high 3896 MiB: 95 % */
	run(&f, 500);
	asks = f.asks;
	fake_downscale(&f, 4 * GiB);
	assert_int_equal(f.status, 200);
	assert_non_null(strstr(f.body, "\"Ok\":false"));
	assert_non_null(strstr(f.body, "too tight"));
	run(&f, 3000);
	assert_int_equal(f.asks, asks);
	/* At 80 % it is accepted, and still nothing asks. */
	f.current = 3100 * MiB;
	run(&f, 500);
	fake_downscale(&f, 4 * GiB);
	assert_non_null(strstr(f.body, "\"Ok\":true"));
	run(&f, 3000);
	assert_int_equal(f.asks, asks);
	fake_free(&f);
}

/* Case 3: at the agent's maximum asks back off 2, 4, 8, 8 s, and start
 * over after an applied upscale. */
static void test_asks_back_off(void **state)
{
	struct config cfg = defaults();
	struct fake f;
	const uint64_t gaps[] = { 2000, 4000, 8000, 8000 };

	(void)state;
	boot(&f, &cfg, false, 4 * GiB);
	usage_critical(&f);
	run(&f, 30000);
	assert_true(f.asks == 5);
	for (size_t i = 0; i < 4; i++)
		assert_true(f.ask_ms[i + 1] - f.ask_ms[i] == gaps[i]);
	/* memory.high events in between ask no more often either. */
	for (int i = 0; i < 50; i++) {
		fake_events(&f, 1);
		fake_advance(&f, 100);
	}
	assert_true(f.asks <= 6);
	/* A grant starts over: the next need asks at once. */
	grant(&f, 8 * GiB);
	usage_critical(&f);
	size_t before = f.asks;
	run(&f, 1200);
	assert_true(f.asks == before + 1);
	fake_free(&f);
}

/* Case 4: Postgres's maximum raised by the operator is picked up by the
 * next resize. */
static void test_cache_cap_raised_is_picked_up(void **state)
{
	struct config cfg = defaults();
	struct memory_status st;
	struct fake f;

	(void)state;
	fake_init(&f, &cfg, true, true, 4 * GiB - 100 * MiB);
	f.pg_max = 1 * GiB;
	assert_int_equal(fake_start(&f), 0);
	fake_pg_settle(&f);
	status(&f, &st);
	assert_true(st.file_cache_known && st.file_cache_bytes == 1 * GiB);
	f.pg_max = 1ull << 40; /* the operator raises neon.max_file_cache_size */
	grant(&f, 8 * GiB);
	assert_int_equal(f.status, 200);
	fake_pg_settle(&f);
	status(&f, &st);
	assert_true(st.file_cache_bytes ==
		    plan_cache_target(&f.cfg, 8 * GiB - 100 * MiB));
	assert_true(st.file_cache_bytes > 1 * GiB);
	/* The limits leave room for exactly that. */
	assert_true(f.max == 8 * GiB - 100 * MiB - st.file_cache_bytes);
	fake_free(&f);
}

/* Case 5: a shrinking /upscale superseded while its cache shrink waits is
 * answered 200 {}, and counts as no grant. */
static void test_superseded_shrinking_upscale(void **state)
{
	struct config cfg = defaults();
	struct fake f;
	uint64_t granted;
	unsigned applied;

	(void)state;
	boot_pg(&f, &cfg, 8 * GiB);
	granted = f.metrics.upscales_granted_total;
	applied = f.applied;
	fake_upscale(&f, 4 * GiB); /* smaller: waits for the cache to shrink */
	assert_int_equal(f.answers, 1);
	fake_upscale(&f, 8 * GiB); /* the agent changes its mind */
	assert_int_equal(f.answers, 3);
	/* Both answered 200 {} (the superseded one first). */
	assert_int_equal(f.status, 200);
	assert_string_equal(f.body, "{}");
	assert_true(f.metrics.upscales_granted_total == granted + 1);
	assert_int_equal(f.applied, applied + 1);
	fake_pg_settle(&f);
	/* A refused one (the workload does not fit) is no grant either. */
	f.current = 7 * GiB;
	fake_upscale(&f, 4 * GiB);
	assert_int_equal(f.status, 200);
	assert_string_equal(f.body, "{}");
	assert_true(f.metrics.upscales_granted_total == granted + 1);
	fake_free(&f);
}

/* Case 6: a cgroup made anew ("max" in its files) gets the limits again;
 * what is reported is what the files hold. */
static void test_recreated_cgroup_gets_limits(void **state)
{
	struct config cfg = defaults();
	struct memory_status st;
	struct fake f;
	uint64_t max, high;

	(void)state;
	fake_init(&f, &cfg, true, false, 4 * GiB - 100 * MiB);
	assert_int_equal(fake_start(&f), 0);
	max = f.max;
	high = f.high;
	f.max = f.high = CG_UNLIMITED;
	memory_on_cgroup_recreated(f.m);
	assert_true(f.max == max && f.high == high);
	/* Writes refused in the new directory: nothing is claimed. */
	f.max = f.high = CG_UNLIMITED;
	f.fail_write = true;
	memory_on_cgroup_recreated(f.m);
	status(&f, &st);
	assert_false(st.limits_known);
	run(&f, 300);
	status(&f, &st);
	assert_false(st.limits_known);
	assert_true(f.metrics.memory_max_bytes == 0);
	/* ... and the next sample after the fault writes them. */
	f.fail_write = false;
	run(&f, 100);
	assert_true(f.max == max && f.high == high);
	status(&f, &st);
	assert_true(st.limits_known && st.memory_max == max && st.memory_high == high);
	fake_free(&f);
}

/* Case 7: on steady growth the first ask of every round comes at least
 * 1 s before memory.high: at the horizon (2 s), or earlier when the
 * critical share comes first (large VMs). */
static void test_prediction_lead(void **state)
{
	struct config cfg = defaults();
	const uint64_t rate = 320 * MiB; /* per second */
	uint64_t vm = 4 * GiB;
	struct fake f;

	(void)state;
	fake_init(&f, &cfg, true, false, vm - 100 * MiB);
	f.current = 1 * GiB;
	start_sized(&f, vm);
	for (int round = 0; round < 8; round++) {
		size_t asks = f.asks;
		uint64_t lead_ms;

		while (f.asks == asks) {
			fake_advance(&f, 100);
			f.current += rate / 10;
			assert_true(f.current < f.high); /* asked before the crossing */
			fake_sample(&f);
		}
		lead_ms = (f.high - f.current) * 1000 / rate;
		print_message("round %d: asked %llu ms ahead\n", round,
			      (unsigned long long)lead_ms);
		assert_true(lead_ms >= 1000);
		assert_true(lead_ms <= cfg.predict.horizon_ms ||
			    f.current >= f.high / 100 * 89); /* critical came first */
		/* The agent grants 1 GiB 100 ms later, memory first. */
		fake_advance(&f, 100);
		f.current += rate / 10;
		vm += 1 * GiB;
		grant(&f, vm);
		assert_int_equal(f.status, 200);
	}
	fake_free(&f);
}

/* D22: the cache shrank but the cgroup write failed: the old cache size is
 * asked back, the answer is 500, and the limits fit the old size. */
static void test_downscale_rollback_after_failed_write(void **state)
{
	struct config cfg = defaults();
	struct memory_status st;
	struct fake f;
	uint64_t cache_before;
	int i;

	(void)state;
	boot_pg(&f, &cfg, 8 * GiB);
	status(&f, &st);
	cache_before = st.file_cache_bytes;
	fake_downscale(&f, 4 * GiB);
	assert_int_equal(f.answers, 1); /* waits for Postgres */
	f.fail_write = true;
	pg_answer_next(&f, 0);
	assert_int_equal(f.status, 500);
	assert_true(f.metrics.downscales_failed_total == 1);
	/* The rollback and the re-plan go to Postgres; the last one wins. */
	i = (int)f.npg - 1;
	assert_true(f.pg[i].bytes == cache_before);
	f.fail_write = false;
	fake_pg_settle(&f);
	run(&f, 100);
	status(&f, &st);
	assert_true(st.vm_bytes == 8 * GiB);
	assert_true(st.file_cache_bytes == cache_before);
	assert_true(f.max == 8 * GiB - 100 * MiB - cache_before);
	fake_free(&f);
}

/* An /upscale supersedes a downscale waiting for Postgres: Ok:false at
 * once; the late cache answer only updates what we know. */
static void test_upscale_supersedes_waiting_downscale(void **state)
{
	struct config cfg = defaults();
	struct fake f;

	(void)state;
	boot_pg(&f, &cfg, 8 * GiB);
	fake_downscale(&f, 4 * GiB);
	fake_upscale(&f, 8 * GiB);
	assert_int_equal(f.answers, 3);
	fake_pg_settle(&f);
	run(&f, 100);
	/* The VM is 8 GiB; cache and limits converge on that. */
	assert_true(f.pg_size == plan_cache_target(&f.cfg, 8 * GiB - 100 * MiB));
	assert_true(f.max == 8 * GiB - 100 * MiB - f.pg_size);
	fake_free(&f);
}

/* The freeze is bounded by max_upscale_wait, also when the thaw fails
 * a few times. */
static void test_freeze_bounded(void **state)
{
	struct config cfg = defaults();
	struct fake f;

	(void)state;
	fake_init(&f, &cfg, true, false, 4 * GiB - 100 * MiB);
	assert_int_equal(fake_start(&f), 0);
	hit_high(&f);
	assert_true(f.frozen);
	assert_int_equal(f.asks, 1);
	f.fail_thaw = true;
	fake_advance(&f, 20);
	assert_true(f.frozen);
	fake_advance(&f, 1);
	fake_advance(&f, 1);
	f.fail_thaw = false;
	fake_advance(&f, 1);
	assert_false(f.frozen);
	assert_true(f.longest_freeze_ns <= (cfg.cgroup.max_upscale_wait_ms + 3) * 1000000u);
	fake_free(&f);
}

/* ---- races around a downscale (found in review) ------------------------- */

/* An 8 GiB VM with the file cache whose MemTotal reads mem_total (short
 * while hot-plug blocks are on their way) and whose Postgres caps the
 * cache at pg_max (0: the fake's 1 TiB); Postgres settled, usage flat at
 * 600 MiB. */
static void boot_8g_settled(struct fake *f, const struct config *cfg, uint64_t mem_total,
			    uint64_t pg_max)
{
	fake_init(f, cfg, true, true, mem_total);
	if (pg_max)
		f->pg_max = pg_max;
	start_sized(f, 8 * GiB);
	fake_pg_settle(f);
	flat(f, 600 * MiB);
}

/* R1: the downscale is checked when it arrives, but the limits are written
 * only after Postgres has shrunk the cache; usage that grew in between is
 * not looked at again: memory.high lands below memory.current + buffer. */
static void test_downscale_check_is_stale_when_written(void **state)
{
	struct config cfg = defaults();
	struct fake f;

	(void)state;
	boot_settled(&f, &cfg, 8 * GiB, 600 * MiB);
	fake_downscale(&f, 4 * GiB);         /* new high 899 MiB: 600 + 100 fits */
	assert_int_equal(f.answers, 1);      /* waits for Postgres */
	f.current = 1500 * MiB;              /* the workload grows meanwhile */
	run(&f, 100);
	pg_answer_next(&f, 0);
	assert_int_equal(f.answers, 2);
	print_message("answer %s; memory.high %llu MiB, memory.current %llu MiB\n", f.body,
		      (unsigned long long)(f.high / MiB), (unsigned long long)(f.current / MiB));
	/* Either refused, or the limits still leave the workload its buffer. */
	assert_true(strstr(f.body, "\"Ok\":false") ||
		    f.high >= f.current + cfg.cgroup.memory_high_buffer);
	fake_free(&f);
}

/* R2: MemTotal moves (a hot-plug block lands late) while a downscale waits
 * for Postgres: cache_size() sends the OLD VM's target, which supersedes
 * the downscale's own cache request: the downscale fails with 500. */
static void test_mem_total_change_during_downscale(void **state)
{
	struct config cfg = defaults();
	struct fake f;

	(void)state;
	boot_8g_settled(&f, &cfg, 8 * GiB - 228 * MiB, 0); /* not all plugged yet */
	fake_downscale(&f, 4 * GiB);
	assert_int_equal(f.answers, 1);      /* waits for Postgres */
	f.mem_total = 8 * GiB - 100 * MiB;   /* the last block lands */
	fake_sample(&f);
	fake_pg_settle(&f);
	print_message("downscale answer: %u %s; file cache in Postgres %llu MiB\n", f.status,
		      f.body, (unsigned long long)(f.pg_size / MiB));
	assert_int_equal(f.status, 200);
	assert_non_null(strstr(f.body, "\"Ok\":true"));
	fake_free(&f);
}

/* R2b: the same, but the downscale's request was already talking to
 * Postgres (filecache lets a running request finish): the downscale is
 * accepted, then the queued background request sets the cache back to the
 * 8 GiB VM's size in what is now a 4 GiB VM. */
static void test_cache_regrows_after_downscale(void **state)
{
	struct config cfg = defaults();
	struct fake f;
	int ds;

	(void)state;
	boot_8g_settled(&f, &cfg, 8 * GiB - 228 * MiB, 0);
	fake_downscale(&f, 4 * GiB);
	ds = fake_pg_next(&f);
	f.mem_total = 8 * GiB - 100 * MiB;
	fake_sample(&f);
	fake_pg_answer(&f, ds, 0);           /* it was running: it completes */
	assert_non_null(strstr(f.body, "\"Ok\":true"));
	fake_pg_settle(&f);                  /* the background one runs after it */
	print_message("VM 4 GiB: file cache in Postgres %llu MiB (target %llu MiB)\n",
		      (unsigned long long)(f.pg_size / MiB),
		      (unsigned long long)(plan_cache_target(&f.cfg, 4 * GiB - 100 * MiB) / MiB));
	assert_true(f.pg_size <= plan_cache_target(&f.cfg, 4 * GiB - 100 * MiB));
	fake_free(&f);
}

/* R2c: no MemTotal change needed: Postgres's maximum caps the cache, a
 * background resize was running when /downscale came; its (superseded)
 * success re-sends the old target, which cancels the downscale's request. */
static void test_capped_cache_result_cancels_downscale(void **state)
{
	struct config cfg = defaults();
	struct fake f;
	int bg;

	(void)state;
	/* neon.max_file_cache_size below the computed target */
	boot_8g_settled(&f, &cfg, 8 * GiB - 100 * MiB, 1 * GiB);
	/* any cache_size() re-sends a capped size: e.g. a MemTotal wobble */
	f.mem_total -= 4 * MiB;
	fake_sample(&f);
	bg = fake_pg_next(&f);
	assert_true(bg >= 0);
	fake_downscale(&f, 4 * GiB);
	fake_pg_answer(&f, bg, 0);           /* was running: carried out */
	fake_pg_settle(&f);
	print_message("downscale answer: %u %s\n", f.status, f.body);
	assert_int_equal(f.status, 200);
	assert_non_null(strstr(f.body, "\"Ok\":true"));
	fake_free(&f);
}

/* R3: switching [cgroup] exclude_page_cache by SIGHUP (the comparison
 * switch of issue 18) changes what "usage" means under the same EMA: the
 * jump reads as growth of GiB/s and asks for memory nobody needs. */
static void test_rule_switch_is_not_growth(void **state)
{
	struct config cfg = defaults(), cfg2;
	struct fake f;

	(void)state;
	fake_init(&f, &cfg, true, false, 4 * GiB - 100 * MiB);
	f.has_stat = true;
	f.stat = (struct cg_memory_stat){ .anon = 500 * MiB, .file = 2500 * MiB,
					  .shmem = 16 * MiB };
	f.current = 3000 * MiB;              /* 77 % of memory.high: not critical */
	assert_int_equal(fake_start(&f), 0);
	fake_upscale(&f, 4 * GiB);
	run(&f, 3000);
	assert_int_equal(f.asks, 0);
	cfg2 = cfg;
	cfg2.cgroup.exclude_page_cache = false;
	memory_core_reconfigure(f.m, &cfg2);
	run(&f, 500);
	print_message("asks after the switch: %zu\n", f.asks);
	assert_int_equal(f.asks, 0);
	fake_free(&f);
}

/* R5: a shrinking /upscale whose Postgres step fails is answered 500,
 * although README says a shrinking /upscale "is always answered 200 {}". */
static void test_shrinking_upscale_postgres_failure(void **state)
{
	struct config cfg = defaults();
	struct fake f;

	(void)state;
	boot_settled(&f, &cfg, 8 * GiB, 600 * MiB);
	fake_upscale(&f, 4 * GiB);
	pg_answer_next(&f, -ECONNREFUSED);
	print_message("/upscale answer: %u %s\n", f.status, f.body);
	assert_int_equal(f.status, 200);
	fake_free(&f);
}

/* R6: memory_upscale() reads MemTotal itself; when the /upscale then
 * turns out a shrink and is refused, the MemTotal change it read is never
 * acted on: the sample sees no change, the limits stay planned from the
 * old MemTotal (memory.max above what the VM now has). */
static void test_mem_total_read_by_refused_upscale_is_lost(void **state)
{
	struct config cfg = defaults();
	struct fake f;

	(void)state;
	boot(&f, &cfg, false, 8 * GiB);
	f.current = f.high / 100 * 92;       /* busy, but far above the hold floor */
	run(&f, 3000);
	f.mem_total -= 256 * MiB;            /* memory leaves (not sampled yet) */
	fake_upscale(&f, 8 * GiB);          /* the agent repeats its size */
	print_message("/upscale: %u %s\n", f.status, f.body);
	run(&f, 3000);
	print_message("MemTotal %llu MiB, memory.max %llu MiB\n",
		      (unsigned long long)(f.mem_total / MiB), (unsigned long long)(f.max / MiB));
	assert_true(f.max <= f.mem_total);
	fake_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_upscale_during_raise_keeps_the_memory),
		cmocka_unit_test(test_level_judged_afresh_after_new_limits),
		cmocka_unit_test(test_no_ping_pong_after_downscale),
		cmocka_unit_test(test_asks_back_off),
		cmocka_unit_test(test_cache_cap_raised_is_picked_up),
		cmocka_unit_test(test_superseded_shrinking_upscale),
		cmocka_unit_test(test_recreated_cgroup_gets_limits),
		cmocka_unit_test(test_prediction_lead),
		cmocka_unit_test(test_downscale_rollback_after_failed_write),
		cmocka_unit_test(test_upscale_supersedes_waiting_downscale),
		cmocka_unit_test(test_freeze_bounded),
		cmocka_unit_test(test_downscale_check_is_stale_when_written),
		cmocka_unit_test(test_mem_total_change_during_downscale),
		cmocka_unit_test(test_cache_regrows_after_downscale),
		cmocka_unit_test(test_capped_cache_result_cancels_downscale),
		cmocka_unit_test(test_rule_switch_is_not_growth),
		cmocka_unit_test(test_shrinking_upscale_postgres_failure),
		cmocka_unit_test(test_mem_total_read_by_refused_upscale_is_lost),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
