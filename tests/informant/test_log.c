/* SPDX-License-Identifier: Apache-2.0 */
/* Logging: every JSON line parses (jansson) with ts/level/msg and the
 * fields in order, nasty strings (quotes, control bytes, invalid UTF-8)
 * survive escaping, non-finite doubles become null, long values are cut
 * without breaking the line, levels filter, and the text format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static char captured[16384];

/* Runs fn with stderr redirected to a temp file; returns what was written. */
static const char *capture(void (*fn)(void))
{
	char path[] = "/tmp/vmi-log-XXXXXX";
	int fd = mkstemp(path), saved = dup(STDERR_FILENO);
	ssize_t n;

	assert_true(fd >= 0 && saved >= 0);
	unlink(path);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	fn();
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	n = pread(fd, captured, sizeof(captured) - 1, 0);
	close(fd);
	assert_true(n >= 0);
	captured[n] = '\0';
	return captured;
}

static json_t *parse_line(const char *line)
{
	json_error_t jerr;
	json_t *j = json_loads(line, JSON_REJECT_DUPLICATES, &jerr);

	if (!j)
		fail_msg("not JSON (%s): %s", jerr.text, line);
	return j;
}

static void emit_fields(void)
{
	log_setup(LOG_DEBUG, LOG_FORMAT_JSON);
	log_event(LOG_INFO, "agent registered", LF_STR("agent_id", "a-1"),
		  LF_U64("memory_bytes", 5368709120u), LF_I64("delta", -5),
		  LF_MS("duration_ms", 12.5),
		  LF_BOOL("ok", true), LF_DBL("ratio", 0.1), LF_ERR(-ENOENT), LF_END);
}

static void test_json_fields(void **state)
{
	const char *out = capture(emit_fields);
	json_t *j;
	static const char *const order[] = { "ts", "level", "msg", "agent_id", "memory_bytes",
					     "delta", "duration_ms", "ok", "ratio", "error" };
	size_t i = 0;
	regex_t re;

	/* Exactly one line. */
	assert_ptr_equal(strchr(out, '\n') + 1, out + strlen(out));
	j = parse_line(out);
	assert_int_equal(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
				 "\\.[0-9]{3}Z$", REG_EXTENDED | REG_NOSUB), 0);
	assert_int_equal(regexec(&re, json_string_value(json_object_get(j, "ts")), 0, NULL, 0), 0);
	regfree(&re);
	assert_string_equal(json_string_value(json_object_get(j, "level")), "info");
	assert_string_equal(json_string_value(json_object_get(j, "msg")), "agent registered");
	assert_string_equal(json_string_value(json_object_get(j, "agent_id")), "a-1");
	assert_int_equal(json_integer_value(json_object_get(j, "memory_bytes")), 5368709120);
	assert_int_equal(json_integer_value(json_object_get(j, "delta")), -5);
	assert_true(json_real_value(json_object_get(j, "duration_ms")) == 12.5);
	assert_true(json_is_true(json_object_get(j, "ok")));
	assert_true(json_real_value(json_object_get(j, "ratio")) == 0.1);
	assert_string_equal(json_string_value(json_object_get(j, "error")), strerror(ENOENT));
	json_decref(j);
	/* Fields appear in the order given (checked on the raw text). */
	for (const char *p = out; i < sizeof(order) / sizeof(order[0]); i++) {
		char quoted[64];

		snprintf(quoted, sizeof(quoted), "\"%s\":", order[i]);
		p = strstr(p, quoted);
		if (!p)
			fail_msg("field %s missing or out of order in %s", order[i], out);
	}
}

static const char nasty[] = "quote\" backslash\\ nl\n tab\t cr\r bell\a del\x7f "
			    "bad\xff\xfe utf8 caf\xc3\xa9 overlong\xc0\xaf surrogate\xed\xa0\x80 "
			    "cut\xe2\x82";

static void emit_nasty(void)
{
	log_setup(LOG_INFO, LOG_FORMAT_JSON);
	log_event(LOG_WARN, nasty, LF_STR(nasty, nasty), LF_STR("null", NULL),
		  LF_DBL("nan", NAN), LF_DBL("inf", INFINITY), LF_DBL("ninf", -INFINITY), LF_END);
}

static void test_json_escaping(void **state)
{
	const char *out = capture(emit_nasty);
	json_t *j = parse_line(out);
	const char *msg = json_string_value(json_object_get(j, "msg"));

	assert_non_null(msg);
	/* Valid characters come back unchanged, invalid bytes as U+FFFD. */
	assert_non_null(strstr(msg, "quote\" backslash\\ nl\n tab\t cr\r bell\a del\x7f bad"));
	assert_non_null(strstr(msg, "bad\xef\xbf\xbd\xef\xbf\xbd utf8 caf\xc3\xa9 "
				    "overlong\xef\xbf\xbd"));
	assert_non_null(strstr(msg, "cut\xef\xbf\xbd"));
	assert_int_equal(json_object_size(j), 3 + 5);
	assert_true(json_is_null(json_object_get(j, "nan")));
	assert_true(json_is_null(json_object_get(j, "inf")));
	assert_true(json_is_null(json_object_get(j, "ninf")));
	assert_string_equal(json_string_value(json_object_get(j, "null")), "(null)");
	assert_string_equal(json_string_value(json_object_get(j, "level")), "warn");
	json_decref(j);
}

