/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_redact.c — connection strings the way libpq reads them: shown
 * without their secrets (and reading back to the same settings), refused
 * when part of a password would land in another field, and secrets masked
 * in any other text (libpq's own messages).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "filecache.h"

static const struct {
	const char *in, *want;
} rows[] = {
	{ "", "" },
	{ "host=/run/postgresql user=cloud_admin dbname=postgres",
	  "user=cloud_admin dbname=postgres host=/run/postgresql" },
	{ "host=h password=s3cret user=u", "user=u password=*** host=h" },
	{ "password=s3cret", "password=***" },
	{ "host=h password='s3 cr\\'et x' port=5", "password=*** host=h port=5" },
	{ "sslpassword=keypass host=h", "host=h sslpassword=***" },
	{ "host=h password=s3\\ cret port=5", "password=*** host=h port=5" },
	{ "application_name='my app' password=x", "password=*** application_name='my app'" },
	{ "application_name='it''s' host=h", "***" }, /* libpq: no doubled quotes */
	{ "options='-c a=\\\\b'", "options='-c a=\\\\b'" },
	/* libpq cannot parse it: nothing is shown. */
	{ "host=h password='unterminated s3cret", "***" },
	{ "host=h s3cret", "***" },
	{ "=s3cret", "***" },
	/* URLs. */
	{ "postgres://u:s3cret@h:5432/db", "user=u password=*** dbname=db host=h port=5432" },
	{ "postgresql://u@h/db", "user=u dbname=db host=h" },
	{ "postgresql:///db?host=/run/postgresql", "dbname=db host=/run/postgresql" },
	{ "postgres://h/db?user=u&password=s3cret", "user=u password=*** dbname=db host=h" },
	{ "postgres://h/db?pass%77ord=s3cret", "password=*** dbname=db host=h" },
	{ "postgres://u:s3@cr@h/db", "user=u password=*** dbname=db host=cr@h" },
	{ "postgres://u:p%40ss@h/db", "user=u password=*** dbname=db host=h" },
	{ "postgres://u:s3cret@h/db?sslpassword=k&sslmode=disable",
	  "user=u password=*** dbname=db host=h sslmode=disable sslpassword=***" },
	/* A password elsewhere too: masked wherever it is. */
	{ "host=/tmp/Zm9vYmFy password=Zm9vYmFy user=Zm9vYmFy",
	  "user=*** password=*** host=/tmp/***" },
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

/* A cut copy ends before a pair, so even a tiny buffer never holds part
 * of the password. */
static void test_small_buffers(void **state)
{
	static const char *const inputs[] = {
		"host=h password=s3cret user=u", "postgres://u:s3cret@h/db?sslpassword=s3cret",
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
			if (out[0]) {
				PQconninfoOption *o = PQconninfoParse(out, NULL);

				assert_non_null(o);
				PQconninfoFree(o);
			}
		}
	}
	assert_int_equal(fc_connstr_redact("x=y", NULL, 0), -ENOBUFS);
	char out[8];
	assert_int_equal(fc_connstr_redact(NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "");
}

/* libpq reads what is shown as it reads the original, secrets aside. */
static void assert_same_reading(const char *in, const char *out)
{
	PQconninfoOption *a = PQconninfoParse(in, NULL), *b;
	struct fc_secrets s;
	char masked[512];

	if (!a) {
		assert_string_equal(out, "***");
		return;
	}
	b = PQconninfoParse(out, NULL);
	if (!b)
		fail_msg("\"%s\" -> \"%s\": libpq cannot read it back", in, out);
	assert_int_equal(fc_secrets_get(in, &s), 0);
	for (size_t i = 0; a[i].keyword; i++) {
		bool secret = a[i].dispchar[0] == '*';
		const char *want = a[i].val && secret ? "***" : a[i].val;

		if (want && !secret) { /* a secret inside another value is masked */
			fc_secrets_mask(&s, a[i].val, masked, sizeof(masked));
			want = masked;
		}

		assert_string_equal(a[i].keyword, b[i].keyword);
		if ((want == NULL) != (b[i].val == NULL) || (want && strcmp(want, b[i].val) != 0))
			fail_msg("\"%s\" -> \"%s\": %s differs", in, out, a[i].keyword);
		if (secret && a[i].val && strlen(a[i].val) >= 4 && strstr(out, a[i].val))
			fail_msg("\"%s\" -> \"%s\": the %s shows", in, out, a[i].keyword);
	}
	PQconninfoFree(a);
	PQconninfoFree(b);
	fc_secrets_clear(&s);
}

/* Mangled variants of strings holding a password: never a crash (ASan and
 * UBSan watch the memory side), never a password libpq would use, always
 * libpq's own reading.  Showing is idempotent. */
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
				char in[128], out[256], again[256];
				memcpy(in, bases[b], n + 1);
				in[pos] = junk[j];
				assert_int_equal(fc_connstr_redact(in, out, sizeof(out)), 0);
				assert_same_reading(in, out);
				assert_int_equal(fc_connstr_redact(out, again, sizeof(again)), 0);
				assert_string_equal(again, out);
			}
		}
	}
}

