/* SPDX-License-Identifier: Apache-2.0 */
/*
 * floor_freeze.c — the floor for the event→freeze benchmark: the least a
 * program can do to react to memory.high events.  It waits with inotify
 * for memory.events to change, writes "1" to cgroup.freeze, and writes "0"
 * back after --thaw-after-us (the daemon's max_upscale_wait), using the same
 * open(O_TRUNC)/write/close the daemon uses.  It does not even read
 * memory.events.  Runs until killed.
 *
 *   floor-freeze DIR [THAW_AFTER_US]
 */
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "bench_util.h"

static void drain(int fd)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

int main(int argc, char **argv)
{
	char events[4096], freeze[4096];
	uint64_t thaw_us = 1000;
	struct epoll_event ev = { .events = EPOLLIN };
	struct itimerspec its;
	int in, tfd, ep;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: floor-freeze DIR [THAW_AFTER_US]\n");
		return 2;
	}
	if (argc == 3)
		thaw_us = bench_parse_u64("THAW_AFTER_US", argv[2]);
	snprintf(events, sizeof(events), "%s/memory.events", argv[1]);
	snprintf(freeze, sizeof(freeze), "%s/cgroup.freeze", argv[1]);
	in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (in < 0 || tfd < 0 || ep < 0)
		bench_die("floor-freeze: inotify/timerfd/epoll");
	if (inotify_add_watch(in, events, IN_MODIFY) < 0)
		bench_die(events);
	ev.data.fd = in;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, in, &ev) < 0)
		bench_die("epoll_ctl");
	ev.data.fd = tfd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev) < 0)
		bench_die("epoll_ctl");
	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = (time_t)(thaw_us / 1000000u);
	its.it_value.tv_nsec = (long)(thaw_us % 1000000u) * 1000;
	if (thaw_us == 0)
		its.it_value.tv_nsec = 1;
	for (;;) {
		struct epoll_event got;
		int n = epoll_wait(ep, &got, 1, -1);

		if (n <= 0)
			continue;
		if (got.data.fd == in) {
			drain(in);
			if (bench_write_file(freeze, "1") < 0)
				bench_die(freeze);
			timerfd_settime(tfd, 0, &its, NULL);
		} else {
			uint64_t ticks;

			if (read(tfd, &ticks, sizeof(ticks)) == (ssize_t)sizeof(ticks) &&
			    bench_write_file(freeze, "0") < 0)
				bench_die(freeze);
		}
	}
}
