/* SPDX-License-Identifier: Apache-2.0 */
/* fake_io.c — see fake_io.h. */
#include "fake_io.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cgroup.h"

/* ---- struct memory_io ------------------------------------------------------ */

static uint64_t io_now_ns(void *ctx)
{
	return ((struct fake *)ctx)->now_ns;
}

static int io_write_limit(void *ctx, enum memory_limit which, uint64_t bytes, char *err,
			  size_t errlen)
{
	struct fake *f = ctx;
	struct fake_write w = { .which = which, .bytes = bytes, .current = fake_workload(f) };

	if (f->fail_write) {
		snprintf(err, errlen, "fake: write refused");
		return -EIO;
	}
	if (which == MEMORY_LIMIT_MAX) {
		w.before = f->wrote_max;
		f->max = f->wrote_max = bytes;
	} else {
		w.before = f->wrote_high;
		f->high = f->wrote_high = bytes;
	}
	f->last_write = w;
	f->writes++;
	if (f->on_write)
		f->on_write(f, &w);
	return 0;
}

static int io_read_limits(void *ctx, uint64_t *max, uint64_t *high, char *err, size_t errlen)
{
	struct fake *f = ctx;

	if (f->fail_read) {
		snprintf(err, errlen, "fake: read refused");
		return -EIO;
	}
	*max = f->max;
	*high = f->high;
	return 0;
}

static int io_read_current(void *ctx, uint64_t *out, char *err, size_t errlen)
{
	struct fake *f = ctx;

	if (f->fail_read) {
		snprintf(err, errlen, "fake: read refused");
		return -EIO;
	}
	*out = f->current;
	return 0;
}

static int io_read_stat(void *ctx, struct cg_memory_stat *out, char *err, size_t errlen)
{
	struct fake *f = ctx;

	if (!f->has_stat) {
		snprintf(err, errlen, "fake: no memory.stat");
		return -ENOENT;
	}
	*out = f->stat;
	return 0;
}

static int io_reclaim(void *ctx, uint64_t bytes, uint64_t token)
{
	struct fake *f = ctx;

	if (!f->has_reclaim)
		return -ENOENT;
	f->reclaim_open = true;
	f->reclaim_bytes = bytes;
	f->reclaim_token = token;
	f->reclaims++;
	return 0;
}

static void io_reclaim_cancel(void *ctx, uint64_t token)
{
	struct fake *f = ctx;

	/* A running reclaim stops at its next step: here, at once, unanswered. */
	if (f->reclaim_open && f->reclaim_token == token) {
		f->reclaim_open = false;
		f->reclaim_cancels++;
	}
}

uint64_t fake_workload(const struct fake *f)
{
	return f->has_stat ? cg_workload_bytes(f->current, &f->stat) : f->current;
}

void fake_reclaim_answer(struct fake *f, uint64_t can)
{
	uint64_t cache = f->stat.file > f->stat.shmem ? f->stat.file - f->stat.shmem : 0;
	uint64_t got = f->reclaim_bytes;

	assert_true(f->reclaim_open);
	if (got > can)
		got = can;
	if (got > cache)
		got = cache;
	f->current -= got;
	f->stat.file -= got;
	f->reclaim_open = false;
	memory_on_reclaim_result(f->m, f->reclaim_token, got < f->reclaim_bytes ? -EAGAIN : 0,
				 got);
}

static int io_set_frozen(void *ctx, bool frozen, char *err, size_t errlen)
{
	struct fake *f = ctx;

	if (frozen ? f->fail_freeze : f->fail_thaw) {
		snprintf(err, errlen, "fake: cgroup.freeze refused");
		return -EIO;
	}
	if (frozen && !f->frozen)
		f->frozen_since_ns = f->now_ns;
	if (!frozen && f->frozen && f->now_ns - f->frozen_since_ns > f->longest_freeze_ns)
		f->longest_freeze_ns = f->now_ns - f->frozen_since_ns;
	f->frozen = frozen;
	return 0;
}

static int io_read_mem_total(void *ctx, uint64_t *out)
{
	struct fake *f = ctx;

	*out = f->mem_total;
	return f->mem_total_err;
}

static int io_cache_set(void *ctx, uint64_t bytes, bool until_ok, uint64_t token)
{
	struct fake *f = ctx;

	if (f->pg_fail_start)
		return -ENOMEM;
	if (f->npg == FAKE_MAX_PG) {
		/* Forget answered requests (indexes of open ones move). */
		size_t kept = 0;

		for (size_t i = 0; i < f->npg; i++)
			if (f->pg[i].state != FAKE_PG_DONE)
				f->pg[kept++] = f->pg[i];
		f->npg = kept;
	}
	assert_true(f->npg < FAKE_MAX_PG);
	/* A newer size supersedes every older one still open. */
	for (size_t i = 0; i < f->npg; i++)
		if (f->pg[i].state == FAKE_PG_PENDING)
			f->pg[i].state = FAKE_PG_SUPERSEDED;
	f->pg[f->npg++] = (struct fake_pg_req){ .token = token, .bytes = bytes,
						.until_ok = until_ok };
	return 0;
}

static void io_arm(void *ctx, enum memory_timer t, uint64_t delay_ns)
{
	struct fake *f = ctx;

	f->timer_at[t] = delay_ns ? f->now_ns + delay_ns : 0;
}

