/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A seeded randomized sequence test of the memory policy core: thousands
 * of steps interleaving /upscale, /downscale, memory.high events, MemTotal
 * changes, usage changes, Postgres answers (success, failure, late
 * results of superseded requests), timer expiries, write and thaw faults
 * a cgroup made anew and, in the third configuration, page cache coming
 * and going with memory.stat and memory.reclaim — with the invariants
 * checked after every step:
 *
 *   I1 memory.high <= memory.max;
 *   I2 outside a raise or hold, memory.max - memory.high = oom_buffer;
 *   I3 after an applied upscale the recorded VM size is the agent's;
 *   I4 memory.high is never lowered below the workload (memory.current,
 *      without page cache where memory.stat is known) + memory_high_buffer
 *      as it is at the moment of the write — not by a downscale either: it
 *      checks again before it writes;
 *   I5 asks of one wish come at most once per back-off step (2, 4, 8, 8 s),
 *      a predicted one also min_interval after the one before;
 *   I6 no predicted ask while usage (what decisions are made on) is below
 *      critical_ratio x memory.high and memory.high is more than the
 *      horizon away at the growth rate; an unpredicted ask only in a step
 *      with a memory.high event that was pressure, or a stall;
 *   I7 never frozen longer than max_upscale_wait (+ the time a thaw fault
 *      was injected in that step, + 2 ms of slack);
 *   I8 every /upscale and /downscale is answered exactly once;
 *   I9 with nothing pending and the limits as planned, memory.max and the
 *      file cache Postgres holds fit in the basis.
 *
 * VMI_SEQ_SEED=<n> replays one seed, VMI_SEQ_STEPS=<n> sets the length,
 * VMI_SEQ_LOG=1 shows the policy's log.  A failure prints seed and step.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cgroup.h"
#include "fake_io.h"
#include "log.h"
#include "plan.h"

struct run {
	struct fake f;
	uint64_t rng;
	unsigned long seed;
	size_t step;
	const char *what;        /* the step's kind, for failure messages */
	uint64_t vm;             /* the agent's idea of the VM size */
	bool lowered_into_workload;
	size_t asks_seen;        /* asks checked so far */
	unsigned applied_seen;   /* applied upscales before the last ask checked */
	size_t wish_asks;        /* asks since the last applied upscale */
	uint64_t last_ask_ms;
	bool any_ask;
	uint64_t thaw_fault_ms;  /* time thaw faults were injected in this step */
	unsigned calls;          /* /upscale and /downscale calls made */
};

static uint64_t rnd(struct run *r)
{
	/* xorshift64*: deterministic per seed, good enough for choices. */
	r->rng ^= r->rng >> 12;
	r->rng ^= r->rng << 25;
	r->rng ^= r->rng >> 27;
	return r->rng * 2685821657736338717ull;
}

static uint64_t pick(struct run *r, uint64_t n)
{
	return rnd(r) % n;
}

