/* SPDX-License-Identifier: Apache-2.0 */
/*
 * notify.h — telling the service manager how the daemon is doing
 * (sd_notify(3), libsystemd): READY=1 once it serves and the limits are
 * written, RELOADING=1 / READY=1 around a reload, STOPPING=1 at shutdown,
 * and WATCHDOG=1 from the event loop when the unit has WatchdogSec=.
 *
 * Without NOTIFY_SOCKET in the environment every call is a no-op: no
 * socket, no timer, nothing in the log.
 */
#ifndef VMI_NOTIFY_H
#define VMI_NOTIFY_H

#include <stdint.h>

#include "loop.h"

struct notify;

/* Reads NOTIFY_SOCKET and WATCHDOG_USEC (sd_watchdog_enabled) and, with a
 * watchdog, arms a periodic loop timer that pings at half its period.
 * *out is NULL when nobody listens.  0 or -errno. */
int notify_new(struct loop *loop, struct notify **out);
void notify_free(struct notify *n);

/* The watchdog period in microseconds (0 = none), for the start-up log. */
uint64_t notify_watchdog_usec(const struct notify *n);

/* Each sends one message with a human-readable STATUS= line; failures are
 * logged (rate-free: they happen at most once per state change). */
void notify_ready(struct notify *n, const char *status);
void notify_reloading(struct notify *n);
void notify_stopping(struct notify *n);

#endif
