/* SPDX-License-Identifier: Apache-2.0 */
/* Config: contract defaults, every key, every range boundary, malformed
 * values, unknown sections/keys, FILE:LINE in messages, comments,
 * cross-field rules, print → parse round trip, connstr redaction, and the
 * reference's file cache validation vectors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#define MIB (1024ull * 1024)

/* Writes text to a fresh temp file; the caller unlinks path. */
static void write_temp(char *path, size_t len, const char *text)
{
	int fd;

	snprintf(path, len, "%s/vmi-config-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* Loads text over the defaults; returns the result, message in err. */
static int load_text(struct config *c, const char *text, char *path, char *err, size_t errlen)
{
	int r;

	config_defaults(c);
	write_temp(path, 256, text);
	err[0] = '\0';
	r = config_load_file(c, path, err, errlen);
	unlink(path);
	return r;
}

static void test_defaults_match_contract(void **state)
{
	struct config c;
	char err[256];

	config_defaults(&c);
	assert_string_equal(c.server.listen_host, "0.0.0.0");
	assert_int_equal(c.server.listen_port, 10301);
	assert_string_equal(c.server.auth_token_file, "");
	assert_int_equal(c.server.max_body_bytes, 64 * 1024);
	assert_true(c.server.metrics);
	assert_int_equal(c.agent.id_check_interval_ms, 10000);
	assert_int_equal(c.agent.id_check_timeout_ms, 250);
	assert_int_equal(c.agent.register_id_timeout_ms, 250);
	assert_int_equal(c.agent.resume_timeout_ms, 100);
	assert_int_equal(c.agent.suspend_timeout_ms, 5000);
	assert_int_equal(c.agent.upscale_timeout_ms, 400);
	assert_true(c.cgroup.enabled);
	assert_string_equal(c.cgroup.name, "neon-postgres");
	assert_string_equal(c.cgroup.root, "/sys/fs/cgroup");
	assert_int_equal(c.cgroup.oom_buffer, 100 * MIB);
	assert_int_equal(c.cgroup.memory_high_buffer, 100 * MIB);
	assert_int_equal(c.cgroup.max_upscale_wait_ms, 20);
	assert_int_equal(c.cgroup.min_freeze_interval_ms, 1000);
	assert_int_equal(c.cgroup.memory_high_step, 10 * MIB);
	assert_int_equal(c.cgroup.memory_high_step_interval_ms, 25);
	assert_false(c.filecache.enabled);
	assert_string_equal(c.filecache.connstr, "");
	assert_true(c.filecache.in_memory);
	assert_true(c.filecache.resource_multiplier == 0.75);
	assert_int_equal(c.filecache.min_remaining_after_cache, 640 * MIB);
	assert_true(c.filecache.spread_factor == 0.1);
	assert_string_equal(c.filecache.size_setting, "neon.file_cache_size_limit");
	assert_string_equal(c.filecache.max_size_setting, "neon.max_file_cache_size");
	assert_int_equal(c.filecache.connect_timeout_ms, 1000);
	assert_string_equal(c.system.meminfo, "/proc/meminfo");
	assert_int_equal(c.system.sys_buffer, 100 * MIB);
	assert_int_equal(c.sampler.interval_ms, 100);
	assert_true(c.predict.enabled);
	assert_int_equal(c.predict.horizon_ms, 2000);
	assert_true(c.predict.critical_ratio == 0.9);
	assert_int_equal(c.predict.min_interval_ms, 1000);
	assert_int_equal(c.log.level, LOG_INFO);
	assert_int_equal(c.log.format, LOG_FORMAT_JSON);
	assert_false(c.supervisor.auto_restart);
	assert_int_equal(c.supervisor.min_restart_interval_ms, 5000);
	assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
}

/* Every key set, the token file (which must exist) written by main(). */
static char token_path[256];
static char every_key[4096];
static const char every_key_fmt[] =
	"[server]\nlisten = 127.0.0.1:8080\nauth_token_file = %s\n"
	"max_body_bytes = 1MiB\nmetrics = false\n"
	"[agent]\nid_check_interval = 2m\nid_check_timeout = 1s\nregister_id_timeout = 2s\n"
	"resume_timeout = 3s\nsuspend_timeout = 4s\nupscale_timeout = 5s\n"
	"[cgroup]\nenabled = no\nname = pg/inner\nroot = /tmp/cg\noom_buffer = 1G\n"
	"memory_high_buffer = 2048K\nmax_upscale_wait = 30ms\nmin_freeze_interval = 0\n"
	"memory_high_step = 2MiB\nmemory_high_step_interval = 50ms\n"
	"[filecache]\nenabled = on\nconnstr = dbname=postgres user=u password=secret\n"
	"in_memory = off\nresource_multiplier = 0.5\nmin_remaining_after_cache = 1GiB\n"
	"spread_factor = 0.25\nsize_setting = a.b\nmax_size_setting = c_d.e1\n"
	"connect_timeout = 3s\n"
	"[system]\nmeminfo = /tmp/meminfo\nsys_buffer = 12345\n"
	"[sampler]\ninterval = 0\n"
	"[predict]\nenabled = 0\nhorizon = 1m\ncritical_ratio = 1\nmin_interval = 250ms\n"
	"[log]\nlevel = debug\nformat = text\n"
	"[supervisor]\nauto_restart = yes\nmin_restart_interval = 1h\n";

static void check_every_key(const struct config *c)
{
	assert_string_equal(c->server.listen_host, "127.0.0.1");
	assert_int_equal(c->server.listen_port, 8080);
	assert_string_equal(c->server.auth_token_file, token_path);
	assert_int_equal(c->server.max_body_bytes, MIB);
	assert_false(c->server.metrics);
	assert_int_equal(c->agent.id_check_interval_ms, 120000);
	assert_int_equal(c->agent.id_check_timeout_ms, 1000);
	assert_int_equal(c->agent.register_id_timeout_ms, 2000);
	assert_int_equal(c->agent.resume_timeout_ms, 3000);
	assert_int_equal(c->agent.suspend_timeout_ms, 4000);
	assert_int_equal(c->agent.upscale_timeout_ms, 5000);
	assert_false(c->cgroup.enabled);
	assert_string_equal(c->cgroup.name, "pg/inner");
	assert_string_equal(c->cgroup.root, "/tmp/cg");
	assert_int_equal(c->cgroup.oom_buffer, 1024 * MIB);
	assert_int_equal(c->cgroup.memory_high_buffer, 2 * MIB);
	assert_int_equal(c->cgroup.max_upscale_wait_ms, 30);
	assert_int_equal(c->cgroup.min_freeze_interval_ms, 0);
	assert_int_equal(c->cgroup.memory_high_step, 2 * MIB);
	assert_int_equal(c->cgroup.memory_high_step_interval_ms, 50);
	assert_true(c->filecache.enabled);
	assert_string_equal(c->filecache.connstr, "dbname=postgres user=u password=secret");
	assert_false(c->filecache.in_memory);
	assert_true(c->filecache.resource_multiplier == 0.5);
	assert_int_equal(c->filecache.min_remaining_after_cache, 1024 * MIB);
	assert_true(c->filecache.spread_factor == 0.25);
	assert_string_equal(c->filecache.size_setting, "a.b");
	assert_string_equal(c->filecache.max_size_setting, "c_d.e1");
	assert_int_equal(c->filecache.connect_timeout_ms, 3000);
	assert_string_equal(c->system.meminfo, "/tmp/meminfo");
	assert_int_equal(c->system.sys_buffer, 12345);
	assert_int_equal(c->sampler.interval_ms, 0);
	assert_false(c->predict.enabled);
	assert_int_equal(c->predict.horizon_ms, 60000);
	assert_true(c->predict.critical_ratio == 1.0);
	assert_int_equal(c->predict.min_interval_ms, 250);
	assert_int_equal(c->log.level, LOG_DEBUG);
	assert_int_equal(c->log.format, LOG_FORMAT_TEXT);
	assert_true(c->supervisor.auto_restart);
	assert_int_equal(c->supervisor.min_restart_interval_ms, 3600000);
}

static void test_every_key(void **state)
{
	struct config c;
	char path[256], err[1024];

	assert_int_equal(load_text(&c, every_key, path, err, sizeof(err)), 0);
	check_every_key(&c);
	assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
}

/* Printing the effective settings and parsing them back gives the same
 * config (except the redacted password), and no secret is printed. */
static void test_print_round_trip(void **state)
{
	struct config c, back;
	char path[256], err[1024], *buf = NULL;
	size_t len = 0;
	FILE *mem;

	assert_int_equal(load_text(&c, every_key, path, err, sizeof(err)), 0);
	mem = open_memstream(&buf, &len);
	assert_non_null(mem);
	config_print(&c, mem);
	fclose(mem);
	assert_null(strstr(buf, "=secret"));
	assert_non_null(strstr(buf, "password=***"));
	assert_int_equal(load_text(&back, buf, path, err, sizeof(err)), 0);
	free(buf);
	assert_string_equal(back.filecache.connstr, "user=u password=*** dbname=postgres");
	memcpy(back.filecache.connstr, c.filecache.connstr, sizeof(c.filecache.connstr));
	check_every_key(&back);
	assert_memory_equal(&c, &back, sizeof(c));
}

struct range_case {
	const char *section, *key, *value;
	bool ok;
};

static const struct range_case range_cases[] = {
	{ "cgroup", "max_upscale_wait", "1ms", true },
	{ "cgroup", "max_upscale_wait", "0", false },
	{ "cgroup", "max_upscale_wait", "1s", true },
	{ "cgroup", "max_upscale_wait", "1001ms", false },
	{ "cgroup", "min_freeze_interval", "0", true },
	{ "cgroup", "min_freeze_interval", "60s", true },
	{ "cgroup", "min_freeze_interval", "60001ms", false },
	{ "cgroup", "memory_high_step", "1MiB", true },
	{ "cgroup", "memory_high_step", "1048575", false },
	{ "cgroup", "memory_high_step", "1GiB", true },
	{ "cgroup", "memory_high_step", "1073741825", false },
	{ "cgroup", "memory_high_step_interval", "1ms", true },
	{ "cgroup", "memory_high_step_interval", "0ms", false },
	{ "cgroup", "memory_high_step_interval", "1s", true },
	{ "cgroup", "memory_high_step_interval", "1001ms", false },
	{ "agent", "id_check_timeout", "1ms", true },
	{ "agent", "id_check_timeout", "0", false },
	{ "agent", "id_check_timeout", "60s", true },
	{ "agent", "id_check_timeout", "1m", true },
	{ "agent", "id_check_timeout", "60001ms", false },
	{ "agent", "register_id_timeout", "0", false },
	{ "agent", "register_id_timeout", "61s", false },
	{ "agent", "resume_timeout", "0", false },
	{ "agent", "resume_timeout", "60s", true },
	{ "agent", "suspend_timeout", "0", false },
	{ "agent", "suspend_timeout", "2m", false },
	{ "agent", "upscale_timeout", "1ms", true },
	{ "agent", "upscale_timeout", "0", false },
	{ "agent", "id_check_interval", "100ms", true },
	{ "agent", "id_check_interval", "99ms", false },
	{ "agent", "id_check_interval", "1h", true },
	{ "agent", "id_check_interval", "3600001ms", false },
	{ "sampler", "interval", "0", true },
	{ "sampler", "interval", "0ms", true },
	{ "sampler", "interval", "9ms", false },
	{ "sampler", "interval", "10ms", true },
	{ "sampler", "interval", "10s", true },
	{ "sampler", "interval", "10001ms", false },
	{ "predict", "horizon", "100ms", true },
	{ "predict", "horizon", "99ms", false },
	{ "predict", "horizon", "60s", true },
	{ "predict", "horizon", "60001ms", false },
	{ "predict", "critical_ratio", "0", false },
	{ "predict", "critical_ratio", "0.000001", true },
	{ "predict", "critical_ratio", "1", true },
	{ "predict", "critical_ratio", "1.0000001", false },
	{ "predict", "critical_ratio", "-0.5", false },
	{ "filecache", "resource_multiplier", "0", false },
	{ "filecache", "resource_multiplier", "0.01", true },
	{ "filecache", "resource_multiplier", "1", false },
	{ "filecache", "resource_multiplier", "0.9", true },
	{ "filecache", "spread_factor", "0", true },
	{ "filecache", "spread_factor", "-0.1", false },
	{ "filecache", "min_remaining_after_cache", "0", false },
	{ "filecache", "min_remaining_after_cache", "1", true },
	{ "supervisor", "min_restart_interval", "0", true },
	{ "supervisor", "min_restart_interval", "1h", true },
	{ "supervisor", "min_restart_interval", "61m", false },
	{ "server", "max_body_bytes", "1KiB", true },
	{ "server", "max_body_bytes", "1023", false },
	{ "server", "max_body_bytes", "16MiB", true },
	{ "server", "max_body_bytes", "16777217", false },
	{ "server", "listen", "0.0.0.0:1", true },
	{ "server", "listen", "0.0.0.0:65535", true },
	{ "server", "listen", "0.0.0.0:0", false },
	{ "server", "listen", "0.0.0.0:65536", false },
	{ "server", "listen", "localhost:10301", true },
	{ "server", "listen", "[::1]:10301", true },
	{ "server", "listen", "[::]:80", true },
	{ "server", "listen", "::1:80", false },
	{ "server", "listen", "[::1]80", false },
	{ "server", "listen", "[zz]:80", false },
	{ "server", "listen", ":80", false },
	{ "server", "listen", "1.2.3.256:80", false },
	{ "server", "listen", "host", false },
	{ "server", "listen", "host:8x", false },
	{ "server", "listen", "bad_host!:80", false },
	{ "cgroup", "name", "", false }, /* the root is never managed */
	{ "cgroup", "name", "a/b", true },
	{ "cgroup", "name", "/abs", false },
	{ "cgroup", "name", "../escape", false },
	{ "cgroup", "name", "a/./b", false },
	{ "cgroup", "name", "a//b", false },
	{ "cgroup", "name", "a/", false },
	{ "cgroup", "root", "", false },
	{ "system", "meminfo", "", false },
	{ "filecache", "size_setting", "x; drop table t", false },
	{ "filecache", "size_setting", "1abc", false },
	{ "filecache", "size_setting", "a..b", false },
	{ "filecache", "size_setting", "", false },
	{ "log", "level", "warn", true },
	{ "log", "level", "ERROR", true },
	{ "log", "level", "verbose", false },
	{ "log", "format", "text", true },
	{ "log", "format", "xml", false },
};

static void test_ranges(void **state)
{
	for (size_t i = 0; i < sizeof(range_cases) / sizeof(range_cases[0]); i++) {
		const struct range_case *t = &range_cases[i];
		char text[512], path[256], err[1024], want[512];
		struct config c;
		int r;

		snprintf(text, sizeof(text), "# leading comment\n[%s]\n%s = %s\n", t->section,
			 t->key, t->value);
		r = load_text(&c, text, path, err, sizeof(err));
		if ((r == 0) != t->ok)
			fail_msg("[%s] %s = %s: expected %s, got %d (%s)", t->section, t->key,
				 t->value, t->ok ? "ok" : "error", r, err);
		if (!t->ok) {
			snprintf(want, sizeof(want), "%s:3: [%s] %s: ", path, t->section, t->key);
			if (strncmp(err, want, strlen(want)) != 0)
				fail_msg("message \"%s\" does not start with \"%s\"", err, want);
			assert_int_equal(r, -EINVAL);
		}
	}
}

struct parse_case {
	const char *text;
	uint64_t want; /* UINT64_MAX: must be rejected */
};

static void test_value_parsers(void **state)
{
	static const struct parse_case sizes[] = {
		{ "0", 0 }, { "12345", 12345 }, { "1K", 1024 }, { "1KiB", 1024 },
		{ "2M", 2 * MIB }, { "2MiB", 2 * MIB }, { "3G", 3072 * MIB },
		{ "3GiB", 3072 * MIB }, { "100 MiB", 100 * MIB }, { "", UINT64_MAX },
		{ "1T", 1024 * 1024 * MIB }, { "2TiB", 2048 * 1024 * MIB },
		{ "16777216TiB", UINT64_MAX }, { "1TB", UINT64_MAX },
		{ "MiB", UINT64_MAX }, { "1.5MiB", UINT64_MAX }, { "-1", UINT64_MAX },
		{ "1XB", UINT64_MAX }, { "1kib", UINT64_MAX }, { "1MB", UINT64_MAX },
		{ "99999999999999999999", UINT64_MAX }, { "17179869184GiB", UINT64_MAX },
		{ " 1", UINT64_MAX }, { "+1", UINT64_MAX },
	};
	static const struct parse_case durations[] = {
		{ "0", 0 }, { "250ms", 250 }, { "5s", 5000 }, { "2m", 120000 },
		{ "1h", 3600000 }, { "5 s", 5000 }, { "5", UINT64_MAX }, { "5sec", UINT64_MAX },
		{ "-1s", UINT64_MAX }, { "1.5s", UINT64_MAX }, { "", UINT64_MAX },
		{ "s", UINT64_MAX }, { "1us", UINT64_MAX }, { "1m30s", UINT64_MAX },
	};
	static const struct { const char *text; int want; } bools[] = {
		{ "true", 1 }, { "TRUE", 1 }, { "yes", 1 }, { "on", 1 }, { "1", 1 },
		{ "false", 0 }, { "no", 0 }, { "Off", 0 }, { "0", 0 },
		{ "maybe", -1 }, { "2", -1 }, { "", -1 }, { "t", -1 },
	};
	uint64_t v;
	bool b;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		int r = config_parse_size(sizes[i].text, &v);

		if (sizes[i].want == UINT64_MAX ? r == 0 : (r != 0 || v != sizes[i].want))
			fail_msg("size \"%s\": r=%d v=%llu", sizes[i].text, r,
				 (unsigned long long)v);
	}
	for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
		int r = config_parse_duration_ms(durations[i].text, &v);

		if (durations[i].want == UINT64_MAX ? r == 0 : (r != 0 || v != durations[i].want))
			fail_msg("duration \"%s\": r=%d", durations[i].text, r);
	}
	for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
		int r = config_parse_bool(bools[i].text, &b);

		if (bools[i].want < 0 ? r == 0 : (r != 0 || b != (bools[i].want == 1)))
			fail_msg("bool \"%s\": r=%d", bools[i].text, r);
	}
}

