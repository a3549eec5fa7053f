/* SPDX-License-Identifier: Apache-2.0 */
/* Command line: one/two dashes, -flag=value and -flag value, Go booleans,
 * empty -cgroup, unknown flag / missing value errors, "--" and the first
 * non-flag stop parsing, overrides applied over a file (and again on
 * reload), and the supervised child's argv. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define ARGV(...) ((char *[]){ "vm-informant", __VA_ARGS__, NULL })

static int parse(struct cli *cli, char **argv, char *err, size_t errlen)
{
	int argc = 0;

	while (argv[argc])
		argc++;
	err[0] = '\0';
	return cli_parse(cli, argc, argv, err, errlen);
}

static void test_dashes_and_values(void **state)
{
	static const char *const forms[][4] = {
		{ "-cgroup", "pg", NULL }, { "--cgroup", "pg", NULL }, { "-cgroup=pg", NULL },
		{ "--cgroup=pg", NULL },
	};
	struct cli cli;
	char err[256];

	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		char *argv[5] = { "vm-informant", (char *)forms[i][0], (char *)forms[i][1], NULL };

		assert_int_equal(parse(&cli, argv, err, sizeof(err)), 0);
		assert_true(cli.cgroup_set);
		assert_string_equal(cli.cgroup, "pg");
	}
	assert_int_equal(parse(&cli, ARGV("-pgconnstr", "dbname=x user=y", "--config=/c",
					  "-check-config", "--version"), err, sizeof(err)), 0);
	assert_true(cli.pgconnstr_set);
	assert_string_equal(cli.pgconnstr, "dbname=x user=y");
	assert_string_equal(cli.config_path, "/c");
	assert_true(cli.check_config);
	assert_true(cli.version);
	assert_false(cli.cgroup_set);
	assert_false(cli.auto_restart_set);
	/* A value that looks like a flag is still the value. */
	assert_int_equal(parse(&cli, ARGV("-cgroup", "-auto-restart"), err, sizeof(err)), 0);
	assert_string_equal(cli.cgroup, "-auto-restart");
	assert_false(cli.auto_restart_set);
	/* The last occurrence wins. */
	assert_int_equal(parse(&cli, ARGV("-cgroup=a", "-cgroup=b"), err, sizeof(err)), 0);
	assert_string_equal(cli.cgroup, "b");
}

static void test_empty_cgroup_counts(void **state)
{
	struct cli cli;
	char err[256];

	assert_int_equal(parse(&cli, ARGV("-cgroup="), err, sizeof(err)), 0);
	assert_true(cli.cgroup_set);
	assert_string_equal(cli.cgroup, "");
	assert_int_equal(parse(&cli, ARGV("-cgroup", ""), err, sizeof(err)), 0);
	assert_true(cli.cgroup_set);
	assert_string_equal(cli.cgroup, "");
}

static void test_booleans(void **state)
{
	static const struct { const char *arg; int want; } cases[] = {
		{ "-auto-restart", 1 }, { "--auto-restart", 1 }, { "-auto-restart=true", 1 },
		{ "-auto-restart=1", 1 }, { "-auto-restart=t", 1 }, { "-auto-restart=T", 1 },
		{ "-auto-restart=TRUE", 1 }, { "-auto-restart=True", 1 },
		{ "-auto-restart=false", 0 }, { "-auto-restart=0", 0 }, { "-auto-restart=f", 0 },
		{ "-auto-restart=F", 0 }, { "-auto-restart=FALSE", 0 },
		{ "-auto-restart=False", 0 },
		{ "-auto-restart=yes", -1 }, { "-auto-restart=tRuE", -1 }, { "-auto-restart=", -1 },
	};
	struct cli cli;
	char err[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = parse(&cli, ARGV((char *)cases[i].arg), err, sizeof(err));

		if (cases[i].want < 0) {
			assert_int_equal(r, -EINVAL);
			assert_non_null(strstr(err, "invalid boolean value"));
			continue;
		}
		assert_int_equal(r, 0);
		assert_true(cli.auto_restart_set);
		assert_int_equal(cli.auto_restart, cases[i].want);
	}
	/* A boolean never takes the next argument: "true" ends the flags. */
	assert_int_equal(parse(&cli, ARGV("-auto-restart", "false", "-cgroup=x"), err,
			       sizeof(err)), 0);
	assert_true(cli.auto_restart);
	assert_false(cli.cgroup_set);
}

