/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h — the command line (Go flag rules, README "Command line") and how its
 * overrides combine with the config file.
 *
 * Flags take one or two dashes, "-name=value" or "-name value" (strings),
 * "-name" or "-name=BOOL" (booleans).  Parsing stops at the first
 * non-flag or after "--"; what follows is ignored.  The overrides are kept
 * apart from the config so a SIGHUP reload re-reads the file and applies
 * them again (cli_reload).
 */
#ifndef VMI_CLI_H
#define VMI_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"

struct cli {
	const char *config_path;  /* --config FILE; NULL: default path if it exists */
	bool check_config;        /* --check-config */
	bool version;             /* --version */
	bool help;                /* --help, -h */
	bool cgroup_set;          /* -cgroup given, even as "" */
	const char *cgroup;
	bool pgconnstr_set;       /* -pgconnstr given, even as "" */
	const char *pgconnstr;
	bool auto_restart_set;    /* -auto-restart[=BOOL] given */
	bool auto_restart;
	int ignored_from;         /* argv index where flag parsing stopped (0 = none) */
	const char *default_path; /* CONFIG_DEFAULT_PATH (tests point it elsewhere) */
	int argc;                 /* the parsed argv, for the supervisor's child */
	char **argv;
};

/* 0, or -EINVAL with a message ("flag provided but not defined: -x", …)
 * in err; the caller prints it and the usage and exits 2.  Strings in
 * *cli point into argv. */
int cli_parse(struct cli *cli, int argc, char **argv, char *err, size_t errlen);

void cli_usage(FILE *out);

/* The config file in effect: --config (or the pinned path), else the
 * default path if it exists, else NULL (built-in defaults). */
const char *cli_config_path(const struct cli *cli);

/* Applies the flag overrides to c: -cgroup sets cgroup.enabled and name,
 * -pgconnstr sets filecache.enabled and connstr, -auto-restart sets
 * supervisor.auto_restart.  0 or -EINVAL (value too long). */
int cli_apply(const struct cli *cli, struct config *c, char *err, size_t errlen);

/* Defaults, then the config file, then the overrides, then
 * config_validate().  0 or -errno with "FILE:LINE: …" in err. */
int cli_load_config(const struct cli *cli, struct config *c, char *err, size_t errlen);

/* After the first load: reloads read the same file, so a default file
 * that has gone is an error (not a silent return to the built-in
 * defaults, which would turn authentication off). */
void cli_pin_config_path(struct cli *cli);

/* cli_load_config() shaped as a daemon_reload_fn; arg is the struct cli. */
int cli_reload(struct config *out, char *err, size_t errlen, void *arg);

/* The argv a supervised child gets: the parsed argv without any
 * -auto-restart flag, NULL-terminated.  out needs cli->argc + 1 slots.
 * 0 or -ENOSPC. */
int cli_child_argv(const struct cli *cli, char **out, size_t outlen);

#endif