struct error_case {
	const char *text;
	const char *want; /* fragment of the message, after "FILE:" */
};

static const struct error_case error_cases[] = {
	{ "[server]\nmax_body_bytes = 10XB\n",
	  ":2: [server] max_body_bytes: \"10XB\" is not a size" },
	{ "[agent]\n\nupscale_timeout = 5\n",
	  ":3: [agent] upscale_timeout: \"5\" is not a duration" },
	{ "[server]\nmetrics = maybe\n", ":2: [server] metrics: \"maybe\" is not a boolean" },
	{ "[predict]\ncritical_ratio = nan\n", ":2: [predict] critical_ratio: \"nan\" is not" },
	{ "[filecache]\nspread_factor = 0x1p-1\n", ":2: [filecache] spread_factor:" },
	{ "[filecache]\nspread_factor = inf\n", ":2: [filecache] spread_factor:" },
	{ "[nope]\nx = 1\n", ":1: unknown section [nope]" },
	{ "[server]\n[empty_unknown]\n", ":2: unknown section [empty_unknown]" },
	{ "[cgroup]\nname = x\nbogus = 1\n", ":3: [cgroup] bogus: unknown key — keys of this "
	  "section: enabled, name, root" },
	{ "listen = 1.2.3.4:5\n", ":1: listen: key outside any section" },
	{ "[server]\nthis is not a key\n", ":2: syntax error" },
	{ "[server\n", ":1: syntax error" },
	{ "[cgroup]\nmax_upscale_wait = 2s\n", ":2: [cgroup] max_upscale_wait: 2s is not "
	  "allowed — allowed: 1ms to 1s" },
};

