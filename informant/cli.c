/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.c — Go-style flag parsing, kept compatible with the original
 * informant's -cgroup / -pgconnstr / -auto-restart, plus our own flags.
 *
 * One tokenizer (next_flag) serves both the parser and cli_child_argv, so
 * the supervisor drops exactly the arguments the parser read as
 * -auto-restart (never, say, a -cgroup value that happens to look like it).
 */
#include "cli.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

enum flag_id { F_CONFIG, F_CHECK, F_VERSION, F_HELP, F_CGROUP, F_PGCONNSTR, F_AUTO_RESTART };

struct flag_def {
	const char *name;
	enum flag_id id;
	bool is_bool;
};

static const struct flag_def flag_defs[] = {
	{ "config", F_CONFIG, false },
	{ "check-config", F_CHECK, true },
	{ "version", F_VERSION, true },
	{ "help", F_HELP, true },
	{ "h", F_HELP, true },
	{ "cgroup", F_CGROUP, false },
	{ "pgconnstr", F_PGCONNSTR, false },
	{ "auto-restart", F_AUTO_RESTART, true },
};

struct flag_tok {
	const struct flag_def *def;
	const char *value; /* NULL for a bare boolean */
	int start, end;    /* argv[start..end) */
};

static const struct flag_def *find_flag(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(flag_defs) / sizeof(flag_defs[0]); i++) {
		if (strlen(flag_defs[i].name) == len && strncmp(flag_defs[i].name, name, len) == 0)
			return &flag_defs[i];
	}
	return NULL;
}

/*
 * Reads the flag at argv[*i].  Returns 1 with *t filled and *i past it,
 * 0 at the end of the flags (*i past a "--"), or -EINVAL with a message.
 */
static int next_flag(int argc, char **argv, int *i, struct flag_tok *t, char *err, size_t errlen)
{
	const char *arg, *name;
	size_t len;

	if (*i >= argc)
		return 0;
	arg = argv[*i];
	if (arg[0] != '-' || arg[1] == '\0')
		return 0;
	name = arg + (arg[1] == '-' ? 2 : 1);
	if (arg[1] == '-' && name[0] == '\0') {
		(*i)++;
		return 0;
	}
	if (name[0] == '-' || name[0] == '=') {
		snprintf(err, errlen, "bad flag syntax: %s", arg);
		return -EINVAL;
	}
	len = strcspn(name, "=");
	t->def = find_flag(name, len);
	if (!t->def) {
		snprintf(err, errlen, "flag provided but not defined: -%.*s", (int)len, name);
		return -EINVAL;
	}
	t->start = *i;
	t->value = NULL;
	if (name[len] == '=') {
		t->value = name + len + 1;
	} else if (!t->def->is_bool) {
		if (*i + 1 >= argc) {
			snprintf(err, errlen, "flag needs an argument: -%s", t->def->name);
			return -EINVAL;
		}
		t->value = argv[++*i];
	}
	t->end = ++*i;
	return 1;
}

/* Go's strconv.ParseBool: exactly these spellings. */
static int parse_go_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "1", "t", "T", "TRUE", "true", "True" };
	static const char *const no[] = { "0", "f", "F", "FALSE", "false", "False" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcmp(s, yes[i]) == 0 || strcmp(s, no[i]) == 0) {
			*out = strcmp(s, yes[i]) == 0;
			return 0;
		}
	}
	return -EINVAL;
}

static int apply_flag(struct cli *cli, const struct flag_tok *t, char *err, size_t errlen)
{
	bool b = true;

	if (t->def->is_bool && t->value && parse_go_bool(t->value, &b) < 0) {
		snprintf(err, errlen, "invalid boolean value \"%s\" for -%s: use true or false",
			 t->value, t->def->name);
		return -EINVAL;
	}
	switch (t->def->id) {
	case F_CONFIG:
		cli->config_path = t->value;
		break;
	case F_CHECK:
		cli->check_config = b;
		break;
	case F_VERSION:
		cli->version = b;
		break;
	case F_HELP:
		cli->help = b;
		break;
	case F_CGROUP:
		cli->cgroup_set = true;
		cli->cgroup = t->value;
		break;
	case F_PGCONNSTR:
		cli->pgconnstr_set = true;
		cli->pgconnstr = t->value;
		break;
	case F_AUTO_RESTART:
		cli->auto_restart_set = true;
		cli->auto_restart = b;
		break;
	}
	return 0;
}

