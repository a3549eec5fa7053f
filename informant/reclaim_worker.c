/* SPDX-License-Identifier: Apache-2.0 */
/* reclaim_worker.c — see reclaim_worker.h. */
#include "reclaim_worker.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "log.h"

struct reclaim_job {
	char path[PATH_MAX];
	uint64_t bytes, token;
};

struct reclaim_result {
	uint64_t token, reclaimed;
	int err;
	char message[256];
};

#define RESULTS_MAX 4

struct reclaim_worker {
	struct loop *loop;
	reclaim_done_fn done;
	void *arg;
	int efd;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	/* under lock */
	bool stop, queued;
	uint64_t running, cancelled; /* tokens: the job in hand, one to stop */
	struct reclaim_job job;
	struct reclaim_result results[RESULTS_MAX];
	size_t nresults;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Under lock: hand a result to the loop (the oldest is dropped if the
 * loop has not taken four: it only matters that the newest arrives). */
static void post_locked(struct reclaim_worker *w, const struct reclaim_result *res)
{
	uint64_t one = 1;

	if (w->nresults == RESULTS_MAX) {
		memmove(&w->results[0], &w->results[1], sizeof(w->results[0]) * (RESULTS_MAX - 1));
		w->nresults--;
	}
	w->results[w->nresults++] = *res;
	/* An eventfd write only fails when the counter would overflow. */
	(void)!write(w->efd, &one, sizeof(one));
}

/* Runs one job in steps; the lock is held only between steps. */
static void run_job(struct reclaim_worker *w, const struct reclaim_job *job,
		    struct reclaim_result *res)
{
	uint64_t deadline = mono_ms() + RECLAIM_BUDGET_MS;

	*res = (struct reclaim_result){ .token = job->token };
	while (res->reclaimed < job->bytes) {
		uint64_t step = job->bytes - res->reclaimed;
		bool superseded;

		if (step > RECLAIM_STEP_BYTES)
			step = RECLAIM_STEP_BYTES;
		res->err = cg_reclaim_at(job->path, step, res->message, sizeof(res->message));
		if (res->err < 0)
			return;
		res->reclaimed += step;
		pthread_mutex_lock(&w->lock);
		superseded = w->queued || w->stop || w->cancelled == job->token;
		pthread_mutex_unlock(&w->lock);
		if (superseded) {
			res->err = -ECANCELED;
			return;
		}
		if (res->reclaimed < job->bytes && mono_ms() >= deadline) {
			res->err = -ETIMEDOUT;
			return;
		}
	}
}

static void *worker_main(void *arg)
{
	struct reclaim_worker *w = arg;
	struct reclaim_job job;
	struct reclaim_result res;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->stop && !w->queued)
			pthread_cond_wait(&w->wake, &w->lock);
		if (w->stop)
			break;
		job = w->job;
		w->queued = false;
		w->running = job.token;
		pthread_mutex_unlock(&w->lock);
		run_job(w, &job, &res);
		pthread_mutex_lock(&w->lock);
		w->running = 0;
		post_locked(w, &res);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static void worker_readable(void *arg, uint32_t events)
{
	struct reclaim_worker *w = arg;
	struct reclaim_result res[RESULTS_MAX];
	uint64_t count;
	size_t n;

	(void)events;
	if (read(w->efd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_event(LOG_WARN, "reclaim worker: eventfd read failed", LF_ERR(-errno), LF_END);
	pthread_mutex_lock(&w->lock);
	n = w->nresults;
	memcpy(res, w->results, sizeof(res[0]) * n);
	w->nresults = 0;
	pthread_mutex_unlock(&w->lock);
	for (size_t i = 0; i < n; i++) {
		if (res[i].err < 0 && res[i].err != -EAGAIN && res[i].err != -ECANCELED &&
		    res[i].err != -ETIMEDOUT)
			log_event(LOG_WARN, "memory.reclaim failed", LF_STR("error", res[i].message),
				  LF_END);
		w->done(w->arg, res[i].token, res[i].err, res[i].reclaimed);
	}
}

int reclaim_worker_new(struct loop *loop, reclaim_done_fn done, void *arg,
		       struct reclaim_worker **out)
{
	struct reclaim_worker *w = calloc(1, sizeof(*w));
	int r;

	if (!w)
		return -ENOMEM;
	w->loop = loop;
	w->done = done;
	w->arg = arg;
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->efd < 0) {
		r = -errno;
		free(w);
		return r;
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->wake, NULL);
	r = loop_add_fd(loop, w->efd, EPOLLIN, worker_readable, w);
	if (r == 0)
		r = -pthread_create(&w->thread, NULL, worker_main, w);
	if (r < 0) {
		(void)loop_del_fd(loop, w->efd);
		close(w->efd);
		pthread_cond_destroy(&w->wake);
		pthread_mutex_destroy(&w->lock);
		free(w);
		return r;
	}
	*out = w;
	return 0;
}

int reclaim_worker_submit(struct reclaim_worker *w, const char *dirpath, uint64_t bytes,
			  uint64_t token)
{
	struct reclaim_result cancelled = { .err = -ECANCELED };

	if (strlen(dirpath) >= sizeof(w->job.path))
		return -ENAMETOOLONG;
	pthread_mutex_lock(&w->lock);
	if (w->queued) {
		cancelled.token = w->job.token;
		post_locked(w, &cancelled);
	}
	snprintf(w->job.path, sizeof(w->job.path), "%s", dirpath);
	w->job.bytes = bytes;
	w->job.token = token;
	w->queued = true;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

void reclaim_worker_cancel(struct reclaim_worker *w, uint64_t token)
{
	struct reclaim_result cancelled = { .token = token, .err = -ECANCELED };

	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	if (w->queued && w->job.token == token) {
		w->queued = false;
		post_locked(w, &cancelled);
	} else if (w->running == token) {
		w->cancelled = token;
	}
	pthread_mutex_unlock(&w->lock);
}

void reclaim_worker_free(struct reclaim_worker *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	(void)loop_del_fd(w->loop, w->efd);
	close(w->efd);
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