static void test_errors_name_file_and_line(void **state)
{
	for (size_t i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++) {
		char path[256], err[1024], want[512];
		struct config c;

		int r = load_text(&c, error_cases[i].text, path, err, sizeof(err));

		assert_int_equal(r, -EINVAL);
		snprintf(want, sizeof(want), "%s%s", path, error_cases[i].want);
		if (strncmp(err, want, strlen(want)) != 0)
			fail_msg("case %zu: got \"%s\", want prefix \"%s\"", i, err, want);
	}
}

static void test_comments_and_quotes(void **state)
{
	static const char text[] =
		"# hash comment\n; semicolon comment\n[cgroup] ; after a section\n"
		"name = \"quoted name\"   # inline hash\n"
		"    # indented comment line, as in the contract's example\n"
		"root = /tmp/a#b ; inline semicolon\n"
		"\n  oom_buffer = 1MiB\n";
	struct config c;
	char path[256], err[1024];

	assert_int_equal(load_text(&c, text, path, err, sizeof(err)), 0);
	assert_string_equal(c.cgroup.name, "quoted name");
	assert_string_equal(c.cgroup.root, "/tmp/a#b");
	assert_int_equal(c.cgroup.oom_buffer, MIB);
}

static void test_long_lines(void **state)
{
	char text[6000], path[256], err[1024];
	struct config c;
	size_t n = (size_t)snprintf(text, sizeof(text), "[filecache]\nconnstr = ");

	/* A connstr of the largest allowed size fits on a line... */
	n += (size_t)snprintf(text + n, sizeof(text) - n, "dbname=");
	memset(text + n, 'a', CONFIG_STR_MAX - 1 - strlen("dbname="));
	n -= strlen("dbname=");
	snprintf(text + n + CONFIG_STR_MAX - 1, sizeof(text) - n - CONFIG_STR_MAX + 1, "\n");
	assert_int_equal(load_text(&c, text, path, err, sizeof(err)), 0);
	assert_int_equal(strlen(c.filecache.connstr), CONFIG_STR_MAX - 1);
	/* ...one byte more is refused, not cut. */
	memset(text + n, 'a', CONFIG_STR_MAX);
	snprintf(text + n + CONFIG_STR_MAX, sizeof(text) - n - CONFIG_STR_MAX, "\n");
	assert_int_equal(load_text(&c, text, path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":2: [filecache] connstr: value is 1024 bytes long"));
	/* A line longer than the line buffer is an error, not two lines. */
	memset(text + n, 'a', 5000);
	snprintf(text + n + 5000, sizeof(text) - n - 5000, "\n");
	assert_int_equal(load_text(&c, text, path, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":2: line too long"));
}

