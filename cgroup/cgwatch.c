/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cgwatch.c — memory.high events from memory.events.
 *
 * One inotify instance for the life of the object (D2), wrapped in an epoll
 * fd of our own so the caller's registration survives a re-creation.  Every
 * wake-up and every safety-net poll compares the `high` counter with the
 * last value read, so nothing is missed between notifications and a counter
 * that goes backwards (cgroup recreated) is a reset, not silence (D3).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "cg_internal.h"

/* Reads per drain: a writer faster than us cannot keep us here; the rest
 * stays readable and level-triggered epoll wakes the caller again. */
#define DRAIN_MAX_READS 64

static void drop_inotify(struct cg *cg)
{
	if (cg->inotify_fd < 0)
		return;
	epoll_ctl(cg->epoll_fd, EPOLL_CTL_DEL, cg->inotify_fd, NULL);
	close(cg->inotify_fd);
	cg->inotify_fd = -1;
	cg->wd = -1;
}

/* Creates the inotify instance and/or the watch, whichever is missing. */
static int arm_inotify(struct cg *cg, char *err, size_t errlen)
{
	char file[PATH_MAX + 16];
	int e;

	if (cg->inotify_fd < 0) {
		struct epoll_event ev = { .events = EPOLLIN };

		cg->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (cg->inotify_fd < 0) {
			e = errno;
			snprintf(err, errlen, "%s: inotify_init1: %s (check "
				 "fs.inotify.max_user_instances; polling meanwhile)", cg->path,
				 strerror(e));
			return -e;
		}
		ev.data.fd = cg->inotify_fd;
		if (epoll_ctl(cg->epoll_fd, EPOLL_CTL_ADD, cg->inotify_fd, &ev) < 0) {
			e = errno;
			drop_inotify(cg);
			snprintf(err, errlen, "%s: epoll_ctl(inotify): %s", cg->path, strerror(e));
			return -e;
		}
	}
	if (cg->wd >= 0)
		return 0;
	snprintf(file, sizeof(file), "%s/memory.events", cg->path);
	cg->wd = inotify_add_watch(cg->inotify_fd, file, IN_MODIFY);
	if (cg->wd < 0) {
		e = errno;
		snprintf(err, errlen, "%s: inotify_add_watch: %s (polling meanwhile)", file,
			 strerror(e));
		return -e;
	}
	return 0;
}

/* Reads `high` and turns its change since the last read into a count. */
static int compare_high(struct cg *cg, uint64_t *new_events, char *err, size_t errlen)
{
	struct cg_memory_events ev;
	int r = cg_read_memory_events(cg, &ev, err, errlen);

	if (r < 0)
		return r;
	/* A decrease means the cgroup was recreated: start over from it. */
	*new_events = ev.high > cg->last_high ? ev.high - cg->last_high : 0;
	cg->last_high = ev.high;
	return 0;
}

int cg_watch_start(struct cg *cg, char *err, size_t errlen)
{
	struct cg_memory_events ev;
	int r;

	if (cg->epoll_fd >= 0) {
		snprintf(err, errlen, "%s: watcher already started", cg->path);
		return -EALREADY;
	}
	r = cg_read_memory_events(cg, &ev, err, errlen);
	if (r < 0)
		return r;
	cg->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (cg->epoll_fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: epoll_create1: %s", cg->path, strerror(-r));
		return r;
	}
	r = arm_inotify(cg, err, errlen);
	if (r < 0) {
		cg_watch_stop(cg);
		return r;
	}
	/* Anything before now is history, not an event. */
	cg->last_high = ev.high;
	return 0;
}

void cg_watch_stop(struct cg *cg)
{
	drop_inotify(cg);
	if (cg->epoll_fd >= 0)
		close(cg->epoll_fd);
	cg->epoll_fd = -1;
}

int cg_watch_fd(const struct cg *cg)
{
	return cg->epoll_fd;
}

/* Walks one buffer of inotify records; notes a watch the kernel removed
 * (memory.events deleted or replaced). */
static void scan_records(struct cg *cg, const char *buf, size_t len)
{
	size_t off = 0;

	while (off + sizeof(struct inotify_event) <= len) {
		struct inotify_event ev;

		memcpy(&ev, buf + off, sizeof(ev));
		if ((ev.mask & IN_IGNORED) && ev.wd == cg->wd)
			cg->wd = -1;
		off += sizeof(ev) + ev.len;
	}
}

/* Empties the inotify queue; a read error re-creates the instance. */
static int drain(struct cg *cg, char *err, size_t errlen)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	for (int i = 0; i < DRAIN_MAX_READS && cg->inotify_fd >= 0; i++) {
		ssize_t n = read(cg->inotify_fd, buf, sizeof(buf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;

			drop_inotify(cg);
			if (arm_inotify(cg, err, errlen) == 0)
				snprintf(err, errlen, "%s: inotify read: %s; watch re-created",
					 cg->path, strerror(e));
			return -e;
		}
		scan_records(cg, buf, (size_t)n);
	}
	return arm_inotify(cg, err, errlen);
}

int cg_watch_process(struct cg *cg, uint64_t *new_events, char *err, size_t errlen)
{
	char later[256];
	int r, rc;

	*new_events = 0;
	if (cg->epoll_fd < 0) {
		snprintf(err, errlen, "%s: watcher not started", cg->path);
		return -EINVAL;
	}
	r = cg->inotify_fd >= 0 ? drain(cg, err, errlen) : arm_inotify(cg, err, errlen);
	/* Still compare: a broken notification path must not hide events. */
	rc = compare_high(cg, new_events, r < 0 ? later : err, r < 0 ? sizeof(later) : errlen);
	return r < 0 ? r : rc;
}

int cg_watch_poll(struct cg *cg, uint64_t *new_events, char *err, size_t errlen)
{
	return cg_watch_process(cg, new_events, err, errlen);
}
