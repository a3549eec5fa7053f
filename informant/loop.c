/* SPDX-License-Identifier: Apache-2.0 */
/*
 * loop.c — epoll + timerfd dispatcher.
 *
 * Entries are looked up by fd through a table indexed by fd number.  A
 * removed entry is only marked dead and freed at the end of the dispatch
 * round, because the current epoll_wait() batch may still hold a pointer
 * to it; that also makes removal safe from inside any callback.
 */
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define LOOP_BATCH 64

struct loop_entry {
	int fd;
	bool dead;
	loop_fd_cb cb;
	void *arg;
	struct loop_entry *next_dead;
};

struct loop {
	int epfd;
	bool stop;
	struct loop_entry **by_fd; /* indexed by fd */
	size_t by_fd_len;
	struct loop_entry *dead; /* freed after the current round */
};

struct loop_timer {
	struct loop *loop;
	int fd;
	bool armed;
	bool periodic;
	loop_timer_cb cb;
	void *arg;
};

uint64_t loop_now_ns(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC cannot fail with a valid clock id. */
	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int loop_new(struct loop **out)
{
	struct loop *l = calloc(1, sizeof(*l));

	if (!l)
		return -ENOMEM;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int r = -errno;
		free(l);
		return r;
	}
	*out = l;
	return 0;
}

static void loop_reap(struct loop *l)
{
	while (l->dead) {
		struct loop_entry *e = l->dead;
		l->dead = e->next_dead;
		free(e);
	}
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->by_fd_len; i++)
		free(l->by_fd[i]);
	loop_reap(l);
	free(l->by_fd);
	close(l->epfd);
	free(l);
}

static int loop_table_reserve(struct loop *l, int fd)
{
	size_t want = (size_t)fd + 1, n;
	struct loop_entry **t;

	if (want <= l->by_fd_len)
		return 0;
	n = l->by_fd_len ? l->by_fd_len : 16;
	while (n < want)
		n *= 2;
	t = realloc(l->by_fd, n * sizeof(*t));
	if (!t)
		return -ENOMEM;
	memset(t + l->by_fd_len, 0, (n - l->by_fd_len) * sizeof(*t));
	l->by_fd = t;
	l->by_fd_len = n;
	return 0;
}

int loop_add_fd(struct loop *l, int fd, uint32_t events, loop_fd_cb cb, void *arg)
{
	struct epoll_event ev = { .events = events };
	struct loop_entry *e;
	int r;

	if (fd < 0 || !cb)
		return -EINVAL;
	r = loop_table_reserve(l, fd);
	if (r < 0)
		return r;
	if (l->by_fd[fd])
		return -EEXIST;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->fd = fd;
	e->cb = cb;
	e->arg = arg;
	ev.data.ptr = e;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		r = -errno;
		free(e);
		return r;
	}
	l->by_fd[fd] = e;
	return 0;
}

static struct loop_entry *loop_lookup(struct loop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->by_fd_len)
		return NULL;
	return l->by_fd[fd];
}

int loop_mod_fd(struct loop *l, int fd, uint32_t events)
{
	struct loop_entry *e = loop_lookup(l, fd);
	struct epoll_event ev = { .events = events };

	if (!e)
		return -ENOENT;
	ev.data.ptr = e;
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

int loop_del_fd(struct loop *l, int fd)
{
	struct loop_entry *e = loop_lookup(l, fd);
	int r = 0;

	if (!e)
		return -ENOENT;
	/* EBADF/ENOENT here means the fd was closed first; the entry still goes. */
	if (epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL) < 0 && errno != EBADF && errno != ENOENT)
		r = -errno;
	l->by_fd[fd] = NULL;
	e->dead = true;
	e->next_dead = l->dead;
	l->dead = e;
	return r;
}

static void loop_timer_fired(void *arg, uint32_t events)
{
	struct loop_timer *t = arg;
	uint64_t expirations;

	(void)events;
	/* EAGAIN: re-armed or disarmed after the wake-up was queued; not a fire. */
	if (read(t->fd, &expirations, sizeof(expirations)) != (ssize_t)sizeof(expirations))
		return;
	if (!t->periodic)
		t->armed = false;
	t->cb(t->arg); /* last: the callback may free t */
}

int loop_timer_new(struct loop *l, loop_timer_cb cb, void *arg, struct loop_timer **out)
{
	struct loop_timer *t;
	int r;

	if (!cb)
		return -EINVAL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->loop = l;
	t->cb = cb;
	t->arg = arg;
	t->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (t->fd < 0) {
		r = -errno;
		free(t);
		return r;
	}
	r = loop_add_fd(l, t->fd, EPOLLIN, loop_timer_fired, t);
	if (r < 0) {
		close(t->fd);
		free(t);
		return r;
	}
	*out = t;
	return 0;
}

int loop_timer_arm_ns(struct loop_timer *t, uint64_t delay_ns, uint64_t interval_ns)
{
	struct itimerspec its = {
		.it_value = { .tv_sec = (time_t)(delay_ns / 1000000000u),
			      .tv_nsec = (long)(delay_ns % 1000000000u) },
		.it_interval = { .tv_sec = (time_t)(interval_ns / 1000000000u),
				 .tv_nsec = (long)(interval_ns % 1000000000u) },
	};

	/* Re-arming resets the expiration count; a wake-up already queued in
	 * this round then reads EAGAIN and is ignored by loop_timer_fired(). */
	if (timerfd_settime(t->fd, 0, &its, NULL) < 0)
		return -errno;
	t->armed = delay_ns != 0;
	t->periodic = t->armed && interval_ns != 0;
	return 0;
}

int loop_timer_arm(struct loop_timer *t, uint64_t delay_ms, uint64_t interval_ms)
{
	return loop_timer_arm_ns(t, delay_ms * 1000000u, interval_ms * 1000000u);
}

bool loop_timer_armed(const struct loop_timer *t)
{
	return t && t->armed;
}

void loop_timer_free(struct loop_timer *t)
{
	if (!t)
		return;
	(void)loop_del_fd(t->loop, t->fd);
	close(t->fd);
	free(t);
}

int loop_run_once(struct loop *l, int timeout_ms)
{
	struct epoll_event evs[LOOP_BATCH];
	int n = epoll_wait(l->epfd, evs, LOOP_BATCH, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct loop_entry *e = evs[i].data.ptr;
		if (!e->dead)
			e->cb(e->arg, evs[i].events);
	}
	loop_reap(l);
	return n;
}

int loop_run(struct loop *l)
{
	l->stop = false;
	while (!l->stop) {
		int r = loop_run_once(l, -1);
		if (r < 0)
			return r;
	}
	return 0;
}

void loop_stop(struct loop *l)
{
	l->stop = true;
}
