/* SPDX-License-Identifier: Apache-2.0 */
/*
 * supervisor.h — auto-restart mode: the parent runs the daemon as a child
 * process, thaws the cgroup whenever the child exits, and restarts it at
 * most once per min_restart_interval, backing off exponentially (up to
 * 60 s) while the child keeps dying young.  SIGTERM/SIGINT are forwarded
 * (SIGKILL after a grace period), SIGHUP too.
 */
#ifndef VMI_SUPERVISOR_H
#define VMI_SUPERVISOR_H

#include <stdbool.h>
#include <stdint.h>

/* Set to "1" in the child's environment: the child runs the daemon
 * itself even when its config says auto_restart = true. */
#define SUPERVISOR_ENV "VMI_SUPERVISED"
#define SUPERVISOR_KILL_GRACE_MS 10000u
#define SUPERVISOR_BACKOFF_CAP_MS 60000u
/* A child that ran shorter than this (or than min_restart_interval) died
 * young; repeated young deaths lengthen the wait between restarts. */
#define SUPERVISOR_QUICK_RUN_MS 10000u
/* Back-off base when min_restart_interval is shorter (e.g. 0 in tests). */
#define SUPERVISOR_BACKOFF_MIN_MS 100u

struct supervisor_opts {
	const char *exe;             /* program to run, e.g. "/proc/self/exe" */
	char *const *argv;           /* its argv, NULL-terminated */
	uint64_t min_restart_interval_ms; /* between two child starts */
	uint64_t kill_grace_ms;      /* SIGTERM to SIGKILL */
	const char *cgroup_root;     /* thawed after every child exit; NULL: none */
	const char *cgroup_name;
};

/* Pure restart policy: consecutive young deaths so far. */
struct restart_policy {
	uint64_t min_interval_ms;
	unsigned quick_failures;
};

/* The child started at started_ms and exited at exited_ms (monotonic):
 * updates the count of young deaths and returns how long to wait from
 * exited_ms before the next start. */
uint64_t supervisor_restart_delay(struct restart_policy *p, uint64_t started_ms,
				  uint64_t exited_ms);

/* True in a child started by the supervisor (SUPERVISOR_ENV set). */
bool supervisor_is_child(void);

/* Runs until SIGTERM/SIGINT; returns the exit status (0 after a clean
 * stop, 1 if the supervisor itself cannot run). */
int supervisor_run(const struct supervisor_opts *o);

#endif
