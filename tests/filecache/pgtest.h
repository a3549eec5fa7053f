/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pgtest.h — helpers for the file cache tests against a real, throw-away
 * Postgres made by tests/lib/pg-cluster.sh (pgtest.c).
 */
#ifndef VMI_TESTS_FILECACHE_PGTEST_H
#define VMI_TESTS_FILECACHE_PGTEST_H

#include <stdbool.h>
#include <stdint.h>

#include "filecache.h"

#define PGTEST_APP "vmi-fc-test"

/* Starts the cluster (extra postgresql.conf lines, NULL-terminated).
 * Returns 0, 77 when pg-cluster.sh says Postgres is not installed (reason
 * in skip_reason), or -1.  The cluster is stopped and removed at exit. */
int pgtest_cluster_start(const char *const *conf_lines, char *skip_reason, size_t len);
void pgtest_cluster_stop(void);
/* pause / resume / restart: an outage; aborts the test on failure. */
void pgtest_cluster_action(const char *action);
const char *pgtest_connstr(void);

/* A plain blocking libpq round trip; returns the first value (malloc'd),
 * or NULL (and the error in err) on failure. */
char *pgtest_query(const char *sql, char *err, size_t errlen);
/* Polls (new connection each time, ≤ 5 s) until current_setting(name)
 * equals want; fails the test otherwise. */
void pgtest_wait_setting(const char *name, const char *want);
/* Runs one statement as the superuser; fails the test on error. */
void pgtest_exec(const char *sql);
/* ALTER SYSTEM SET name = 'value', reload, wait until it is visible. */
void pgtest_alter_system(const char *name, const char *value);
/* Rows in pg_stat_activity for PGTEST_APP, polled until 0 (≤ 5 s). */
int pgtest_wait_app_connections_gone(void);

struct pgtest_result {
	bool done;
	int err;
	uint64_t bytes;
	char msg[1024];
	unsigned retries;
	int last_retry_err;
};

void pgtest_done_cb(void *arg, int err, uint64_t bytes, const char *msg);
void pgtest_retry_cb(void *arg, int err, uint32_t retry_in_ms, const char *msg);
/* Runs fc_process() until res->done or timeout_ms passed (then fails). */
void pgtest_drive(struct fc *fc, struct pgtest_result *res, int timeout_ms);
/* Same until cond(arg) holds; returns false on timeout. */
bool pgtest_drive_until(struct fc *fc, bool (*cond)(void *), void *arg, int timeout_ms);

#endif