#define CHECK(cond)                                                                        \
	do {                                                                               \
		if (!(cond))                                                               \
			fail_msg("seed %lu step %zu (%s): invariant %s failed", r->seed,   \
				 r->step, r->what, #cond);                                 \
	} while (0)

/* I4 is judged write by write: a lowering of memory.high below what the
 * workload uses plus its buffer at that moment is noted. */
static struct run *g_run;

static void on_write(struct fake *f, const struct fake_write *w)
{
	uint64_t floor_high = w->current + f->cfg.cgroup.memory_high_buffer;

	if (w->which == MEMORY_LIMIT_HIGH && w->bytes < w->before && w->bytes < floor_high)
		g_run->lowered_into_workload = true;
}

/* ---- steps --------------------------------------------------------------- */

/* Usage: with memory.stat, part of it page cache. */
static void set_current(struct run *r, uint64_t current)
{
	struct fake *f = &r->f;

	f->current = current;
	if (f->has_stat) {
		f->stat.file = current / 100 * pick(r, 90);
		f->stat.shmem = f->stat.file / 10;
		f->stat.anon = current - f->stat.file;
	}
}

static const uint64_t sizes[] = { 2 * GiB, 3 * GiB, 4 * GiB, 6 * GiB, 8 * GiB };

static void step_upscale(struct run *r)
{
	struct fake *f = &r->f;
	uint64_t vm = sizes[pick(r, 5)];
	uint64_t granted = f->metrics.upscales_granted_total;
	unsigned answers = f->answers;
	struct memory_status st;

	r->what = "upscale";
	/* Usually the memory is there first; sometimes /upscale wins. */
	if (vm > r->vm && pick(r, 3))
		f->mem_total = vm - 100 * MiB - pick(r, 64) * MiB;
	r->vm = vm;
	r->calls++;
	fake_upscale(f, vm);
	memory_get_status(f->m, &st);
	/* I3: applied means recorded. */
	if (f->metrics.upscales_granted_total > granted)
		CHECK(st.vm_bytes == vm);
	/* Answered now, or (a smaller size) once Postgres has shrunk the
	 * cache: only ever 200 or 500, never a 4xx the agent drops us for. */
	if (f->answers != answers)
		CHECK(f->status == 200 || f->status == 500);
}

static void step_downscale(struct run *r)
{
	struct fake *f = &r->f;
	uint64_t vm = sizes[pick(r, 5)];

	r->what = "downscale";
	r->calls++;
	fake_downscale(f, vm);
}

static void step_events(struct run *r)
{
	struct fake *f = &r->f;

	r->what = "memory.high events";
	/* The kernel counts events when usage reaches memory.high. */
	if (f->high != CG_UNLIMITED && f->current < f->high)
		set_current(r, f->high);
	fake_sample(f);
	fake_events(f, 1 + pick(r, 3));
}

static void step_usage(struct run *r)
{
	struct fake *f = &r->f;
	uint64_t high = f->high == CG_UNLIMITED ? f->mem_total : f->high;

	r->what = "usage change";
	set_current(r, high / 100 * (20 + pick(r, 85)));
	fake_sample(f);
}

static void step_mem_total(struct run *r)
{
	struct fake *f = &r->f;

	r->what = "MemTotal change";
	f->mem_total = r->vm - 100 * MiB - pick(r, 128) * MiB;
	fake_sample(f);
}

static void step_postgres(struct run *r)
{
	struct fake *f = &r->f;
	int i = fake_pg_next(f);
	static const int errs[] = { 0, 0, 0, -ECONNREFUSED, -ETIMEDOUT };

	r->what = "Postgres answer";
	if (f->reclaim_open && pick(r, 2)) {
		r->what = "the kernel reclaims";
		fake_reclaim_answer(f, pick(r, 2) ? UINT64_MAX : pick(r, 512) * MiB);
		return;
	}
	if (i < 0)
		return;
	if (pick(r, 2) == 0) {
		/* The queue runs: superseded requests end, each cancelled or,
		 * if it was already talking to Postgres, carried out. */
		r->what = "Postgres drains superseded requests";
		for (size_t k = 0; k < r->f.npg; k++)
			if (f->pg[k].state == FAKE_PG_SUPERSEDED)
				fake_pg_answer(f, (int)k, pick(r, 2) ? -ECANCELED : 0);
		return;
	}
	if (pick(r, 4) == 0) /* Postgres's maximum moves */
		f->pg_max = pick(r, 2) ? (1ull << 40) : (512 + pick(r, 1024)) * MiB;
	if (f->pg[i].state == FAKE_PG_SUPERSEDED)
		/* Cancelled, or it was already talking to Postgres and ran. */
		fake_pg_answer(f, i, pick(r, 2) ? -ECANCELED : 0);
	else
		fake_pg_answer(f, i, errs[pick(r, 5)]);
}

static void step_time(struct run *r)
{
	struct fake *f = &r->f;
	uint64_t ms = 1 + pick(r, 3000);

	r->what = "time passes";
	for (uint64_t t = 0; t < ms; t += 100) {
		fake_advance(f, ms - t < 100 ? ms - t : 100);
		fake_sample(f);
	}
}

static void step_fault(struct run *r)
{
	struct fake *f = &r->f;

	switch (pick(r, 3)) {
	case 0:
		r->what = "cgroup writes fail for a while";
		f->fail_write = true;
		step_usage(r);
		fake_events(f, 1);
		fake_advance(f, 100);
		fake_sample(f);
		f->fail_write = false;
		fake_advance(f, 100);
		fake_sample(f);
		break;
	case 1:
		r->what = "thaw fails for a few ms";
		set_current(r, f->high == CG_UNLIMITED ? f->current : f->high);
		fake_events(f, 1);
		f->fail_thaw = true;
		fake_advance(f, 25);
		r->thaw_fault_ms = 25;
		f->fail_thaw = false;
		fake_advance(f, 5);
		break;
	default:
		r->what = "cgroup made anew";
		f->max = f->high = CG_UNLIMITED;
		f->frozen = false;
		memory_on_cgroup_recreated(f->m);
		break;
	}
}

/* ---- invariants ------------------------------------------------------------ */

static uint64_t ask_step_ms(size_t k)
{
	/* The wait before the (k+1)-th ask of one wish, k >= 1. */
	uint64_t w = PLAN_ASK_STEP_FIRST_MS;

	while (--k > 0 && w < PLAN_ASK_STEP_MAX_MS)
		w *= 2;
	return w < PLAN_ASK_STEP_MAX_MS ? w : PLAN_ASK_STEP_MAX_MS;
}

static void check_asks(struct run *r, bool pressure_in_step)
{
	struct fake *f = &r->f;

	for (; r->asks_seen < f->asks && r->asks_seen < FAKE_MAX_ASKS; r->asks_seen++) {
		uint64_t at = f->ask_ms[r->asks_seen];
		bool predicted = f->ask_predicted[r->asks_seen];

		if (f->ask_applied[r->asks_seen] != r->applied_seen) {
			/* An applied upscale in between starts the series over. */
			r->applied_seen = f->ask_applied[r->asks_seen];
			r->wish_asks = 0;
		}
		/* I5 */
		if (getenv("VMI_SEQ_LOG"))
			fprintf(stderr, "ask #%zu at %llu predicted %d: %zu of this wish, "
				"previous at %llu\n", r->asks_seen, (unsigned long long)at,
				predicted, r->wish_asks, (unsigned long long)r->last_ask_ms);
		if (r->wish_asks > 0)
			CHECK(at - r->last_ask_ms >= ask_step_ms(r->wish_asks));
		if (predicted && r->any_ask)
			CHECK(at - r->last_ask_ms >= f->cfg.predict.min_interval_ms);
		/* I6: a predicted ask needs critical usage or memory.high within
		 * the horizon; an unpredicted one needs a memory.high event. */
		if (predicted) {
			const struct memory_status st = f->ask_status[r->asks_seen];
			double ms = st.growth_bytes_per_sec > 0 && st.memory_high > st.usage
					    ? ceil((double)(st.memory_high - st.usage) *
						   1000.0 / st.growth_bytes_per_sec)
					    : (st.memory_high <= st.usage ? 0 : INFINITY);

			CHECK(st.usage * 1.0 >=
				      f->cfg.predict.critical_ratio * (double)st.memory_high - 1 ||
			      ms <= (double)f->cfg.predict.horizon_ms);
		} else {
			CHECK(pressure_in_step);
		}
		r->wish_asks++;
		r->last_ask_ms = at;
		r->any_ask = true;
	}
}

static void check(struct run *r, bool pressure_in_step)
{
	struct fake *f = &r->f;
	struct memory_status st;

	memory_get_status(f->m, &st);
	if (getenv("VMI_SEQ_LOG"))
		fprintf(stderr, "files max %llu high %llu; status known %d max %llu high %llu "
			"raised %d held %d\n", (unsigned long long)f->max,
			(unsigned long long)f->high, st.limits_known,
			(unsigned long long)st.memory_max, (unsigned long long)st.memory_high,
			st.raised, st.held);
	if (st.limits_known) {
		CHECK(f->max == st.memory_max && f->high == st.memory_high); /* reported = files */
		CHECK(f->high <= f->max);                                       /* I1 */
		if (!st.raised && !st.held && f->max != CG_UNLIMITED)
			CHECK(f->max - f->high == f->cfg.cgroup.oom_buffer);   /* I2 */
	}
	CHECK(!r->lowered_into_workload);                               /* I4 */
	check_asks(r, pressure_in_step);
	CHECK(r->calls - f->answers <= 1);                               /* I8 */
	if (st.limits_known && !st.raised && !st.held && fake_pg_next(f) < 0 &&
	    f->cfg.filecache.enabled && f->cfg.filecache.in_memory && st.file_cache_known &&
	    r->calls == f->answers)                                      /* I9 */
		CHECK(f->max + f->pg_size <=
		      plan_basis(&f->cfg, st.vm_bytes, f->mem_total) + 1);
	/* I7 */
	if (f->frozen)
		CHECK(f->now_ns - f->frozen_since_ns <=
		      (f->cfg.cgroup.max_upscale_wait_ms + 2) * 1000000u);
	CHECK(f->longest_freeze_ns <=
	      (f->cfg.cgroup.max_upscale_wait_ms + r->thaw_fault_ms + 2) * 1000000u);
	f->longest_freeze_ns = 0;
	r->thaw_fault_ms = 0;
}

static void run_seed(unsigned long seed, size_t steps, bool filecache, bool page_cache)
{
	struct config cfg;
	struct run run = { .seed = seed, .rng = seed * 0x9E3779B97F4A7C15ull + 1 };
	struct run *r = &run;

	config_defaults(&cfg);
	g_run = r;
	r->vm = 4 * GiB;
	fake_init(&r->f, &cfg, true, filecache, r->vm - 100 * MiB);
	r->f.on_write = on_write;
	r->f.has_stat = r->f.has_reclaim = page_cache;
	set_current(r, 512 * MiB);
	r->what = "start";
	assert_int_equal(fake_start(&r->f), 0);
	check(r, false);
	for (r->step = 1; r->step <= steps; r->step++) {
		uint64_t pressure = r->f.metrics.memory_high_events_total -
				    r->f.metrics.memory_high_cache_events_total +
				    r->f.metrics.psi_stalls_total;

		if (getenv("VMI_SEQ_LOG"))
			fprintf(stderr, "---- step %zu at %llu ms\n", r->step,
				(unsigned long long)fake_now_ms(&r->f));
		switch (pick(r, 10)) {
		case 0:
			step_upscale(r);
			break;
		case 1:
			step_downscale(r);
			break;
		case 2:
			step_events(r);
			break;
		case 3:
			step_mem_total(r);
			break;
		case 4:
		case 5:
			step_usage(r);
			break;
		case 6:
			step_postgres(r);
			break;
		case 7:
		case 8:
			step_time(r);
			break;
		default:
			step_fault(r);
			break;
		}
		check(r, r->f.metrics.memory_high_events_total -
				 r->f.metrics.memory_high_cache_events_total +
				 r->f.metrics.psi_stalls_total != pressure);
	}
	r->what = "end";
	fake_free(&r->f);
	CHECK(r->f.answers == r->calls); /* I8: the pending one answered at stop */
}

static void seeds(bool filecache, bool page_cache)
{
	const char *one = getenv("VMI_SEQ_SEED");
	const char *len = getenv("VMI_SEQ_STEPS");
	size_t steps = len ? strtoul(len, NULL, 10) : 5000;

	if (one) {
		run_seed(strtoul(one, NULL, 10), steps, filecache, page_cache);
		return;
	}
	for (unsigned long seed = 1; seed <= 24; seed++)
		run_seed(seed, steps, filecache, page_cache);
}

static void test_sequences_cgroup(void **state)
{
	(void)state;
	seeds(false, false);
}

static void test_sequences_cgroup_and_cache(void **state)
{
	(void)state;
	seeds(true, false);
}

static void test_sequences_page_cache_and_reclaim(void **state)
{
	(void)state;
	seeds(true, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sequences_cgroup),
		cmocka_unit_test(test_sequences_cgroup_and_cache),
		cmocka_unit_test(test_sequences_page_cache_and_reclaim),
	};

	/* Tens of thousands of steps: the policy's log lines go nowhere,
	 * unless VMI_SEQ_LOG is set (to replay one seed). */
	log_setup(getenv("VMI_SEQ_LOG") ? LOG_DEBUG : LOG_ERROR + 1, LOG_FORMAT_TEXT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
