/* SPDX-License-Identifier: Apache-2.0 */
/*
 * memory_loop_internal.h — the memory policy's shell on the daemon's loop,
 * shared by memory_loop.c (the sources and set-up) and memory_io.c (the
 * real struct memory_io).
 */
#ifndef VMI_MEMORY_LOOP_INTERNAL_H
#define VMI_MEMORY_LOOP_INTERNAL_H

#include <limits.h>

#include "filecache.h"
#include "memory_internal.h"
#include "reclaim_worker.h"

#define SHELL_POLL_MS 1000
/* MemTotal between hot-plugs: an /upscale reads it at once, and while its
 * memory has not arrived every tick reads it; otherwise once per this. */
#define SHELL_MEMINFO_MS 500
/* 100 ms of "some" stall within 1 s: well past noise, early for a user. */
#define SHELL_PSI_TRIGGER "some 100000 1000000"

struct memory_shell {
	struct loop *loop;
	struct memory *m;
	struct memory_hooks hooks;
	struct cg *cg;
	uint64_t cg_generation;
	uint64_t last_poll_ms;    /* the memory.events safety net */
	struct fc *fc;
	struct mc_sampler *sampler;
	struct loop_timer *timers[MEMORY_TIMER__COUNT];
	struct log_limit watch_err_log;
	bool stat_missing;        /* memory.stat absent: looked for again each poll */
	int psi_fd;               /* the PSI trigger on memory.pressure; -1 = none */
	bool psi_missing;         /* memory.pressure absent or unreadable */
	struct reclaim_worker *reclaimer; /* started at the first reclaim */
	char reclaim_path[PATH_MAX + 16]; /* <cgroup>/memory.reclaim */
};

/* The struct memory_io over the cgroup object, Postgres, the sampler and
 * the loop timers; ctx is the shell. */
void shell_io(struct memory_shell *sh, struct memory_io *io);

#endif
