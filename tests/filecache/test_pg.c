/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_pg.c — the file cache client against a real, throw-away Postgres
 * (tests/lib/pg-cluster.sh).  The neon.* settings are plain placeholder
 * settings here: current_setting() returns exactly the number that
 * ALTER SYSTEM wrote, which is what the checks compare.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "pgtest.h"

static bool skipping;
static char skip_reason[256];

#define NEED_POSTGRES()                                                                 \
	do {                                                                            \
		if (skipping)                                                           \
			skip();                                                         \
	} while (0)

static struct fc *new_fc(const char *connstr, const char *size_setting,
			 const char *max_setting)
{
	struct fc_pg_config cfg = {
		.connstr = connstr ? connstr : pgtest_connstr(),
		.size_setting = size_setting,
		.max_size_setting = max_setting,
		.application_name = PGTEST_APP,
		.connect_timeout_ms = 3000,
		.query_timeout_ms = 3000,
		.retry_initial_ms = 50,
		.retry_max_ms = 400,
	};
	struct fc *fc = NULL;
	char err[512];
	int r = fc_new(&cfg, &fc, err, sizeof(err));
	if (r < 0)
		fail_msg("fc_new: %s", err);
	return fc;
}

/* Sets total's cache size, checks the reported and the stored value. */
static void set_and_check(struct fc *fc, uint64_t bytes, uint64_t want_bytes)
{
	struct pgtest_result res = { 0 };
	char want_text[32];

	assert_int_equal(fc_set_size(fc, bytes, pgtest_done_cb, &res), 0);
	pgtest_drive(fc, &res, 10000);
	if (res.err)
		fail_msg("set_size: %d %s", res.err, res.msg);
	assert_int_equal(res.bytes, want_bytes);
	snprintf(want_text, sizeof(want_text), "%llu", (unsigned long long)(want_bytes / FC_MIB));
	pgtest_wait_setting("neon.file_cache_size_limit", want_text);
}

static void test_read_size(void **state)
{
	NEED_POSTGRES();
	pgtest_alter_system("neon.file_cache_size_limit", "64MB");

	struct fc *fc = new_fc(NULL, NULL, NULL);
	struct pgtest_result res = { 0 };
	assert_int_equal(fc_read_size(fc, pgtest_done_cb, &res), 0);
	pgtest_drive(fc, &res, 10000);
	assert_int_equal(res.err, 0);
	assert_int_equal(res.bytes, 64 * FC_MIB);
	fc_free(fc);
}

/* Start-up: the formula's size for MemTotal ends up in Postgres. */
static void test_set_size_formula(void **state)
{
	NEED_POSTGRES();
	struct fc_config cfg;
	fc_config_default(&cfg);
	uint64_t size = fc_cache_size(&cfg, 2ull << 30);
	assert_int_equal(size, 1280 * FC_MIB);

	struct fc *fc = new_fc(NULL, NULL, NULL);
	set_and_check(fc, size, size);
	fc_free(fc);
}

static void test_resize_up_down(void **state)
{
	NEED_POSTGRES();
	static const uint64_t totals[] = { 4ull << 30, 1ull << 30, 8ull << 30, 1ull << 29 };
	struct fc_config cfg;
	fc_config_default(&cfg);
	struct fc *fc = new_fc(NULL, NULL, NULL);
	for (size_t i = 0; i < sizeof(totals) / sizeof(totals[0]); i++) {
		uint64_t size = fc_cache_size(&cfg, totals[i]);
		set_and_check(fc, size, size);
	}
	/* Not a whole MiB: rounded down. */
	set_and_check(fc, 300 * FC_MIB + 12345, 300 * FC_MIB);
	fc_free(fc);
}

static void test_upper_bound_caps(void **state)
{
	NEED_POSTGRES();
	pgtest_alter_system("neon.max_file_cache_size", "512MB");

	struct fc *fc = new_fc(NULL, NULL, NULL);
	struct pgtest_result res = { 0 };
	assert_int_equal(fc_set_size(fc, 2ull << 30, pgtest_done_cb, &res), 0);
	pgtest_drive(fc, &res, 10000);
	assert_int_equal(res.err, 0);
	assert_int_equal(res.bytes, 512 * FC_MIB);
	assert_non_null(strstr(res.msg, "capped"));
	pgtest_wait_setting("neon.file_cache_size_limit", "512");
	set_and_check(fc, 100 * FC_MIB, 100 * FC_MIB); /* below the bound: as asked */
	fc_free(fc);

	pgtest_alter_system("neon.max_file_cache_size", "1TB");
}

