/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c — command line, configuration, then the supervisor or the daemon.
 *
 * Exit status (README, "Command line"): 0 after a clean shutdown, 1 for a runtime
 * failure, 2 for a usage or config error (one line on stderr naming the
 * file, line and key).
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "config.h"
#include "daemon.h"
#include "log.h"
#include "supervisor.h"
#include "vmi_build.h"

#define EXIT_USAGE 2

static int run_supervisor(const struct cli *cli, const struct config *cfg)
{
	char **child_argv = calloc((size_t)cli->argc + 1, sizeof(*child_argv));
	struct supervisor_opts opts = {
		.exe = "/proc/self/exe",
		.min_restart_interval_ms = cfg->supervisor.min_restart_interval_ms,
		.kill_grace_ms = SUPERVISOR_KILL_GRACE_MS,
		.cgroup_root = cfg->cgroup.enabled ? cfg->cgroup.root : NULL,
		.cgroup_name = cfg->cgroup.name,
	};
	int status;

	if (!child_argv || cli_child_argv(cli, child_argv, (size_t)cli->argc + 1) < 0) {
		log_event(LOG_ERROR, "out of memory", LF_END);
		free(child_argv);
		return EXIT_FAILURE;
	}
	opts.argv = child_argv;
	status = supervisor_run(&opts);
	free(child_argv);
	return status;
}

int main(int argc, char **argv)
{
	struct cli cli;
	struct config cfg;
	char err[2048];
	const char *path;
	bool supervised = supervisor_is_child();

	if (cli_parse(&cli, argc, argv, err, sizeof(err)) < 0) {
		fprintf(stderr, "%svm-informant: %s\n", log_priority_prefix(LOG_ERROR), err);
		cli_usage(stderr);
		return EXIT_USAGE;
	}
	if (cli.help) {
		cli_usage(stdout);
		return EXIT_SUCCESS;
	}
	if (cli.ignored_from)
		fprintf(stderr, "%svm-informant: warning: ignoring \"%s\" and everything after it "
			"(flags are not read past the first argument that is not a flag; "
			"write booleans as -flag=false)\n", log_priority_prefix(LOG_WARN),
			argv[cli.ignored_from]);
	if (cli.version) {
		printf("vm-informant %s\n", VMI_VERSION);
		return EXIT_SUCCESS;
	}
	if (cli_load_config(&cli, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%svm-informant: %s\n", log_priority_prefix(LOG_ERROR), err);
		return EXIT_USAGE;
	}
	cli_pin_config_path(&cli);
	if (cli.check_config) {
		config_print(&cfg, stdout);
		return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
	}
	/* Our own children must not inherit the marker. */
	unsetenv(SUPERVISOR_ENV);
	log_setup(cfg.log.level, cfg.log.format);
	path = cli_config_path(&cli);
	log_event(LOG_INFO, "vm-informant starting", LF_STR("version", VMI_VERSION),
		  LF_STR("config", path ? path : "(built-in defaults)"),
		  LF_BOOL("supervisor", cfg.supervisor.auto_restart && !supervised),
		  LF_BOOL("supervised", supervised), LF_END);
	if (cfg.supervisor.auto_restart && !supervised)
		return run_supervisor(&cli, &cfg);
	return daemon_run(&cfg, cli_reload, &cli);
}