static void test_help_forms(void **state)
{
	static const char *const forms[] = { "-h", "--h", "-help", "--help" };
	struct cli cli;
	char err[256];

	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(parse(&cli, ARGV((char *)forms[i]), err, sizeof(err)), 0);
		assert_true(cli.help);
	}
}

static void test_errors(void **state)
{
	static const struct { const char *a, *b, *msg; } cases[] = {
		{ "-nope", NULL, "flag provided but not defined: -nope" },
		{ "--nope=1", NULL, "flag provided but not defined: -nope" },
		{ "-cgroup", NULL, "flag needs an argument: -cgroup" },
		{ "--pgconnstr", NULL, "flag needs an argument: -pgconnstr" },
		{ "--config", NULL, "flag needs an argument: -config" },
		{ "---cgroup", "x", "bad flag syntax: ---cgroup" },
		{ "-=x", NULL, "bad flag syntax: -=x" },
		{ "--config=", NULL, "--config needs a file name" },
	};
	struct cli cli;
	char err[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[] = { "vm-informant", (char *)cases[i].a, (char *)cases[i].b, NULL };

		assert_int_equal(parse(&cli, argv, err, sizeof(err)), -EINVAL);
		assert_string_equal(err, cases[i].msg);
	}
}

static void test_stops_at_non_flag(void **state)
{
	struct cli cli;
	char err[256];

	assert_int_equal(parse(&cli, ARGV("-cgroup=a", "--", "-nope", "-cgroup=b"), err,
			       sizeof(err)), 0);
	assert_string_equal(cli.cgroup, "a");
	assert_int_equal(parse(&cli, ARGV("-cgroup=a", "positional", "-nope"), err, sizeof(err)),
			 0);
	assert_string_equal(cli.cgroup, "a");
	assert_int_equal(cli.ignored_from, 2); /* main warns about "positional" */
	assert_int_equal(parse(&cli, ARGV("-", "-nope"), err, sizeof(err)), 0);
	assert_false(cli.cgroup_set);
	assert_int_equal(parse(&cli, ARGV("-cgroup=a"), err, sizeof(err)), 0);
	assert_int_equal(cli.ignored_from, 0);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
}

/* path (a mkstemp template) becomes a new file holding text. */
static void temp_file(char *path, const char *text)
{
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	close(fd);
	write_file(path, text);
}

static void test_overrides_over_file(void **state)
{
	char path[] = "/tmp/vmi-cli-XXXXXX", err[1024];
	struct config c;
	struct cli cli;

	temp_file(path, "[cgroup]\nenabled = false\nname = from-file\n"
		   "[filecache]\nenabled = false\nconnstr = dbname=file\n"
		   "[supervisor]\nauto_restart = true\n");
	/* Without flags the file decides. */
	assert_int_equal(parse(&cli, ARGV("--config", path), err, sizeof(err)), 0);
	assert_int_equal(cli_load_config(&cli, &c, err, sizeof(err)), 0);
	assert_false(c.cgroup.enabled);
	assert_string_equal(c.cgroup.name, "from-file");
	assert_false(c.filecache.enabled);
	assert_true(c.supervisor.auto_restart);
	/* Flags win over the file. */
	assert_int_equal(parse(&cli, ARGV("--config", path, "-cgroup", "from-flag",
					  "-pgconnstr=dbname=flag", "-auto-restart=false"),
			       err, sizeof(err)), 0);
	assert_int_equal(cli_load_config(&cli, &c, err, sizeof(err)), 0);
	assert_true(c.cgroup.enabled);
	assert_string_equal(c.cgroup.name, "from-flag");
	assert_true(c.filecache.enabled);
	assert_string_equal(c.filecache.connstr, "dbname=flag");
	assert_false(c.supervisor.auto_restart);
	/* A reload re-reads the changed file and applies the same flags again. */
	write_file(path, "[cgroup]\nname = changed\nmax_upscale_wait = 50ms\n");
	assert_int_equal(cli_reload(&c, err, sizeof(err), &cli), 0);
	assert_string_equal(c.cgroup.name, "from-flag");
	assert_int_equal(c.cgroup.max_upscale_wait_ms, 50);
	assert_string_equal(c.filecache.connstr, "dbname=flag");
	/* A broken file on reload is reported with file and line. */
	write_file(path, "[cgroup]\nmax_upscale_wait = 5s\n");
	assert_int_equal(cli_reload(&c, err, sizeof(err), &cli), -EINVAL);
	assert_non_null(strstr(err, ":2: [cgroup] max_upscale_wait"));
	/* A cross-field error still names the file. */
	write_file(path, "[filecache]\nresource_multiplier = 0.95\n");
	assert_int_equal(cli_reload(&c, err, sizeof(err), &cli), -EINVAL);
	assert_true(strncmp(err, path, strlen(path)) == 0);
	unlink(path);
	/* -pgconnstr "" counts as given, and an enabled cache needs a connstr. */
	assert_int_equal(parse(&cli, ARGV("-pgconnstr="), err, sizeof(err)), 0);
	assert_true(cli.pgconnstr_set);
	assert_int_equal(cli_load_config(&cli, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "needs a connstr"));
	/* A missing --config file is an error, not silently the defaults. */
	assert_int_equal(parse(&cli, ARGV("--config=/nonexistent/x.conf"), err, sizeof(err)), 0);
	assert_int_equal(cli_load_config(&cli, &c, err, sizeof(err)), -ENOENT);
}

