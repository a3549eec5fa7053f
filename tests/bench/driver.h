/* SPDX-License-Identifier: Apache-2.0 */
/*
 * driver.h — state shared by the event driver's modes: the imitated cgroup
 * directory (memory.events written in place, cgroup.freeze watched with
 * inotify), the optional mini-agent, and the epoll they all run on.
 */
#ifndef VMI_BENCH_DRIVER_H
#define VMI_BENCH_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "agent.h"

struct driver {
	int ep;
	char dir[2048];
	int events_fd;               /* memory.events, rewritten with pwrite */
	uint64_t high_count;         /* the `high` counter last written */
	struct mh_watch freeze_watch;/* inotify on cgroup.freeze */
	bool frozen;                 /* an odd number of writes seen */
	bool await_freeze;           /* stamp freeze_ns at the next modification */
	uint64_t freeze_ns;          /* when the freeze write was first seen */
	uint64_t closes, close_ns;   /* writes completed, and when the last was seen */
	bool use_agent;
	struct agent agent;
};

/* Opens DIR, writes memory.events with high 0, starts watching cgroup.freeze. */
void driver_init(struct driver *d, const char *dir);
/* Adds one to `high` in memory.events with a single pwrite in place. */
void driver_bump_high(struct driver *d);
/* Rewrites a single-value file of the cgroup dir in place (never empty). */
void driver_write_value(struct driver *d, const char *file, uint64_t value);
/* Reads a single-value file; false when it is empty or mid-rewrite. */
bool driver_read_value(struct driver *d, const char *file, uint64_t *value);
/* Registers the mini-agent with the daemon and waits (≤ 3 s) for /resume. */
bool driver_register(struct driver *d, const char *daemon_addr, agent_try_fn on_try);

/* The predictive-upscale workload (predict.c); returns the exit status. */
int driver_run_predict(struct driver *d, int argc, char **argv);

#endif