static void test_filecache_enabled_rules(void **state)
{
	struct config c;
	char path[256], err[1024];

	/* A connstr alone turns the file cache on... */
	assert_int_equal(load_text(&c, "[filecache]\nconnstr = dbname=x\n", path, err,
				   sizeof(err)), 0);
	assert_true(c.filecache.enabled);
	/* ...unless the file says enabled = false, in either order. */
	assert_int_equal(load_text(&c, "[filecache]\nenabled = false\nconnstr = dbname=x\n", path,
				   err, sizeof(err)), 0);
	assert_false(c.filecache.enabled);
	assert_int_equal(load_text(&c, "[filecache]\nconnstr = dbname=x\nenabled = false\n", path,
				   err, sizeof(err)), 0);
	assert_false(c.filecache.enabled);
	/* enabled without a connstr is refused by validation. */
	assert_int_equal(load_text(&c, "[filecache]\nenabled = true\n", path, err, sizeof(err)), 0);
	assert_int_equal(config_validate(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "[filecache] enabled = true needs a connstr"));
	/* multiplier x (1 + spread) must stay below 1. */
	assert_int_equal(load_text(&c, "[filecache]\nresource_multiplier = 0.5\n"
				   "spread_factor = 1\n", path, err, sizeof(err)), 0);
	assert_int_equal(config_validate(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "resource_multiplier × (1 + spread_factor)"));
}

