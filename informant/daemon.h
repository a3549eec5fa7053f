/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon.h — the informant proper: builds the loop, the HTTP server, the
 * agent set and the memory policy from a config, runs until SIGTERM/SIGINT,
 * reloads on SIGHUP, and always leaves the cgroup thawed.
 */
#ifndef VMI_DAEMON_H
#define VMI_DAEMON_H

#include <stddef.h>

#include "config.h"

/* Re-read the configuration for SIGHUP (file + the same CLI overrides).
 * Returns 0 or -errno with a message in err. */
typedef int (*daemon_reload_fn)(struct config *out, char *err, size_t errlen, void *arg);

/* Runs until SIGTERM/SIGINT.  Returns the process exit status:
 * 0 after a clean shutdown, 1 for a runtime failure (port in use,
 * unusable cgroup, …) after logging one clear line. */
int daemon_run(const struct config *cfg, daemon_reload_fn reload, void *reload_arg);

#endif
