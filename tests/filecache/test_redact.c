/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_redact.c — passwords never survive fc_connstr_redact(), whatever
 * the form of the connection string, and nothing else is changed.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "filecache.h"

static const struct {
	const char *in, *want;
} rows[] = {
	{ "", "" },
	{ "host=/run/postgresql user=cloud_admin dbname=postgres",
	  "host=/run/postgresql user=cloud_admin dbname=postgres" },
	{ "host=h password=s3cret user=u", "host=h password=*** user=u" },
	{ "host=h user=u password=s3cret", "host=h user=u password=***" },
	{ "password=s3cret", "password=***" },
	{ "host=h password='s3 cr\\'et x' port=5",
	  "host=h password=*** port=5" },
	{ "host=h password = 'a b'  port=5", "host=h password = ***  port=5" },
	{ "host=h PASSWORD=s3cret", "host=h PASSWORD=***" },
	{ "sslpassword=keypass host=h", "sslpassword=*** host=h" },
	{ "host=h password=s3\\ cret port=5", "host=h password=*** port=5" },
	{ "application_name='my app' password=x", "application_name='my app' password=***" },
	/* Malformed: everything from the error on is hidden. */
	{ "host=h password='unterminated s3cret", "host=h password=***" },
	{ "host=h s3cret", "host=h ***" },
	{ "host=h password", "host=h ***" },
	{ "=s3cret", "***" },
	/* URLs. */
	{ "postgres://u:s3cret@h:5432/db", "postgres://u:***@h:5432/db" },
	{ "postgresql://u:s3cret@h/db?sslmode=disable", "postgresql://u:***@h/db?sslmode=disable" },
	{ "postgresql://u@h/db", "postgresql://u@h/db" },
	{ "postgresql://h:5432/db", "postgresql://h:5432/db" },
	{ "postgresql:///db?host=/run/postgresql", "postgresql:///db?host=/run/postgresql" },
	{ "postgres://h/db?user=u&password=s3cret", "postgres://h/db?user=u&password=***" },
	{ "postgres://h/db?password=s3cret&user=u", "postgres://h/db?password=***&user=u" },
	{ "postgres://h/db?pass%77ord=s3cret", "postgres://h/db?pass%77ord=***" },
	/* libpq's user info ends at an '@' before the first '/'. */
	{ "postgres://u:s3@cr@h/db", "postgres://u:***@h/db" },
	{ "postgres://u:s3@cr/et@h/db", "postgres://u:***@cr/et@h/db" },
	{ "postgres://?:s3cret@h/db", "postgres://?:***@h/db" },
	{ "postgres://h?password=x@y/db", "postgres://h?password=x@y/db" },
	{ "postgres://u:s3cret@h/db?sslpassword=k&a=b", "postgres://u:***@h/db?sslpassword=***&a=b" },
	{ "POSTGRESQL://u:s3cret@h", "POSTGRESQL://u:***@h" },
	{ "postgres://u:s3cret@", "postgres://u:***@" },
};

static void test_table(void **state)
{
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char out[256];
		assert_int_equal(fc_connstr_redact(rows[i].in, out, sizeof(out)), 0);
		if (strcmp(out, rows[i].want) != 0)
			fail_msg("row %zu: \"%s\" -> \"%s\", want \"%s\"", i, rows[i].in, out,
				 rows[i].want);
	}
}

/* Truncated output is cut at a token, so even a tiny buffer never holds
 * part of the password. */
static void test_small_buffers(void **state)
{
	static const char *const inputs[] = {
		"host=h password=s3cret user=u", "postgres://u:s3cret@h/db?password=s3cret",
		"password='s3cret'",
	};
	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		for (size_t len = 1; len < 64; len++) {
			char out[64];
			memset(out, 'X', sizeof(out));
			int r = fc_connstr_redact(inputs[i], out, len);
			assert_true(r == 0 || r == -ENOBUFS);
			assert_true(strlen(out) < len);
			assert_null(strstr(out, "s3"));
		}
	}
	assert_int_equal(fc_connstr_redact("x=y", NULL, 0), -ENOBUFS);
	char out[8];
	assert_int_equal(fc_connstr_redact(NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "");
}

