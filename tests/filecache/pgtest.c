/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pgtest.c — a throw-away Postgres cluster for the file cache tests, a
 * plain (blocking) libpq connection to check what the library did, and an
 * event loop driver with bounded waits.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "pgtest.h"

static struct {
	char tmp[64];       /* mode 0755 parent, so postgres can reach dir */
	char dir[96];
	char connstr[256];
	bool started;
	bool atexit_set;
} cl;

static int run_script(const char *action, const char *const *extra, char *out, size_t outlen)
{
	const char *tests = getenv("VMI_TESTS_DIR");
	char cmd[4096];
	int n = snprintf(cmd, sizeof(cmd), "'%s/lib/pg-cluster.sh' %s '%s'", tests ? tests : ".",
			 action, cl.dir);
	for (size_t i = 0; extra && extra[i] && n > 0 && (size_t)n < sizeof(cmd); i++)
		n += snprintf(cmd + n, sizeof(cmd) - (size_t)n, " \"%s\"", extra[i]);
	if (n < 0 || (size_t)n >= sizeof(cmd))
		return -1;
	fflush(NULL);
	FILE *p = popen(cmd, "r");
	if (!p)
		return -1;
	size_t got = 0;
	if (out && outlen > 0) {
		got = fread(out, 1, outlen - 1, p);
		out[got] = '\0';
		out[strcspn(out, "\n")] = '\0';
	}
	int status = pclose(p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void pgtest_cluster_stop(void)
{
	if (cl.started) {
		(void)run_script("stop", NULL, NULL, 0);
		cl.started = false;
	}
	if (cl.tmp[0]) {
		(void)rmdir(cl.tmp);
		cl.tmp[0] = '\0';
	}
}

int pgtest_cluster_start(const char *const *conf_lines, char *skip_reason, size_t len)
{
	snprintf(cl.tmp, sizeof(cl.tmp), "/tmp/vmi-fc-XXXXXX");
	if (!mkdtemp(cl.tmp) || chmod(cl.tmp, 0755) < 0) {
		fprintf(stderr, "pgtest: mkdtemp/chmod %s: %s\n", cl.tmp, strerror(errno));
		return -1;
	}
	snprintf(cl.dir, sizeof(cl.dir), "%s/pg", cl.tmp);
	if (!cl.atexit_set && atexit(pgtest_cluster_stop) == 0)
		cl.atexit_set = true;
	cl.started = true; /* from here on, stop cleans up whatever exists */
	int rc = run_script("start", conf_lines, cl.connstr, sizeof(cl.connstr));
	if (rc == 77) {
		cl.started = false;
		pgtest_cluster_stop();
		snprintf(skip_reason, len, "pg-cluster.sh cannot run PostgreSQL here (its reason is printed above)");
		return 77;
	}
	if (rc != 0 || !cl.connstr[0]) {
		fprintf(stderr, "pgtest: pg-cluster.sh start failed (exit %d)\n", rc);
		pgtest_cluster_stop();
		return -1;
	}
	return 0;
}

void pgtest_cluster_action(const char *action)
{
	int rc = run_script(action, NULL, NULL, 0);
	if (rc != 0)
		fail_msg("pg-cluster.sh %s failed (exit %d)", action, rc);
}

const char *pgtest_connstr(void)
{
	return cl.connstr;
}

static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

char *pgtest_query(const char *sql, char *err, size_t errlen)
{
	PGconn *c = PQconnectdb(cl.connstr);
	char *value = NULL;

	PQsetNoticeProcessor(c, quiet, NULL);
	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(err, errlen, "%s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	PGresult *res = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(res);
	if (st == PGRES_TUPLES_OK && PQntuples(res) > 0)
		value = strdup(PQgetvalue(res, 0, 0));
	else if (st == PGRES_COMMAND_OK)
		value = strdup("");
	else
		snprintf(err, errlen, "%s: %s", sql, PQresultErrorMessage(res));
	PQclear(res);
	PQfinish(c);
	return value;
}

void pgtest_exec(const char *sql)
{
	char err[512];
	char *v = pgtest_query(sql, err, sizeof(err));
	if (!v)
		fail_msg("%s", err);
	free(v);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

void pgtest_wait_setting(const char *name, const char *want)
{
	char sql[256], err[512] = "", last[256] = "";

	snprintf(sql, sizeof(sql), "SELECT current_setting('%s')", name);
	/* pg_reload_conf() only signals the postmaster: poll, bounded. */
	for (int i = 0; i < 100; i++) {
		char *v = pgtest_query(sql, err, sizeof(err));
		if (v) {
			snprintf(last, sizeof(last), "%s", v);
			free(v);
			if (strcmp(last, want) == 0)
				return;
		}
		sleep_ms(50);
	}
	fail_msg("%s is \"%s\" after 5 s, want \"%s\" (%s)", name, last, want, err);
}

void pgtest_alter_system(const char *name, const char *value)
{
	char sql[256];

	snprintf(sql, sizeof(sql), "ALTER SYSTEM SET %s = '%s'", name, value);
	pgtest_exec(sql);
	pgtest_exec("SELECT pg_reload_conf()");
	pgtest_wait_setting(name, value);
}

int pgtest_wait_app_connections_gone(void)
{
	char err[512] = "";
	int count = -1;

	/* A backend leaves pg_stat_activity shortly after its client closed. */
	for (int i = 0; i < 100; i++) {
		char *v = pgtest_query("SELECT count(*) FROM pg_stat_activity "
				       "WHERE application_name = '" PGTEST_APP "'",
				       err, sizeof(err));
		if (!v)
			fail_msg("%s", err);
		count = atoi(v);
		free(v);
		if (count == 0)
			break;
		sleep_ms(50);
	}
	return count;
}

void pgtest_done_cb(void *arg, int err, uint64_t bytes, const char *msg)
{
	struct pgtest_result *res = arg;
	assert_false(res->done); /* exactly once */
	assert_non_null(msg);
	res->done = true;
	res->err = err;
	res->bytes = bytes;
	snprintf(res->msg, sizeof(res->msg), "%s", msg);
}

void pgtest_retry_cb(void *arg, int err, uint32_t retry_in_ms, const char *msg)
{
	struct pgtest_result *res = arg;
	assert_false(res->done);
	assert_true(err < 0);
	assert_true(retry_in_ms > 0);
	res->retries++;
	res->last_retry_err = err;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool pgtest_drive_until(struct fc *fc, bool (*cond)(void *), void *arg, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	while (!cond(arg)) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return false;
		struct pollfd pfd = { .fd = fc_fd(fc), .events = POLLIN };
		int r = poll(&pfd, 1, (int)left);
		assert_true(r >= 0 || errno == EINTR);
		if (r > 0)
			assert_int_equal(fc_process(fc), 0);
	}
	return true;
}

static bool result_done(void *arg)
{
	return ((struct pgtest_result *)arg)->done;
}

void pgtest_drive(struct fc *fc, struct pgtest_result *res, int timeout_ms)
{
	if (!pgtest_drive_until(fc, result_done, res, timeout_ms))
		fail_msg("no completion within %d ms (hang)", timeout_ms);
}
