/* SPDX-License-Identifier: Apache-2.0 */
/*
 * memory_io.c — the real struct memory_io: the policy's reach into the
 * cgroup object, Postgres (filecache), the reclaim worker, the sampler's
 * MemTotal, loop timers and the agent set.  Each function does one thing
 * and returns at once; results come back through memory_on_*().
 */
#include "memory_loop_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* One cache request in flight: what it asked, to hand back with the result. */
struct shell_cache_req {
	struct memory_shell *sh;
	uint64_t token, bytes;
};

static uint64_t io_now_ns(void *ctx)
{
	(void)ctx;
	return loop_now_ns();
}

static int io_write_limit(void *ctx, enum memory_limit which, uint64_t bytes, char *err,
			  size_t errlen)
{
	struct memory_shell *sh = ctx;

	return which == MEMORY_LIMIT_MAX ? cg_write_max(sh->cg, bytes, err, errlen)
					 : cg_write_high(sh->cg, bytes, err, errlen);
}

static int io_read_limits(void *ctx, uint64_t *max, uint64_t *high, char *err, size_t errlen)
{
	struct memory_shell *sh = ctx;
	int r = cg_read_max(sh->cg, max, err, errlen);

	return r < 0 ? r : cg_read_high(sh->cg, high, err, errlen);
}

static int io_read_current(void *ctx, uint64_t *out, char *err, size_t errlen)
{
	struct memory_shell *sh = ctx;

	return cg_read_current(sh->cg, out, err, errlen);
}

static int io_read_stat(void *ctx, struct cg_memory_stat *out, char *err, size_t errlen)
{
	struct memory_shell *sh = ctx;

	if (sh->stat_missing) {
		snprintf(err, errlen, "no memory.stat");
		return -ENOENT;
	}
	return cg_read_memory_stat(sh->cg, out, err, errlen);
}

static void io_reclaim_done(void *arg, uint64_t token, int err, uint64_t reclaimed)
{
	struct memory_shell *sh = arg;

	memory_on_reclaim_result(sh->m, token, err, reclaimed);
}

static int io_reclaim(void *ctx, uint64_t bytes, uint64_t token)
{
	struct memory_shell *sh = ctx;
	int r;

	/* Only where the kernel has the file: a plain directory has none. */
	if (faccessat(AT_FDCWD, sh->reclaim_path, W_OK, 0) < 0)
		return -errno;
	if (!sh->reclaimer) {
		r = reclaim_worker_new(sh->loop, io_reclaim_done, sh, &sh->reclaimer);
		if (r < 0)
			return r;
	}
	return reclaim_worker_submit(sh->reclaimer, cg_path(sh->cg), bytes, token);
}

static void io_reclaim_cancel(void *ctx, uint64_t token)
{
	struct memory_shell *sh = ctx;

	reclaim_worker_cancel(sh->reclaimer, token);
}

static int io_set_frozen(void *ctx, bool frozen, char *err, size_t errlen)
{
	struct memory_shell *sh = ctx;

	return frozen ? cg_freeze(sh->cg, err, errlen) : cg_thaw(sh->cg, err, errlen);
}

static int io_read_mem_total(void *ctx, uint64_t *out)
{
	struct memory_shell *sh = ctx;
	struct mc_sample s;

	if (!sh->sampler)
		return -ENODEV;
	(void)mc_sampler_read(sh->sampler, &s);
	*out = s.mem_total;
	return s.mem_total_err;
}

static void io_cache_done(void *arg, int err, uint64_t actual, const char *message)
{
	struct shell_cache_req rq = *(struct shell_cache_req *)arg;

	free(arg);
	memory_on_cache_result(rq.sh->m, rq.token, err, rq.bytes, actual, message);
}

static void io_cache_retry(void *arg, int err, uint32_t retry_in_ms, const char *message)
{
	struct shell_cache_req *rq = arg;

	memory_on_cache_retry(rq->sh->m, rq->token, err, retry_in_ms, message);
}

static int io_cache_set(void *ctx, uint64_t bytes, bool until_ok, uint64_t token)
{
	struct memory_shell *sh = ctx;
	struct shell_cache_req *rq = malloc(sizeof(*rq));
	int r;

	if (!rq)
		return -ENOMEM;
	*rq = (struct shell_cache_req){ .sh = sh, .token = token, .bytes = bytes };
	r = until_ok ? fc_ensure_size(sh->fc, bytes, io_cache_done, io_cache_retry, rq)
		     : fc_set_size(sh->fc, bytes, io_cache_done, rq);
	if (r < 0)
		free(rq);
	return r;
}

static void io_arm(void *ctx, enum memory_timer t, uint64_t delay_ns)
{
	struct memory_shell *sh = ctx;
	int r;

	if (!sh->timers[t])
		return;
	r = loop_timer_arm_ns(sh->timers[t], delay_ns, 0);
	if (r < 0)
		log_event(LOG_ERROR, "cannot arm a memory timer", LF_ERR(r), LF_END);
}

static void io_ask(void *ctx, bool predicted)
{
	struct memory_shell *sh = ctx;

	sh->hooks.request_upscale(sh->hooks.arg, predicted);
}

static void io_upscale_applied(void *ctx)
{
	struct memory_shell *sh = ctx;

	if (sh->hooks.upscale_applied)
		sh->hooks.upscale_applied(sh->hooks.arg);
}

void shell_io(struct memory_shell *sh, struct memory_io *io)
{
	*io = (struct memory_io){
		.now_ns = io_now_ns, .write_limit = io_write_limit,
		.read_limits = io_read_limits, .read_current = io_read_current,
		.read_stat = io_read_stat, .reclaim = io_reclaim,
		.reclaim_cancel = io_reclaim_cancel,
		.set_frozen = io_set_frozen, .read_mem_total = io_read_mem_total,
		.cache_set = io_cache_set, .arm = io_arm, .ask = io_ask,
		.upscale_applied = io_upscale_applied, .ctx = sh,
	};
}