/* The reference's validation cases: the same values are valid/invalid here. */
static void test_filecache_vectors(void **state)
{
	char path[1024];
	json_error_t jerr;
	json_t *cases, *tc;
	size_t i;

	snprintf(path, sizeof(path), "%s/filecache-config-validation.json",
		 getenv("VMI_VECTORS_DIR") ? getenv("VMI_VECTORS_DIR") : "tests/vectors");
	cases = json_load_file(path, 0, &jerr);
	if (!cases)
		fail_msg("%s: %s", path, jerr.text);
	json_array_foreach(cases, i, tc) {
		struct config c;
		char err[512];
		bool valid;

		config_defaults(&c);
		c.filecache.resource_multiplier =
			json_number_value(json_object_get(tc, "resourceMultiplier"));
		c.filecache.spread_factor = json_number_value(json_object_get(tc, "spreadFactor"));
		c.filecache.min_remaining_after_cache =
			(uint64_t)json_integer_value(json_object_get(tc, "minRemainingAfterCache"));
		valid = json_is_true(json_object_get(tc, "valid"));
		if ((config_validate(&c, err, sizeof(err)) == 0) != valid)
			fail_msg("vector %zu: expected %s", i, valid ? "valid" : "invalid");
	}
	json_decref(cases);
}

static void test_empty_cgroup_name(void **state)
{
	struct config c;
	char err[512];

	(void)state;
	config_defaults(&c);
	c.cgroup.name[0] = '\0';
	assert_int_equal(config_validate(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "[cgroup] name"));
	c.cgroup.enabled = false; /* not managed: the name does not matter */
	assert_int_equal(config_validate(&c, err, sizeof(err)), 0);
}

