/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fake_io.h — a world for the memory policy core (memory_core.h) without
 * files, sockets or clocks: a cgroup that holds numbers, a meminfo with a
 * MemTotal, a Postgres whose answers the test hands out, a manual clock
 * with the policy's timers, and a recorder of asks and answers.
 *
 * The io never calls back into the policy; the test moves the world with
 * fake_advance(), fake_sample(), fake_pg_answer() and the scaling calls.
 */
#ifndef VMI_TEST_FAKE_IO_H
#define VMI_TEST_FAKE_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "memory_core.h"
#include "metrics.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)
#define FAKE_MAX_PG 256
#define FAKE_MAX_ASKS 4096

enum fake_pg_state { FAKE_PG_PENDING, FAKE_PG_SUPERSEDED, FAKE_PG_DONE };

struct fake_pg_req {
	uint64_t token, bytes;
	bool until_ok;
	enum fake_pg_state state;
};

/* One write of a limit file, for invariant checks: before is what the
 * policy itself last wrote there (a reset of the files is not the
 * policy's doing). */
struct fake_write {
	enum memory_limit which;
	uint64_t bytes, before;
	uint64_t current; /* the workload then (memory.current without page cache) */
};

struct fake {
	struct config cfg;
	struct metrics metrics;
	struct memory *m;
	uint64_t now_ns;

	/* the cgroup */
	uint64_t max, high, current;
	uint64_t wrote_max, wrote_high; /* what the policy last wrote */
	bool frozen;
	uint64_t frozen_since_ns, longest_freeze_ns;
	bool fail_write, fail_read, fail_freeze, fail_thaw;
	struct fake_write last_write;
	unsigned writes;
	void (*on_write)(struct fake *f, const struct fake_write *w);  /* may be NULL */

	/* memory.stat: absent unless has_stat; file pages are reclaimable but
	 * shmem */
	bool has_stat;
	struct cg_memory_stat stat;
	/* memory.reclaim: absent unless has_reclaim; the open request */
	bool has_reclaim, reclaim_open;
	uint64_t reclaim_bytes, reclaim_token;
	unsigned reclaims, reclaim_cancels;

	/* meminfo */
	uint64_t mem_total;
	int mem_total_err;

	/* Postgres: requests in order; its maximum; what it holds */
	struct fake_pg_req pg[FAKE_MAX_PG];
	size_t npg;
	uint64_t pg_max, pg_size;
	bool pg_fail_start;

	/* timers: absolute ns, 0 = disarmed */
	uint64_t timer_at[MEMORY_TIMER__COUNT];

	/* the agent side */
	size_t asks;
	uint64_t ask_ms[FAKE_MAX_ASKS];
	bool ask_predicted[FAKE_MAX_ASKS];
	unsigned ask_applied[FAKE_MAX_ASKS]; /* applied upscales before each ask */
	struct memory_status ask_status[FAKE_MAX_ASKS]; /* the policy's view then */
	unsigned applied;

	/* the last answer to a scaling call */
	unsigned answers;
	unsigned status;
	char body[1024];
};

/* Defaults: cgroup and cache as given; MemTotal as given; Postgres max 1 TiB. */
void fake_init(struct fake *f, const struct config *cfg, bool cgroup, bool filecache,
	       uint64_t mem_total);
/* memory_core_start() with the first sample. */
int fake_start(struct fake *f);
void fake_free(struct fake *f);

uint64_t fake_now_ms(const struct fake *f);
/* Moves the clock by ms, firing every timer that falls due, in order. */
void fake_advance(struct fake *f, uint64_t ms);
/* A sampler tick with the world as it is. */
void fake_sample(struct fake *f);
/* n memory.high events now. */
void fake_events(struct fake *f, uint64_t n);

/* The oldest request that is not done; -1 if none. */
int fake_pg_next(const struct fake *f);
/* Answer request i: err 0 = Postgres takes min(bytes, pg_max) in whole MiB. */
void fake_pg_answer(struct fake *f, int i, int err);
/* Answer every open request with success, oldest first (superseded ones
 * get -ECANCELED), until none is left. */
void fake_pg_settle(struct fake *f);

/* Answer the open reclaim: the kernel drops up to `can` bytes of
 * reclaimable page cache (file − shmem) from memory.current and memory.stat. */
void fake_reclaim_answer(struct fake *f, uint64_t can);
/* Usage as the policy should see it: current − (file − shmem) with stat. */
uint64_t fake_workload(const struct fake *f);

/* The scaling calls; the answer lands in f->status / f->body. */
void fake_upscale(struct fake *f, uint64_t vm_bytes);
void fake_downscale(struct fake *f, uint64_t vm_bytes);

#endif
