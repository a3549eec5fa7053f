/* SPDX-License-Identifier: Apache-2.0 */
/*
 * core_helpers.h — the steps of the memory policy core tests that both
 * test_core.c (the agent sequences, the review races) and
 * test_pagecache.c (page cache, PSI, reclaim) take: one copy, so that the
 * two programs boot and run the fake world (fake_io.h) the same way.
 */
#ifndef VMI_TEST_CORE_HELPERS_H
#define VMI_TEST_CORE_HELPERS_H

#include <stdbool.h>
#include <stdint.h>

#include "fake_io.h"

/* The config every test starts from (config_defaults()). */
struct config defaults(void);

/* memory_core_start() with the first sample, then the agent tells the
 * VM's size. */
void start_sized(struct fake *f, uint64_t vm);

/* A VM of vm bytes whose memory has arrived, started, and told its size
 * by the agent. */
void boot(struct fake *f, const struct config *cfg, bool cache, uint64_t vm);

/* boot() with the file cache, and Postgres has answered all it was asked. */
void boot_pg(struct fake *f, const struct config *cfg, uint64_t vm);

/* Samples every 100 ms for ms. */
void run(struct fake *f, uint64_t ms);

/* Usage steps to current and stays there for 2 s: flat, no growth to
 * worry a downscale's check. */
void flat(struct fake *f, uint64_t current);

/* Usage reaches memory.high: one event. */
void hit_high(struct fake *f);

/* Postgres answers its oldest open request with err (0: done). */
void pg_answer_next(struct fake *f, int err);

#endif