/* A bound that is not one non-negative integer, or does not exist. */
static void test_result_validation(void **state)
{
	NEED_POSTGRES();
	char err[256];
	char *before = pgtest_query("SELECT current_setting('neon.file_cache_size_limit')", err,
				    sizeof(err));
	assert_non_null(before);
	static const struct {
		const char *max_setting;
		int err;
		const char *text;
	} rows[] = {
		{ "neon.negative_size", -EBADMSG, "non-negative integer" },
		{ "neon.not_a_size", -EIO, "invalid size" },
		{ "neon.no_such_setting", -ENOENT, "unrecognized configuration parameter" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct fc *fc = new_fc(NULL, NULL, rows[i].max_setting);
		struct pgtest_result res = { 0 };
		assert_int_equal(fc_set_size(fc, 1ull << 30, pgtest_done_cb, &res), 0);
		pgtest_drive(fc, &res, 10000);
		assert_int_equal(res.err, rows[i].err);
		assert_int_equal(res.bytes, 0);
		if (!strstr(res.msg, rows[i].text))
			fail_msg("row %zu: \"%s\" lacks \"%s\"", i, res.msg, rows[i].text);
		fc_free(fc);
	}
	/* Nothing was written: the size is still the last good one. */
	pgtest_wait_setting("neon.file_cache_size_limit", before);
	free(before);
}

static void test_permission_denied(void **state)
{
	NEED_POSTGRES();
	char connstr[320];
	pgtest_exec("DROP ROLE IF EXISTS vmi_limited");
	pgtest_exec("CREATE ROLE vmi_limited LOGIN");
	snprintf(connstr, sizeof(connstr), "%s user=vmi_limited", pgtest_connstr());

	struct fc *fc = new_fc(connstr, NULL, NULL);
	struct pgtest_result res = { 0 };
	assert_int_equal(fc_set_size(fc, 1ull << 30, pgtest_done_cb, &res), 0);
	pgtest_drive(fc, &res, 10000);
	assert_int_equal(res.err, -EACCES);
	assert_non_null(strstr(res.msg, "ALTER SYSTEM"));
	fc_free(fc);
}

/* Names that would change the SQL are refused before any connection. */
static void test_bad_setting_names(void **state)
{
	static const char *const bad[] = { "neon.x = 1; DROP TABLE t; --", "x')--", "", "a b" };
	struct fc_pg_config cfg = { .connstr = "host=/nonexistent" };
	char err[512];
	struct fc *fc = (struct fc *)&cfg; /* must be reset to NULL */

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg.size_setting = bad[i];
		cfg.max_size_setting = NULL;
		assert_int_equal(fc_new(&cfg, &fc, err, sizeof(err)), -EINVAL);
		assert_null(fc);
		assert_non_null(strstr(err, "size_setting"));
		cfg.size_setting = NULL;
		cfg.max_size_setting = bad[i];
		assert_int_equal(fc_new(&cfg, &fc, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "max_size_setting"));
	}
	/* A malformed connection string with a password: refused, not echoed. */
	cfg.max_size_setting = NULL;
	cfg.connstr = "host=h password=top secret";
	assert_int_equal(fc_new(&cfg, &fc, err, sizeof(err)), -EINVAL);
	assert_null(strstr(err, "top"));
	assert_null(strstr(err, "secret"));
}

static void test_supersede_and_cancel(void **state)
{
	NEED_POSTGRES();
	struct fc *fc = new_fc(NULL, NULL, NULL);
	struct pgtest_result a = { 0 }, b = { 0 }, c = { 0 }, r = { 0 };

	/* Queued together: a is superseded by b; the read is kept. */
	assert_int_equal(fc_set_size(fc, 200 * FC_MIB, pgtest_done_cb, &a), 0);
	assert_int_equal(fc_read_size(fc, pgtest_done_cb, &r), 0);
	assert_int_equal(fc_ensure_size(fc, 210 * FC_MIB, pgtest_done_cb, pgtest_retry_cb, &c),
			 0);
	assert_int_equal(fc_set_size(fc, 220 * FC_MIB, pgtest_done_cb, &b), 0);
	assert_false(a.done); /* callbacks only from fc_process() */
	pgtest_drive(fc, &b, 10000);
	assert_true(a.done && c.done && r.done);
	assert_int_equal(a.err, -ECANCELED);
	assert_int_equal(c.err, -ECANCELED);
	assert_int_equal(r.err, 0);
	assert_int_equal(b.err, 0);
	assert_int_equal(b.bytes, 220 * FC_MIB);
	pgtest_wait_setting("neon.file_cache_size_limit", "220");

	/* fc_cancel_all: every pending callback runs before it returns. */
	struct pgtest_result x = { 0 }, y = { 0 };
	assert_int_equal(fc_set_size(fc, 230 * FC_MIB, pgtest_done_cb, &x), 0);
	assert_int_equal(fc_process(fc), 0); /* x is connecting now */
	assert_int_equal(fc_read_size(fc, pgtest_done_cb, &y), 0);
	fc_cancel_all(fc);
	assert_true(x.done && y.done);
	assert_int_equal(x.err, -ECANCELED);
	assert_int_equal(y.err, -ECANCELED);
	fc_free(fc);
	assert_int_equal(pgtest_wait_app_connections_gone(), 0);
}

