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
 * The write is split into steps of RECLAIM_STEP_BYTES so that a job ends
 * within about one step of its time budget (RECLAIM_BUDGET_MS), and a
 * newer job supersedes an older one at the next step boundary.
 */
#ifndef VMI_RECLAIM_WORKER_H
#define VMI_RECLAIM_WORKER_H

#include <stdint.h>

#include "loop.h"

#define RECLAIM_STEP_BYTES (32u << 20)
#define RECLAIM_BUDGET_MS 2000u

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
/* Stops the thread (after the step it is in) and frees; results not yet
 * delivered are dropped.  NULL is a no-op. */
void reclaim_worker_free(struct reclaim_worker *w);

#endif