/* The default file read at start and gone at a reload: an error, not the
 * built-in defaults (which would, among others, turn authentication off). */
static void test_reload_without_the_default_file(void **state)
{
	char path[] = "/tmp/vmi-cli-default-XXXXXX", err[1024];
	struct config c;
	struct cli cli;

	temp_file(path, "[server]\nmetrics = false\n");
	assert_int_equal(parse(&cli, ARGV("-cgroup", "x"), err, sizeof(err)), 0);
	cli.default_path = path;
	assert_string_equal(cli_config_path(&cli), path);
	assert_int_equal(cli_load_config(&cli, &c, err, sizeof(err)), 0);
	assert_false(c.server.metrics);
	cli_pin_config_path(&cli);
	assert_int_equal(cli_reload(&c, err, sizeof(err), &cli), 0);
	unlink(path);
	assert_int_equal(cli_reload(&c, err, sizeof(err), &cli), -ENOENT);
	assert_non_null(strstr(err, "cannot open config file"));
	/* Started without any file: the defaults, also on reload. */
	assert_int_equal(parse(&cli, ARGV("-cgroup", "x"), err, sizeof(err)), 0);
	cli.default_path = path;
	cli_pin_config_path(&cli);
	assert_null(cli_config_path(&cli));
	assert_int_equal(cli_reload(&c, err, sizeof(err), &cli), 0);
	assert_true(c.server.metrics);
}

static void test_child_argv(void **state)
{
	char *argv[] = { "vm-informant", "--auto-restart", "-cgroup", "-auto-restart",
			 "-auto-restart=true", "--config=/c", "--", "-auto-restart", NULL };
	char *out[9];
	struct cli cli;
	char err[256];

	assert_int_equal(cli_parse(&cli, 8, argv, err, sizeof(err)), 0);
	assert_int_equal(cli_child_argv(&cli, out, 9), 0);
	assert_string_equal(out[0], "vm-informant");
	assert_string_equal(out[1], "-cgroup");
	assert_string_equal(out[2], "-auto-restart"); /* the -cgroup value stays */
	assert_string_equal(out[3], "--config=/c");
	assert_string_equal(out[4], "--");
	assert_string_equal(out[5], "-auto-restart"); /* after "--": not a flag */
	assert_null(out[6]);
	assert_int_equal(cli_child_argv(&cli, out, 8), -ENOSPC);
}

static void test_usage(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	cli_usage(f);
	fclose(f);
	assert_non_null(strstr(buf, "Usage: vm-informant"));
	assert_non_null(strstr(buf, "-auto-restart"));
	assert_non_null(strstr(buf, "--check-config"));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dashes_and_values),
		cmocka_unit_test(test_empty_cgroup_counts),
		cmocka_unit_test(test_booleans),
		cmocka_unit_test(test_help_forms),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_stops_at_non_flag),
		cmocka_unit_test(test_overrides_over_file),
		cmocka_unit_test(test_reload_without_the_default_file),
		cmocka_unit_test(test_child_argv),
		cmocka_unit_test(test_usage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