int cli_parse(struct cli *cli, int argc, char **argv, char *err, size_t errlen)
{
	struct flag_tok t;
	int i = 1, r;

	memset(cli, 0, sizeof(*cli));
	cli->default_path = CONFIG_DEFAULT_PATH;
	cli->argc = argc;
	cli->argv = argv;
	while ((r = next_flag(argc, argv, &i, &t, err, errlen)) > 0) {
		r = apply_flag(cli, &t, err, errlen);
		if (r < 0)
			return r;
	}
	if (r == 0 && i < argc)
		cli->ignored_from = i; /* Go's rule: the rest are positional */
	if (r == 0 && cli->config_path && cli->config_path[0] == '\0') {
		snprintf(err, errlen, "--config needs a file name");
		return -EINVAL;
	}
	return r;
}

void cli_usage(FILE *out)
{
	fprintf(out,
		"Usage: vm-informant [--config FILE] [--check-config] [--version] [--help]\n"
		"                    [-cgroup NAME] [-pgconnstr CONNSTR] [-auto-restart]\n"
		"\n"
		"  --config FILE         config file (default: %s if it exists)\n"
		"  --check-config        validate the config, print the effective settings, exit\n"
		"  --version             print the version and exit\n"
		"  --help, -h            print this help and exit\n"
		"  -cgroup NAME          manage the cgroup NAME under [cgroup] root\n"
		"  -pgconnstr CONNSTR    size the Postgres file cache over this connection\n"
		"  -auto-restart[=BOOL]  run the daemon as a child, restarted when it exits\n"
		"\n"
		"Flags take one or two dashes, and -flag=value or -flag value.  Flags override\n"
		"the config file.  Exit status: 0 after a clean shutdown, 1 on a runtime\n"
		"failure, 2 on a usage or config error.\n",
		CONFIG_DEFAULT_PATH);
}

const char *cli_config_path(const struct cli *cli)
{
	if (cli->config_path)
		return cli->config_path;
	return access(cli->default_path, F_OK) == 0 ? cli->default_path : NULL;
}

void cli_pin_config_path(struct cli *cli)
{
	if (!cli->config_path)
		cli->config_path = cli_config_path(cli);
}

static int copy_override(char *dst, size_t cap, const char *value, const char *flag, char *err,
			 size_t errlen)
{
	size_t len = strlen(value);

	if (len >= cap) {
		snprintf(err, errlen, "-%s: value is %zu bytes long — at most %zu are allowed",
			 flag, len, cap - 1);
		return -EINVAL;
	}
	memcpy(dst, value, len + 1);
	return 0;
}

int cli_apply(const struct cli *cli, struct config *c, char *err, size_t errlen)
{
	int r;

	if (cli->cgroup_set) {
		r = copy_override(c->cgroup.name, sizeof(c->cgroup.name), cli->cgroup, "cgroup",
				  err, errlen);
		if (r < 0)
			return r;
		c->cgroup.enabled = true;
	}
	if (cli->pgconnstr_set) {
		r = copy_override(c->filecache.connstr, sizeof(c->filecache.connstr),
				  cli->pgconnstr, "pgconnstr", err, errlen);
		if (r < 0)
			return r;
		c->filecache.enabled = true;
	}
	if (cli->auto_restart_set)
		c->supervisor.auto_restart = cli->auto_restart;
	return 0;
}

int cli_load_config(const struct cli *cli, struct config *c, char *err, size_t errlen)
{
	const char *path = cli_config_path(cli);
	int r;

	config_defaults(c);
	if (path) {
		r = config_load_file(c, path, err, errlen);
		if (r < 0)
			return r;
	}
	r = cli_apply(cli, c, err, errlen);
	if (r < 0)
		return r;
	r = config_validate(c, err, errlen);
	if (r < 0 && path) {
		/* Cross-field errors have no line: still name the file. */
		char msg[512];

		snprintf(msg, sizeof(msg), "%s", err);
		snprintf(err, errlen, "%s: %s", path, msg);
	}
	return r;
}

int cli_reload(struct config *out, char *err, size_t errlen, void *arg)
{
	return cli_load_config(arg, out, err, errlen);
}

int cli_child_argv(const struct cli *cli, char **out, size_t outlen)
{
	struct flag_tok t;
	size_t n = 0;
	int i = 1, from = 1;
	char ignored[128]; /* the argv was parsed before: no error can occur */

	if (outlen < (size_t)cli->argc + 1 || cli->argc < 1)
		return -ENOSPC;
	out[n++] = cli->argv[0];
	while (next_flag(cli->argc, cli->argv, &i, &t, ignored, sizeof(ignored)) > 0) {
		for (int j = t.start; j < t.end && t.def->id != F_AUTO_RESTART; j++)
			out[n++] = cli->argv[j];
		from = i;
	}
	for (int j = from; j < cli->argc; j++)
		out[n++] = cli->argv[j];
	out[n] = NULL;
	return 0;
}