/* The connection string is shown the way libpq reads it (key=value, in
 * libpq's order), its password masked wherever libpq finds it. */
static void test_redaction(void **state)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "dbname=postgres user=u password=secret",
		  "user=u password=*** dbname=postgres" },
		{ "password = 'sec ret\\' x' host=h", "password=*** host=h" },
		{ "PASSWORD=s", "***" }, /* libpq's keywords are lower case: not parsed */
		{ "dbname=postgres", "dbname=postgres" },
		{ "", "" },
		{ "postgresql://u:secret@h:5432/db?sslmode=disable",
		  "user=u password=*** dbname=db host=h port=5432 sslmode=disable" },
		{ "postgres://u@h/db?password=secret&application_name=x", 
		  "user=u password=*** dbname=db host=h application_name=x" },
		{ "postgres://h/db", "dbname=db host=h" },
		/* The cases: an unencoded '@' (libpq: password "P"),
		 * '@' in another parameter before password=, percent-encoding. */
		{ "postgresql://app:P@ss@host/db", "user=app password=*** dbname=db host=ss@host" },
		{ "postgresql://u@h/db?application_name=x@y&password=sekret",
		  "user=u password=*** dbname=db host=h application_name=x@y" },
		{ "postgresql://app:p%40ss@h/db", "user=app password=*** dbname=db host=h" },
		{ "host=h application_name='a b' password=x", "password=*** host=h application_name='a b'" },
	};
	char out[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(config_connstr_redact(cases[i].in, out, sizeof(out)), 0);
		assert_string_equal(out, cases[i].out);
	}
	/* libpq reads a backslash-escaped blank as part of the value: none of
	 * the password may remain (the fuzzer's finding). */
	assert_int_equal(config_connstr_redact("password=sec\\ ret host=h", out, sizeof(out)), 0);
	assert_null(strstr(out, "ret h"));
	assert_null(strstr(out, "sec"));
	/* Too small a buffer never leaks a cut-off secret. */
	assert_int_equal(config_connstr_redact("password=verylongsecret", out, 12), -ENOSPC);
	assert_string_equal(out, "***");
}

