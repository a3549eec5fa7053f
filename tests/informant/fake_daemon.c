/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fake_daemon.c — test double for daemon_run(), linked into the test
 * build of main.c (vmi-main-test) only, so main, CLI, config and
 * supervisor can be driven end to end without the real daemon.
 *
 * Prints "run <settings>" on stdout; with VMI_FAKE_DAEMON_EXIT=N returns
 * N at once; otherwise prints "reload <settings>" (or "reload-error MSG")
 * on SIGHUP and "stop" on SIGTERM/SIGINT, then returns 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "daemon.h"

static void print_settings(const char *what, const struct config *c)
{
	printf("%s cgroup.enabled=%d cgroup.name=%s filecache.enabled=%d connstr=%s "
	       "auto_restart=%d max_upscale_wait_ms=%llu\n",
	       what, c->cgroup.enabled, c->cgroup.name, c->filecache.enabled, c->filecache.connstr,
	       c->supervisor.auto_restart, (unsigned long long)c->cgroup.max_upscale_wait_ms);
	fflush(stdout);
}

int daemon_run(const struct config *cfg, daemon_reload_fn reload, void *reload_arg)
{
	const char *exit_env = getenv("VMI_FAKE_DAEMON_EXIT");
	sigset_t mask;
	int sig;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	print_settings("run", cfg);
	if (exit_env)
		return atoi(exit_env);
	while (sigwait(&mask, &sig) == 0) {
		struct config c;
		char err[1024];

		if (sig != SIGHUP)
			break;
		if (reload(&c, err, sizeof(err), reload_arg) < 0) {
			printf("reload-error %s\n", err);
			fflush(stdout);
		} else {
			print_settings("reload", &c);
		}
	}
	printf("stop\n");
	fflush(stdout);
	return 0;
}
