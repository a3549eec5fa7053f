/* SPDX-License-Identifier: Apache-2.0 */
/*
 * floor_idle.c — the floor for the idle benchmark: a process that wakes
 * every --interval-ms on a timerfd and reads the files the daemon's sampler
 * reads (memory.current of the cgroup dir and the meminfo file), and does
 * nothing else.  Runs until killed.
 *
 *   floor-idle CGROUP_DIR MEMINFO [INTERVAL_MS]
 */
#include <stdio.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "bench_util.h"

int main(int argc, char **argv)
{
	struct itimerspec its = { 0 };
	char current[4096], buf[4096];
	uint64_t ms = 100;
	int tfd;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: floor-idle CGROUP_DIR MEMINFO [INTERVAL_MS]\n");
		return 2;
	}
	if (argc == 4)
		ms = bench_parse_u64("INTERVAL_MS", argv[3]);
	if (ms == 0)
		ms = 100;
	snprintf(current, sizeof(current), "%s/memory.current", argv[1]);
	its.it_value.tv_sec = (time_t)(ms / 1000);
	its.it_value.tv_nsec = (long)(ms % 1000) * 1000000;
	its.it_interval = its.it_value;
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	if (tfd < 0 || timerfd_settime(tfd, 0, &its, NULL) < 0)
		bench_die("timerfd");
	for (;;) {
		uint64_t ticks;

		if (read(tfd, &ticks, sizeof(ticks)) != (ssize_t)sizeof(ticks))
			continue;
		if (bench_read_file(current, buf, sizeof(buf)) < 0 ||
		    bench_read_file(argv[2], buf, sizeof(buf)) < 0)
			bench_die("floor-idle: read");
	}
}