static void emit_long(void)
{
	static char big[10000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_setup(LOG_INFO, LOG_FORMAT_JSON);
	log_event(LOG_ERROR, "long", LF_STR("big", big), LF_U64("after", 1), LF_END);
	/* Escapes that expand 6x must be cut on a whole escape too. */
	memset(big, '\x01', sizeof(big) - 1);
	log_event(LOG_ERROR, big, LF_STR("k", "v"), LF_END);
}

static void test_long_values_are_cut(void **state)
{
	const char *out = capture(emit_long);
	char first[8192];
	const char *nl = strchr(out, '\n');
	json_t *j;

	assert_non_null(nl);
	assert_true((size_t)(nl - out) < 4096);
	memcpy(first, out, (size_t)(nl - out));
	first[nl - out] = '\0';
	j = parse_line(first);
	assert_true(json_is_true(json_object_get(j, "truncated")));
	assert_non_null(strstr(json_string_value(json_object_get(j, "big")), "xxx..."));
	assert_null(json_object_get(j, "after"));
	json_decref(j);
	assert_true(strlen(nl + 1) < 4096 && nl[strlen(nl) - 1] == '\n');
	j = parse_line(nl + 1);
	assert_true(json_is_true(json_object_get(j, "truncated")));
	json_decref(j);
}

static void emit_levels(void)
{
	log_setup(LOG_WARN, LOG_FORMAT_JSON);
	log_event(LOG_DEBUG, "hidden-debug", LF_END);
	log_event(LOG_INFO, "hidden-info", LF_END);
	log_event(LOG_WARN, "shown-warn", LF_END);
	log_event(LOG_ERROR, "shown-error", LF_END);
}

static void test_levels(void **state)
{
	const char *out = capture(emit_levels);
	enum log_level l;
	enum log_format f;

	assert_null(strstr(out, "hidden"));
	assert_non_null(strstr(out, "shown-warn"));
	assert_non_null(strstr(out, "shown-error"));
	assert_false(log_enabled(LOG_INFO));
	assert_true(log_enabled(LOG_ERROR));
	assert_int_equal(log_level_parse("debug", &l), 0);
	assert_int_equal(l, LOG_DEBUG);
	assert_int_equal(log_level_parse("Warning", &l), 0);
	assert_int_equal(l, LOG_WARN);
	assert_int_equal(log_level_parse("loud", &l), -EINVAL);
	assert_int_equal(log_format_parse("TEXT", &f), 0);
	assert_int_equal(f, LOG_FORMAT_TEXT);
	assert_int_equal(log_format_parse("yaml", &f), -EINVAL);
	assert_string_equal(log_level_name(LOG_ERROR), "error");
	assert_string_equal(log_strerror(-EACCES), strerror(EACCES));
	assert_string_equal(log_strerror(-99999), "unknown error");
}

static void emit_text(void)
{
	log_setup(LOG_DEBUG, LOG_FORMAT_TEXT);
	log_event(LOG_INFO, "agent registered", LF_STR("agent_id", "a-1"),
		  LF_STR("note", "two words"), LF_STR("empty", ""), LF_STR("q", "say \"hi\"\n"),
		  LF_U64("bytes", 42), LF_MS("ms", 1.5), LF_BOOL("ok", false), LF_DBL("nan", NAN),
		  LF_END);
	log_setup(LOG_INFO, LOG_FORMAT_JSON);
}

static void test_text_format(void **state)
{
	const char *out = capture(emit_text);
	regex_t re;

	assert_int_equal(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}Z INFO "
				 "agent registered agent_id=a-1 note=\"two words\" empty=\"\" "
				 "q=\"say \\\\\"hi\\\\\"\\\\n\" bytes=42 ms=1\\.5 ok=false "
				 "nan=NaN\n$",
				 REG_EXTENDED | REG_NOSUB), 0);
	if (regexec(&re, out, 0, NULL, 0) != 0)
		fail_msg("unexpected text line: %s", out);
	regfree(&re);
}

static void test_log_limit(void **state)
{
	struct log_limit l = { 0 };
	uint64_t dropped = 99;

	(void)state;
	assert_true(log_limit_allow(&l, 5000, 1000, &dropped));
	assert_int_equal(dropped, 0);
	assert_false(log_limit_allow(&l, 5001, 1000, &dropped));
	assert_false(log_limit_allow(&l, 5999, 1000, &dropped));
	assert_true(log_limit_allow(&l, 6000, 1000, &dropped));
	assert_int_equal(dropped, 2); /* the two in between */
	assert_false(log_limit_allow(&l, 6500, 1000, &dropped));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_limit),
		cmocka_unit_test(test_json_fields),
		cmocka_unit_test(test_json_escaping),
		cmocka_unit_test(test_long_values_are_cut),
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_text_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