/* What libpq refuses, or reads with part of a password in another field,
 * is refused with FILE:LINE and the key — and never quoted. */
static void test_connstr_checked_by_libpq(void **state)
{
	static const struct { const char *connstr, *why, *secret; } cases[] = {
		{ "host=127.0.0.1 nosuchkey=1", "invalid connection option \"nosuchkey\"", NULL },
		{ "host=127.0.0.1 password=Zm9vYmFy s3cret", "missing \"=\" after", "s3cret" },
		{ "postgresql://app:Zm9v/YmFy+cw==@host/db", "database name holding '@'", "Zm9v" },
		{ "postgresql://app:Zm9v/YmFy", "port that is not a number", "Zm9v" },
		{ "postgresql://app:Zm9v@PwX@127.0.0.1/db", "host name holding '@'", "PwX" },
		{ "postgresql://app:1234/x@host/db", "database name holding '@'", "1234/x" },
		{ "postgresql://app:p%zzss@h/db", "invalid percent-encoded token", "zz" },
	};
	char text[512], path[256], err[1024];
	struct config c;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text), "[log]\nlevel = info\n[filecache]\nconnstr = %s\n",
			 cases[i].connstr);
		assert_int_equal(load_text(&c, text, path, err, sizeof(err)), -EINVAL);
		if (!strstr(err, ":4: [filecache] connstr: ") || !strstr(err, cases[i].why))
			fail_msg("%s: %s", cases[i].connstr, err);
		if (cases[i].secret && strstr(err, cases[i].secret))
			fail_msg("%s: the message shows the secret: %s", cases[i].connstr, err);
	}
	/* The same from -pgconnstr (no line): config_validate. */
	config_defaults(&c);
	snprintf(c.filecache.connstr, sizeof(c.filecache.connstr), "host=h port=5432,x");
	assert_int_equal(config_validate(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "[filecache] connstr: libpq reads a port"));
}

/* The daemon refuses to start without its token: the loader refuses the
 * file first (and so does --check-config, with the line). */