static bool retried_twice(void *arg)
{
	return ((struct pgtest_result *)arg)->retries >= 2;
}

/* Postgres down: a clear, bounded failure; ensure retries until it is back. */
static void test_outage_and_ensure(void **state)
{
	NEED_POSTGRES();
	struct fc *fc = new_fc(NULL, NULL, NULL);
	struct pgtest_result res = { 0 }, ens = { 0 };

	pgtest_cluster_action("pause");
	assert_int_equal(fc_set_size(fc, 256 * FC_MIB, pgtest_done_cb, &res), 0);
	pgtest_drive(fc, &res, 10000);
	assert_int_equal(res.err, -ECONNREFUSED);
	assert_non_null(strstr(res.msg, "connecting failed"));
	/* The connection shown as libpq reads it. */
	char shown[512];
	assert_int_equal(fc_connstr_redact(pgtest_connstr(), shown, sizeof(shown)), 0);
	assert_non_null(strstr(res.msg, shown));

	assert_int_equal(fc_ensure_size(fc, 256 * FC_MIB, pgtest_done_cb, pgtest_retry_cb, &ens),
			 0);
	if (!pgtest_drive_until(fc, retried_twice, &ens, 10000))
		fail_msg("fc_ensure_size did not retry (%u attempts)", ens.retries);
	assert_false(ens.done);
	assert_int_equal(ens.last_retry_err, -ECONNREFUSED);

	pgtest_cluster_action("resume");
	pgtest_drive(fc, &ens, 10000);
	assert_int_equal(ens.err, 0);
	assert_int_equal(ens.bytes, 256 * FC_MIB);
	pgtest_wait_setting("neon.file_cache_size_limit", "256");

	/* After a restart the next resize simply works (fresh connection). */
	pgtest_cluster_action("restart");
	set_and_check(fc, 260 * FC_MIB, 260 * FC_MIB);
	fc_free(fc);
}

static void test_no_connection_left(void **state)
{
	NEED_POSTGRES();
	/* The count sees a connection with our application_name ... */
	char connstr[320], err[256];
	snprintf(connstr, sizeof(connstr), "%s application_name=" PGTEST_APP, pgtest_connstr());
	PGconn *probe = PQconnectdb(connstr);
	assert_int_equal(PQstatus(probe), CONNECTION_OK);
	char *v = pgtest_query("SELECT count(*) FROM pg_stat_activity WHERE application_name = '"
			       PGTEST_APP "'", err, sizeof(err));
	assert_non_null(v);
	assert_string_equal(v, "1");
	free(v);
	PQfinish(probe);

	/* ... and none is left after successful and failed operations. */
	struct fc *fc = new_fc(NULL, NULL, NULL);
	struct fc *bad = new_fc(NULL, NULL, "neon.no_such_setting");
	struct pgtest_result a = { 0 }, b = { 0 }, c = { 0 };
	assert_int_equal(fc_set_size(fc, 128 * FC_MIB, pgtest_done_cb, &a), 0);
	assert_int_equal(fc_read_size(fc, pgtest_done_cb, &b), 0);
	assert_int_equal(fc_set_size(bad, 128 * FC_MIB, pgtest_done_cb, &c), 0);
	pgtest_drive(fc, &b, 10000);
	pgtest_drive(bad, &c, 10000);
	assert_int_equal(a.err, 0);
	assert_int_equal(c.err, -ENOENT);
	assert_int_equal(pgtest_wait_app_connections_gone(), 0);
	fc_free(fc);
	fc_free(bad);
}

static int group_setup(void **state)
{
	static const char *const conf[] = {
		"neon.negative_size = '-5MB'",
		"neon.not_a_size = 'banana'",
		NULL,
	};
	int r = pgtest_cluster_start(conf, skip_reason, sizeof(skip_reason));
	if (r == 77) {
		skipping = true;
		printf("SKIP: %s\n", skip_reason);
		return 0;
	}
	return r;
}

static int group_teardown(void **state)
{
	pgtest_cluster_stop();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_size),
		cmocka_unit_test(test_set_size_formula),
		cmocka_unit_test(test_resize_up_down),
		cmocka_unit_test(test_upper_bound_caps),
		cmocka_unit_test(test_result_validation),
		cmocka_unit_test(test_permission_denied),
		cmocka_unit_test(test_bad_setting_names),
		cmocka_unit_test(test_supersede_and_cancel),
		cmocka_unit_test(test_outage_and_ensure),
		cmocka_unit_test(test_no_connection_left),
	};
	int failed = cmocka_run_group_tests(tests, group_setup, group_teardown);
	return skipping && failed == 0 ? 77 : failed;
}