/* The strings: libpq reads part of the password as a port, a host
 * or a database name (or cannot read it); all refused, none quoted. */
static void test_check(void **state)
{
	static const struct { const char *in, *why, *secret; } cases[] = {
		{ "postgresql://app:Zm9v/YmFy+cw==@host/db", "database name holding '@'", "YmFy" },
		{ "postgresql://app:Zm9vYmFy/x", "port that is not a number", "Zm9v" },
		{ "postgresql://app:Zm9v@PwX@127.0.0.1/db", "host name holding '@'", "PwX" },
		{ "host=h port=5432,0", "port that is not a number", NULL },
		{ "host=127.0.0.1 nosuchkey=1", "invalid connection option \"nosuchkey\"", NULL },
		{ "host=h s3cret", "missing \"=\" after \"***\"", "s3cret" },
		{ "postgresql://[::1", "\"***\"", "::1" },
		{ "postgresql://u:p%zzss@h/db", "invalid percent-encoded token: \"***\"", "zz" },
	};
	char err[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(fc_connstr_check(cases[i].in, err, sizeof(err)), -EINVAL);
		if (!strstr(err, cases[i].why))
			fail_msg("\"%s\": \"%s\" lacks \"%s\"", cases[i].in, err, cases[i].why);
		if (cases[i].secret && strstr(err, cases[i].secret))
			fail_msg("\"%s\": \"%s\" shows the secret", cases[i].in, err);
	}
	/* What libpq reads as meant passes, a socket directory may hold '@'. */
	assert_int_equal(fc_connstr_check("postgresql://app:p%2Fw%40d@h:5432,h2:1/db", err,
					  sizeof(err)), 0);
	assert_int_equal(fc_connstr_check("host=/run/pg@1 dbname=a@b password=x@y", err,
					  sizeof(err)), 0);
	assert_int_equal(fc_connstr_check("", err, sizeof(err)), 0);
}

/* libpq's messages quote what the string holds; a password shows wherever
 * it is (here as a socket directory), and is masked there. */
static void test_mask_messages(void **state)
{
	struct fc_secrets s;
	char out[256];

	assert_int_equal(fc_secrets_get("host=/tmp/Zm9vYmFy password=Zm9vYmFy sslpassword=k3y",
					&s), 0);
	assert_int_equal(s.n, 2);
	fc_secrets_mask(&s, "connection to server on socket \"/tmp/Zm9vYmFy/.s.PGSQL.5432\" "
			    "failed; key k3y", out, sizeof(out));
	assert_string_equal(out, "connection to server on socket \"/tmp/***/.s.PGSQL.5432\" "
				 "failed; key ***");
	/* Cut short: never part of a secret. */
	for (size_t len = 1; len < 40; len++) {
		fc_secrets_mask(&s, "abc Zm9vYmFy Zm9vYmFy", out, len);
		assert_true(strlen(out) < len);
		assert_null(strstr(out, "Zm9"));
	}
	fc_secrets_clear(&s);
	assert_int_equal(s.n, 0);
	assert_int_equal(fc_secrets_get("host=h s3cret", &s), -EINVAL);
	assert_int_equal(fc_secrets_get("host=h", &s), 0);
	fc_secrets_mask(&s, "as is", out, sizeof(out));
	assert_string_equal(out, "as is");
	fc_secrets_clear(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_small_buffers),
		cmocka_unit_test(test_mangled_inputs),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_mask_messages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
