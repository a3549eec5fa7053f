/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_httputil.c — Go path.Clean and ServeMux cleaning, bearer check,
 * token file loading.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "httputil.h"

/* Expected values are Go's path.Clean results (its own test table). */
static const struct { const char *in, *out; } clean_cases[] = {
	{ "", "." },
	{ "abc", "abc" }, { "abc/def", "abc/def" }, { "a/b/c", "a/b/c" },
	{ ".", "." }, { "..", ".." }, { "../..", "../.." }, { "../../abc", "../../abc" },
	{ "/abc", "/abc" }, { "/", "/" },
	{ "abc/", "abc" }, { "abc/def/", "abc/def" }, { "a/b/c/", "a/b/c" },
	{ "./", "." }, { "../", ".." }, { "../../", "../.." }, { "/abc/", "/abc" },
	{ "abc//def//ghi", "abc/def/ghi" }, { "//abc", "/abc" }, { "///abc", "/abc" },
	{ "//abc//", "/abc" }, { "abc//", "abc" },
	{ "abc/./def", "abc/def" }, { "/./abc/def", "/abc/def" }, { "abc/.", "abc" },
	{ "abc/def/ghi/../jkl", "abc/def/jkl" }, { "abc/def/../ghi/../jkl", "abc/jkl" },
	{ "abc/def/..", "abc" }, { "abc/def/../..", "." }, { "/abc/def/../..", "/" },
	{ "abc/def/../../..", ".." }, { "/abc/def/../../..", "/" },
	{ "abc/def/../../../ghi/jkl/../../../mno", "../../mno" },
	{ "abc/./../def", "def" }, { "abc//./../def", "def" },
	{ "abc/../../././../def", "../../def" },
	{ "/a/../x", "/x" }, { "/..", "/" }, { "/.../x", "/.../x" },
};

static void test_path_clean(void **state)
{
	char out[256];

	(void)state;
	for (size_t i = 0; i < sizeof(clean_cases) / sizeof(clean_cases[0]); i++) {
		assert_int_equal(http_path_clean(clean_cases[i].in, out, sizeof(out)), 0);
		if (strcmp(out, clean_cases[i].out) != 0)
			fail_msg("clean(\"%s\") = \"%s\", want \"%s\"", clean_cases[i].in, out,
				 clean_cases[i].out);
	}
	assert_int_equal(http_path_clean("/abc", out, 5), -ENAMETOOLONG);
}

static void test_mux_clean(void **state)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "/register", "/register" },     /* clean: served */
		{ "/register/", "/register/" },   /* trailing slash kept: a 404 */
		{ "//register", "/register" },    /* 301 */
		{ "/a/../register", "/register" },
		{ "/./health-check", "/health-check" },
		{ "/x//", "/x/" },
		{ "register", "/register" },
		{ "", "/" },
		{ "/", "/" },
	};
	char out[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(http_mux_clean(cases[i].in, out, sizeof(out)), 0);
		assert_string_equal(out, cases[i].out);
	}
}

static void test_auth(void **state)
{
	static const struct { const char *header; bool ok; } cases[] = {
		{ "Bearer s3cret", true },
		{ "bearer s3cret", true },
		{ "BEARER s3cret", true },
		{ "Bearer s3cre", false },
		{ "Bearer s3cret ", false },
		{ "Bearer s3cretx", false },
		{ "Bearer S3cret", false },
		{ "Basic s3cret", false },
		{ "Bearers3cret", false },
		{ "Bearer ", false },
		{ "", false },
		{ "s3cret", false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (http_auth_ok(cases[i].header, "s3cret") != cases[i].ok)
			fail_msg("header \"%s\"", cases[i].header);
	assert_false(http_auth_ok(NULL, "s3cret"));
	assert_false(http_auth_ok("Bearer ", "")); /* an empty token never matches */
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_token_load(void **state)
{
	char path[] = "/tmp/vmi-token-XXXXXX";
	char tok[HTTP_TOKEN_MAX], err[256];
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	write_file(path, "abc123\n");
	assert_int_equal(http_token_load(path, tok, sizeof(tok), err, sizeof(err)), 0);
	assert_string_equal(tok, "abc123");
	write_file(path, "\n");
	assert_int_equal(http_token_load(path, tok, sizeof(tok), err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, path));
	write_file(path, "two\nlines\n");
	assert_int_equal(http_token_load(path, tok, sizeof(tok), err, sizeof(err)), -EINVAL);
	unlink(path);
	assert_int_equal(http_token_load(path, tok, sizeof(tok), err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, path));
	/* A FIFO given by mistake: refused at once, not waited on. */
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(http_token_load(path, tok, sizeof(tok), err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a regular file"));
	unlink(path);
}

/* The gate's check of a connection's first bytes. */
static void test_request_start(void **state)
{
	static const struct { const char *in; size_t n; int want; } cases[] = {
		{ "GET / HTTP/1.1\r\n", 0, 1 },
		{ "PUT ", 0, 1 },
		{ "\r\nPOST /x", 0, 1 },  /* one blank line before: RFC 9112 §2.2 */
		{ "", 0, 0 },
		{ "GE", 0, 0 },
		{ "\r\n\r\n", 0, 0 },
		{ "\0\0\0", 3, -1 },
		{ "\x16\x03\x01", 0, -1 },  /* a TLS ClientHello */
		{ " GET /", 0, -1 },
		{ "GET\t/", 0, -1 },
		{ "G\0T /", 5, -1 },
		{ "\r\n\r\n\r\n\r\n\r", 0, -1 }, /* 9 blank bytes */
		{ "M-SEARCH * HTTP/1.1", 0, 1 },
		{ "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEF /", 0, 1 },   /* 32 */
		{ "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFG /", 0, -1 }, /* 33 */
		{ "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEF", 0, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = cases[i].n ? cases[i].n : strlen(cases[i].in);
		int got = http_request_start(cases[i].in, n);

		if (got != cases[i].want)
			fail_msg("case %zu: %d, want %d", i, got, cases[i].want);
	}
	/* HTTP_START_BYTES always decide. */
	char buf[HTTP_START_BYTES];
	memset(buf, 'A', sizeof(buf));
	assert_int_equal(http_request_start(buf, sizeof(buf)), -1);
	memset(buf, '\n', HTTP_START_MAX_BLANK);
	assert_int_equal(http_request_start(buf, sizeof(buf)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_clean),
		cmocka_unit_test(test_mux_clean),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_token_load),
		cmocka_unit_test(test_request_start),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
