/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reclaim_worker.h — memory.reclaim off the event loop.
 *
 * A write to memory.reclaim returns only when the kernel has reclaimed
 * the amount (or given up): tens of milliseconds for page cache, seconds
 * when it has to work for it.  The loop must never wait that long (it
 * thaws the cgroup, answers health checks), so one worker thread does the
 * writes and hands the result back through an eventfd in the loop.  The
 * thread touches nothing but its job: a path, a byte count, a token.
 *
 * The write is split into steps of RECLAIM_STEP_BYTES: the budget
 * (RECLAIM_BUDGET_MS), a newer job and a cancel take effect at the next
 * step boundary.  One step has no bound of its own (the kernel's), but 32
 * MiB of page cache is a few milliseconds of reclaim.
 */
#ifndef VMI_RECLAIM_WORKER_H
#define VMI_RECLAIM_WORKER_H

#include <stdint.h>

#include "loop.h"

#define RECLAIM_STEP_BYTES (32u << 20)
/* Leaves the downscale's Postgres step time within its deadline. */
#define RECLAIM_BUDGET_MS 1000u

struct reclaim_worker;

/* err: 0 (all reclaimed), -EAGAIN (the kernel could reclaim no more),
 * -ETIMEDOUT (the budget ran out), -ECANCELED (a newer job), -errno. */
typedef void (*reclaim_done_fn)(void *arg, uint64_t token, int err, uint64_t reclaimed);

int reclaim_worker_new(struct loop *loop, reclaim_done_fn done, void *arg,
		       struct reclaim_worker **out);
/* Queues a job (a queued one not started yet is replaced: its result is
 * -ECANCELED).  0, -ENAMETOOLONG or -ENOMEM. */
int reclaim_worker_submit(struct reclaim_worker *w, const char *dirpath, uint64_t bytes,
			  uint64_t token);
/* The job with this token is no longer wanted: a queued one is dropped, a
 * running one stops after its step (its result still comes). */
void reclaim_worker_cancel(struct reclaim_worker *w, uint64_t token);
/* Stops the thread (after the step it is in) and frees; results not yet
 * delivered are dropped.  NULL is a no-op. */
void reclaim_worker_free(struct reclaim_worker *w);

#endif
