/* SPDX-License-Identifier: Apache-2.0 */
/*
 * notify.c — sd_notify(3) messages and the watchdog ping.
 *
 * The ping is a periodic timer of the one event loop, so it is sent only
 * while the loop turns: a callback that never returns, a loop blocked in
 * a system call or a stopped process stops the pings, and systemd kills
 * and restarts the daemon after WatchdogSec= (ExecStopPost= then thaws the
 * cgroup).  Half the period, as sd_watchdog_enabled(3) advises, leaves a
 * whole half for a late tick.
 *
 * libsystemd is loaded with dlopen(3) only when NOTIFY_SOCKET is set: it
 * brings libgcrypt, liblzma, liblz4, libzstd and libcap along (about
 * 0.7 MiB of proportional memory), which a daemon outside systemd (an init
 * with respawn, the NeonVM image) would carry for nothing.
 */
#include "notify.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>

#include "log.h"

#define SYSTEMD_SONAME "libsystemd.so.0"

/* The two functions of libsystemd we call, with its own prototypes. */
static struct {
	__typeof__(sd_notify) *notify;
	__typeof__(sd_watchdog_enabled) *watchdog_enabled;
} sd;

struct notify {
	struct loop_timer *ping;
	uint64_t watchdog_usec;
	bool ping_failed_logged;
};

static void send_state(const char *what, const char *state)
{
	int r = sd.notify(0, state);

	if (r < 0)
		log_event(LOG_WARN, "cannot notify the service manager", LF_STR("message", what),
			  LF_ERR(r), LF_END);
}

static void ping(void *arg)
{
	struct notify *n = arg;
	int r = sd.notify(0, "WATCHDOG=1");

	/* Once: a watchdog that cannot be fed is logged, not repeated every tick. */
	if (r < 0 && !n->ping_failed_logged) {
		n->ping_failed_logged = true;
		log_event(LOG_ERROR, "cannot send the watchdog ping", LF_ERR(r), LF_END);
	}
}

static int load_libsystemd(void)
{
	void *lib = dlopen(SYSTEMD_SONAME, RTLD_NOW | RTLD_LOCAL);

	if (lib) {
		sd.notify = (__typeof__(sd.notify))dlsym(lib, "sd_notify");
		sd.watchdog_enabled =
			(__typeof__(sd.watchdog_enabled))dlsym(lib, "sd_watchdog_enabled");
	}
	if (!lib || !sd.notify || !sd.watchdog_enabled) {
		log_event(LOG_ERROR, "NOTIFY_SOCKET is set but libsystemd cannot be loaded",
			  LF_STR("library", SYSTEMD_SONAME), LF_STR("error", dlerror()),
			  LF_STR("hint", "install libsystemd0, or unset NOTIFY_SOCKET"), LF_END);
		return -ENOENT;
	}
	return 0;
}

int notify_new(struct loop *loop, struct notify **out)
{
	const char *socket = getenv("NOTIFY_SOCKET");
	struct notify *n;
	uint64_t usec = 0;
	int r;

	*out = NULL;
	if (!socket || !socket[0])
		return 0;
	r = load_libsystemd();
	if (r < 0)
		return r;
	n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	r = sd.watchdog_enabled(0, &usec);
	if (r < 0)
		log_event(LOG_WARN, "ignoring WATCHDOG_USEC", LF_ERR(r), LF_END);
	if (r > 0 && usec > 0) {
		n->watchdog_usec = usec;
		r = loop_timer_new(loop, ping, n, &n->ping);
		if (r == 0)
			r = loop_timer_arm_ns(n->ping, usec * 1000 / 2, usec * 1000 / 2);
		if (r < 0) {
			notify_free(n);
			return r;
		}
	}
	*out = n;
	return 0;
}

void notify_free(struct notify *n)
{
	if (!n)
		return;
	loop_timer_free(n->ping);
	free(n);
}

uint64_t notify_watchdog_usec(const struct notify *n)
{
	return n ? n->watchdog_usec : 0;
}

void notify_ready(struct notify *n, const char *status)
{
	char msg[256];

	if (!n)
		return;
	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s", status);
	send_state("READY=1", msg);
}

void notify_reloading(struct notify *n)
{
	char msg[128];

	if (!n)
		return;
	/* MONOTONIC_USEC lets a manager with Type=notify-reload (systemd 253
	 * and later) tell this reload from an earlier one; older ones ignore it. */
	snprintf(msg, sizeof(msg), "RELOADING=1\nSTATUS=reloading the configuration\n"
		 "MONOTONIC_USEC=%llu", (unsigned long long)(loop_now_ns() / 1000));
	send_state("RELOADING=1", msg);
}

void notify_stopping(struct notify *n)
{
	if (n)
		send_state("STOPPING=1", "STOPPING=1\nSTATUS=shutting down");
}