/* No value that libpq itself would use as a password survives. */
static void assert_no_password_left(const char *in, const char *out)
{
	char *errmsg = NULL;
	PQconninfoOption *opts = PQconninfoParse(in, &errmsg);

	PQfreemem(errmsg);
	if (!opts)
		return; /* libpq rejects it; fc_new() refuses such strings */
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		bool secret = strcmp(o->keyword, "password") == 0 ||
			      strcmp(o->keyword, "sslpassword") == 0;
		if (secret && o->val && strlen(o->val) >= 4 && strstr(out, o->val))
			fail_msg("leak of \"%s\": \"%s\" -> \"%s\"", o->val, in, out);
	}
	PQconninfoFree(opts);
}

/* Mangled variants of strings holding a password: never a crash (ASan and
 * UBSan watch the memory side), never a password libpq would use. */
static void test_mangled_inputs(void **state)
{
	static const char *const bases[] = {
		"host=h password='s3cret' user=u", "postgresql://u:s3cret@h/d?password=p4ssw0rd",
		"password=s3cret", "host=h password=s3\\ cret port=5",
	};
	static const char junk[] = { '\'', '\\', ' ', '=', '@', ':', '?', '&', '/', '%', '\0' };

	for (size_t b = 0; b < sizeof(bases) / sizeof(bases[0]); b++) {
		size_t n = strlen(bases[b]);
		for (size_t pos = 0; pos < n; pos++) {
			for (size_t j = 0; j < sizeof(junk); j++) {
				char in[128], out[256];
				memcpy(in, bases[b], n + 1);
				in[pos] = junk[j];
				assert_int_equal(fc_connstr_redact(in, out, sizeof(out)), 0);
				assert_no_password_left(in, out);
			}
		}
	}
	/* The unmangled bases are parsed by libpq with their password. */
	char out[256];
	assert_int_equal(fc_connstr_redact(bases[0], out, sizeof(out)), 0);
	assert_null(strstr(out, "s3cret"));
}

/* Redacting redacted text changes nothing, also for strings libpq rejects
 * (the config printer relies on it: print, reload, print again). */
static void test_idempotent(void **state)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "password=''t", "password=*** ***" },
		{ "password=''tssword=x host=h", "password=*** tssword=x host=h" },
		{ "host=h junk", "host=h ***" },
		{ "password='unterminated", "password=***" },
	};
	char once[256], twice[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(fc_connstr_redact(cases[i].in, once, sizeof(once)), 0);
		assert_string_equal(once, cases[i].out);
		assert_int_equal(fc_connstr_redact(once, twice, sizeof(twice)), 0);
		assert_string_equal(twice, once);
	}
}

/* Which connection strings make libpq resolve a name on the loop thread. */
static void test_resolves_names(void **state)
{
	static const struct { const char *connstr; bool names; } cases[] = {
		{ "dbname=postgres", false },            /* default socket */
		{ "host=/run/postgresql", false },
		{ "host=127.0.0.1 port=5432", false },
		{ "host=::1", false },
		{ "host=db.internal", true },
		{ "host=localhost", true },
		{ "host=db.internal hostaddr=10.0.0.7", false },
		{ "host=127.0.0.1,db.internal", true },
		{ "host=/tmp,127.0.0.1", false },
		{ "postgres://u@db.internal/x", true },
		{ "postgresql://u@127.0.0.1:5432/x", false },
		{ "host='", false },                     /* unparsable: fc_new says so */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (fc_connstr_resolves_names(cases[i].connstr) != cases[i].names)
			fail_msg("%s: expected %d", cases[i].connstr, cases[i].names);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_resolves_names),
		cmocka_unit_test(test_idempotent),
		cmocka_unit_test(test_small_buffers),
		cmocka_unit_test(test_mangled_inputs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