static void io_ask(void *ctx, bool predicted)
{
	struct fake *f = ctx;

	if (f->asks < FAKE_MAX_ASKS) {
		f->ask_ms[f->asks] = fake_now_ms(f);
		f->ask_predicted[f->asks] = predicted;
		f->ask_applied[f->asks] = f->applied;
		memory_get_status(f->m, &f->ask_status[f->asks]); /* a getter: no re-entry */
	}
	f->asks++;
}

static void io_upscale_applied(void *ctx)
{
	((struct fake *)ctx)->applied++;
}

/* ---- the world ------------------------------------------------------------- */

void fake_init(struct fake *f, const struct config *cfg, bool cgroup, bool filecache,
	       uint64_t mem_total)
{
	memset(f, 0, sizeof(*f));
	f->cfg = *cfg;
	f->cfg.cgroup.enabled = cgroup;
	f->cfg.filecache.enabled = filecache;
	f->now_ns = 1000000000ull; /* 1 s: no event sits at time 0 */
	f->max = f->high = f->wrote_max = f->wrote_high = CG_UNLIMITED;
	f->mem_total = mem_total;
	f->pg_max = 1ull << 40;
}

int fake_start(struct fake *f)
{
	const struct memory_io io = {
		.now_ns = io_now_ns, .write_limit = io_write_limit, .read_limits = io_read_limits,
		.read_current = io_read_current, .read_stat = io_read_stat,
		.reclaim = io_reclaim, .reclaim_cancel = io_reclaim_cancel,
		.set_frozen = io_set_frozen,
		.read_mem_total = io_read_mem_total, .cache_set = io_cache_set, .arm = io_arm,
		.ask = io_ask, .upscale_applied = io_upscale_applied, .ctx = f,
	};
	struct memory_sample first = {
		.mem_total = f->mem_total, .mem_total_err = f->mem_total_err, .meminfo_read = true,
		.current = f->current, .current_ok = true, .stat = f->stat, .stat_ok = f->has_stat,
	};

	assert_int_equal(memory_core_new(&f->cfg, &f->metrics, &io, f->cfg.cgroup.enabled,
					 f->cfg.filecache.enabled, &f->m),
			 0);
	return memory_core_start(f->m, &first);
}

void fake_free(struct fake *f)
{
	memory_core_free(f->m);
	f->m = NULL;
	assert_false(f->frozen); /* never left frozen */
}

uint64_t fake_now_ms(const struct fake *f)
{
	return f->now_ns / 1000000u;
}

void fake_advance(struct fake *f, uint64_t ms)
{
	uint64_t end = f->now_ns + ms * 1000000u;

	for (;;) {
		int due = -1;

		for (int t = 0; t < MEMORY_TIMER__COUNT; t++)
			if (f->timer_at[t] && f->timer_at[t] <= end &&
			    (due < 0 || f->timer_at[t] < f->timer_at[due]))
				due = t;
		if (due < 0)
			break;
		if (f->timer_at[due] > f->now_ns)
			f->now_ns = f->timer_at[due];
		f->timer_at[due] = 0;
		memory_on_timer(f->m, (enum memory_timer)due);
	}
	f->now_ns = end;
}

void fake_sample(struct fake *f)
{
	struct memory_sample s = {
		.mem_total = f->mem_total, .mem_total_err = f->mem_total_err, .meminfo_read = true,
		.current = f->current, .current_ok = !f->fail_read,
		.stat = f->stat, .stat_ok = f->has_stat,
	};

	memory_on_sample(f->m, &s);
}

void fake_events(struct fake *f, uint64_t n)
{
	memory_on_high_events(f->m, n);
}

int fake_pg_next(const struct fake *f)
{
	for (size_t i = 0; i < f->npg; i++)
		if (f->pg[i].state != FAKE_PG_DONE)
			return (int)i;
	return -1;
}

void fake_pg_answer(struct fake *f, int i, int err)
{
	struct fake_pg_req *rq = &f->pg[i];
	uint64_t actual = 0;

	assert_true(i >= 0 && (size_t)i < f->npg && rq->state != FAKE_PG_DONE);
	if (err && err != -ECANCELED && rq->until_ok && rq->state == FAKE_PG_PENDING) {
		/* An ensure: reports and tries again later. */
		memory_on_cache_retry(f->m, rq->token, err, 250, "fake: Postgres is down");
		return;
	}
	rq->state = FAKE_PG_DONE;
	if (err == 0) {
		actual = (rq->bytes < f->pg_max ? rq->bytes : f->pg_max) / MiB * MiB;
		f->pg_size = actual;
	}
	memory_on_cache_result(f->m, rq->token, err, rq->bytes, actual,
			       err ? "fake: Postgres failed" : "fake: set");
}

void fake_pg_settle(struct fake *f)
{
	int i;

	while ((i = fake_pg_next(f)) >= 0)
		fake_pg_answer(f, i, f->pg[i].state == FAKE_PG_SUPERSEDED ? -ECANCELED : 0);
}

static void fake_done(void *arg, unsigned status, const char *body)
{
	struct fake *f = arg;

	f->answers++;
	f->status = status;
	snprintf(f->body, sizeof(f->body), "%s", body);
}

void fake_upscale(struct fake *f, uint64_t vm_bytes)
{
	assert_int_equal(memory_upscale(f->m, vm_bytes, fake_done, f), 0);
}

void fake_downscale(struct fake *f, uint64_t vm_bytes)
{
	assert_int_equal(memory_downscale(f->m, vm_bytes, fake_done, f), 0);
}