static void test_token_file_checked(void **state)
{
	char text[512], path[256], err[1024];
	struct config c;

	assert_int_equal(load_text(&c, "[server]\nauth_token_file = /nonexistent/token\n", path,
				   err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":2: [server] auth_token_file: cannot read auth_token_file "
				    "/nonexistent/token: No such file or directory"));
	assert_int_equal(load_text(&c, "[server]\nauth_token_file = /tmp\n", path, err,
				   sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a regular file"));
	snprintf(text, sizeof(text), "[server]\nauth_token_file = %s\n", token_path);
	assert_int_equal(load_text(&c, text, path, err, sizeof(err)), 0);
}

/* A NUL byte says so (fgets() made it "line too long"). */
static void test_nul_byte(void **state)
{
	static const char text[] = "[server]\nmetrics = tr\0ue\n";
	char path[256], err[1024];
	struct config c;
	int fd, r;

	config_defaults(&c);
	snprintf(path, sizeof(path), "%s/vmi-config-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)sizeof(text) - 1);
	close(fd);
	r = config_load_file(&c, path, err, sizeof(err));
	unlink(path);
	assert_int_equal(r, -EINVAL);
	assert_non_null(strstr(err, ":2: a NUL byte in the line"));
}

static void test_missing_file(void **state)
{
	struct config c;
	char err[512];

	config_defaults(&c);
	assert_int_equal(config_load_file(&c, "/nonexistent/vmi.conf", err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/vmi.conf: cannot open config file"));
}

static void test_directory_as_file(void **state)
{
	struct config c;
	char err[512];
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

	(void)state;
	config_defaults(&c);
	assert_int_equal(config_load_file(&c, dir, err, sizeof(err)), -EISDIR);
	assert_non_null(strstr(err, "is a directory"));
	assert_null(strstr(err, "read error"));
}

/* Sizes print in the largest unit that divides them, TiB included, and a
 * printed TiB reads back (--check-config output is a valid file). */
static void test_tib(void **state)
{
	struct config c;
	char path[256], err[512], *text = NULL;
	size_t len = 0;
	FILE *out;

	(void)state;
	assert_int_equal(load_text(&c, "[cgroup]\noom_buffer = 2TiB\n", path, err, sizeof(err)), 0);
	assert_int_equal(c.cgroup.oom_buffer, 2ull << 40);
	out = open_memstream(&text, &len);
	assert_non_null(out);
	config_print(&c, out);
	fclose(out);
	assert_non_null(strstr(text, "oom_buffer = 2TiB\n"));
	free(text);
	/* The printed range is what is allowed: 1024TiB is, 1025TiB is not. */
	assert_int_equal(load_text(&c, "[system]\nsys_buffer = 1024TiB\n", path, err,
				   sizeof(err)), 0);
	assert_int_equal(load_text(&c, "[system]\nsys_buffer = 1025TiB\n", path, err,
				   sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "0 to 1024TiB"));
}

/* A reload applies the live keys and keeps the restart-only ones, naming
 * each kept key that changed. */
static void note(const char *section, const char *name, void *arg)
{
	char *seen = arg;

	strcat(seen, section);
	strcat(seen, ".");
	strcat(seen, name);
	strcat(seen, " ");
}

static void test_apply_reload(void **state)
{
	struct config running, loaded;
	char path[256], err[512], seen[512] = "";

	(void)state;
	config_defaults(&running);
	assert_int_equal(load_text(&loaded, "[server]\nlisten = 127.0.0.1:1234\n"
				   "[agent]\nresume_timeout = 7ms\n[cgroup]\nname = x\n"
				   "oom_buffer = 1MiB\n[log]\nlevel = debug\n"
				   "[supervisor]\nmin_restart_interval = 9s\n",
				   path, err, sizeof(err)), 0);
	config_apply_reload(&running, &loaded, note, seen);
	assert_string_equal(seen, "server.listen cgroup.name supervisor.min_restart_interval ");
	assert_string_equal(running.server.listen_host, "0.0.0.0");
	assert_int_equal(running.server.listen_port, 10301);
	assert_string_equal(running.cgroup.name, "neon-postgres");
	assert_int_equal(running.supervisor.min_restart_interval_ms, 5000);
	assert_int_equal(running.agent.resume_timeout_ms, 7);
	assert_int_equal(running.cgroup.oom_buffer, MIB);
	assert_int_equal(running.log.level, LOG_DEBUG);
	/* Only the port differs: still a change of listen. */
	seen[0] = '\0';
	config_defaults(&loaded);
	loaded.server.listen_port = 1;
	config_apply_reload(&running, &loaded, note, seen);
	assert_string_equal(seen, "server.listen ");
}

int main(void)
{
	int fd, r;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_match_contract),
		cmocka_unit_test(test_every_key),
		cmocka_unit_test(test_print_round_trip),
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_value_parsers),
		cmocka_unit_test(test_errors_name_file_and_line),
		cmocka_unit_test(test_comments_and_quotes),
		cmocka_unit_test(test_long_lines),
		cmocka_unit_test(test_filecache_enabled_rules),
		cmocka_unit_test(test_filecache_vectors),
		cmocka_unit_test(test_redaction),
		cmocka_unit_test(test_connstr_checked_by_libpq),
		cmocka_unit_test(test_token_file_checked),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_empty_cgroup_name),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_directory_as_file),
		cmocka_unit_test(test_tib),
		cmocka_unit_test(test_apply_reload),
	};

	snprintf(token_path, sizeof(token_path), "%s/vmi-token-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	fd = mkstemp(token_path);
	if (fd < 0 || write(fd, "t0ken\n", 6) != 6)
		return 1;
	close(fd);
	snprintf(every_key, sizeof(every_key), every_key_fmt, token_path);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(token_path);
	return r;
}
