/* SPDX-License-Identifier: Apache-2.0 */
/*
 * event_driver.c — times the reaction to memory.high events.
 *
 * Per event: t0, one pwrite of memory.events with `high` + 1, then wait
 * (inotify on cgroup.freeze) until "1" is read from it (t1) and "0" again
 * (t2).  With --agent, the driver's mini-agent is registered with the
 * daemon first; it timestamps the /try-upscale (t_try), answers, and at
 * once sends PUT /upscale, which ends the freeze.  The next event starts
 * when the previous one is over.  The same driver measures the daemon and
 * floor-freeze, so the ratio compares the programs, not the measurement.
 *
 *   event-driver freeze DIR EVENTS
 *   event-driver agent DIR EVENTS DAEMON_ADDR VM_BYTES
 *   event-driver serve DIR DAEMON_ADDR SECONDS   (registered agent, prints its ID)
 *   event-driver predict DIR DAEMON_ADDR MEMINFO [options]   (see predict.c)
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "bench_util.h"
#include "driver.h"

#define EVENT_TIMEOUT_NS (500u * 1000000u)

/*
 * cgroup.freeze is rewritten with open(O_TRUNC)/write/close by the daemon
 * and the floor alike.  The first modification after an event is the
 * freeze starting; each writer's close is one IN_CLOSE_WRITE, and those
 * are never merged (IN_MODIFY records sit between them), so counting them
 * gives freeze and thaw even when both land within one wake-up.
 */
static void on_freeze_file(struct mh_watch *w, uint32_t events)
{
	struct driver *d = (struct driver *)((char *)w - offsetof(struct driver, freeze_watch));
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	uint64_t now = bench_now_ns();
	bool modified = false;
	ssize_t n;

	while ((n = read(w->fd, buf, sizeof(buf))) > 0) {
		for (size_t off = 0; off + sizeof(struct inotify_event) <= (size_t)n;) {
			struct inotify_event ev;

			memcpy(&ev, buf + off, sizeof(ev));
			modified |= (ev.mask & (IN_MODIFY | IN_CLOSE_WRITE)) != 0;
			if (ev.mask & IN_CLOSE_WRITE) {
				d->closes++;
				d->close_ns = now;
			}
			off += sizeof(ev) + ev.len;
		}
	}
	if (modified && d->await_freeze) {
		d->await_freeze = false;
		d->freeze_ns = now;
	}
	d->frozen = d->closes % 2 == 1;
}

static void events_text(uint64_t high, char *buf, size_t len)
{
	snprintf(buf, len, "low 0\nhigh %llu\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
		 (unsigned long long)high);
}

void driver_init(struct driver *d, const char *dir)
{
	char path[2100], text[256];
	int in;

	memset(d, 0, sizeof(*d));
	snprintf(d->dir, sizeof(d->dir), "%s", dir);
	d->ep = epoll_create1(EPOLL_CLOEXEC);
	snprintf(path, sizeof(path), "%s/memory.events", dir);
	d->events_fd = open(path, O_WRONLY | O_CLOEXEC);
	if (d->ep < 0 || d->events_fd < 0)
		bench_die(path);
	/* Keep the daemon's last-seen counter: never go backwards (a reset). */
	if (bench_read_file(path, text, sizeof(text)) > 0 && strstr(text, "high "))
		d->high_count = strtoull(strstr(text, "high ") + 5, NULL, 10);
	in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	snprintf(path, sizeof(path), "%s/cgroup.freeze", dir);
	if (in < 0 || inotify_add_watch(in, path, IN_MODIFY | IN_CLOSE_WRITE) < 0)
		bench_die(path);
	d->freeze_watch.fd = in;
	d->freeze_watch.on_ready = on_freeze_file;
	mh_watch_add(d->ep, &d->freeze_watch, EPOLLIN);
}

void driver_bump_high(struct driver *d)
{
	char text[256];

	events_text(++d->high_count, text, sizeof(text));
	/* The text only ever grows, so an in-place pwrite leaves no stale tail. */
	if (pwrite(d->events_fd, text, strlen(text), 0) != (ssize_t)strlen(text))
		bench_die("pwrite memory.events");
}

void driver_write_value(struct driver *d, const char *file, uint64_t value)
{
	char path[2100], text[32];
	int fd, n;

	snprintf(path, sizeof(path), "%s/%s", d->dir, file);
	n = snprintf(text, sizeof(text), "%llu\n", (unsigned long long)value);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	/* Write in place, then cut a longer old value: a reader sees a number. */
	if (fd < 0 || pwrite(fd, text, (size_t)n, 0) != n || ftruncate(fd, n) < 0)
		bench_die(path);
	close(fd);
}

bool driver_read_value(struct driver *d, const char *file, uint64_t *value)
{
	char path[2100], text[64], *end;

	snprintf(path, sizeof(path), "%s/%s", d->dir, file);
	if (bench_read_file(path, text, sizeof(text)) <= 0)
		return false;
	errno = 0;
	*value = strtoull(text, &end, 10);
	return end != text && !errno;
}

static void on_register_reply(struct agent *a, int status, const char *body, size_t len)
{
	if (status != 200)
		fprintf(stderr, "event-driver: /register answered %d: %.*s\n", status, (int)len,
			body);
}

bool driver_register(struct driver *d, const char *daemon_addr, agent_try_fn on_try)
{
	uint64_t until = bench_now_ns() + 3000000000u;
	int r;

	d->use_agent = true;
	agent_init(&d->agent, d->ep, daemon_addr, on_try);
	d->agent.user = d;
	r = agent_register(&d->agent, on_register_reply);
	if (r < 0) {
		fprintf(stderr, "event-driver: /register to %s: %s\n", daemon_addr, strerror(-r));
		return false;
	}
	while (!d->agent.resumed && bench_now_ns() < until)
		mh_dispatch(d->ep, 10);
	if (!d->agent.resumed)
		fprintf(stderr, "event-driver: no /resume from the daemon within 3 s\n");
	return d->agent.resumed;
}

/* ---- freeze and agent modes ---- */

static struct {
	uint64_t vm_bytes, try_ns;
	bool got_try, upscale_done;
	uint64_t upscale_failures;
} g_ev;

static void on_upscale_reply(struct agent *a, int status, const char *body, size_t len)
{
	g_ev.upscale_done = true;
	if (status != 200 && g_ev.upscale_failures++ < 3)
		fprintf(stderr, "event-driver: /upscale answered %d: %.*s\n", status, (int)len,
			body);
}

static void on_try(struct agent *a, uint64_t arrived_ns)
{
	if (g_ev.got_try)
		return;
	g_ev.got_try = true;
	g_ev.try_ns = arrived_ns;
	if (agent_upscale(a, g_ev.vm_bytes, on_upscale_reply) < 0)
		g_ev.upscale_done = true;
}

/* Over when the freeze and the thaw were both written (two closes). */
static bool event_over(const struct driver *d, uint64_t closes0)
{
	return d->closes >= closes0 + 2 && (!d->use_agent || (g_ev.got_try && g_ev.upscale_done));
}

/*
 * Like the kernel, an event comes with usage at memory.high: the daemon
 * does not freeze for an event while usage plus memory_high_buffer is
 * below memory.high (that is page cache, README "Page cache, PSI and
 * reclaim").  So memory.current is set to memory.high (as the daemon wrote
 * it; the floor's "max" leaves it) before the clock starts, and back to its
 * base once the event is over, so that the prediction stays quiet between
 * events.  Ten events in a row without a freeze end the run: the daemon is
 * not reacting, and waiting out thousands of timeouts tells nothing more.
 */
static int run_events(struct driver *d, uint64_t count)
{
	struct bench_samples freeze = { 0 }, frozen = { 0 }, try_lat = { 0 };
	uint64_t missed = 0, missed_in_row = 0, start = bench_now_ns(), base = 0, high, i;
	bool have_base = driver_read_value(d, "memory.current", &base);

	for (i = 0; i < count && missed_in_row < 10; i++) {
		uint64_t t0, until, closes0 = d->closes;
		bool at_high = have_base && driver_read_value(d, "memory.high", &high);

		if (at_high)
			driver_write_value(d, "memory.current", high);
		g_ev.got_try = g_ev.upscale_done = false;
		d->await_freeze = true;
		t0 = bench_now_ns();
		driver_bump_high(d);
		until = t0 + EVENT_TIMEOUT_NS;
		while (!event_over(d, closes0) && bench_now_ns() < until)
			mh_dispatch(d->ep, 5);
		if (at_high)
			driver_write_value(d, "memory.current", base);
		if (!event_over(d, closes0)) {
			missed++;
			missed_in_row++;
			/* Let a late reply land before the next event starts. */
			while ((d->agent.client_busy || d->frozen) &&
			       bench_now_ns() < until + EVENT_TIMEOUT_NS)
				mh_dispatch(d->ep, 5);
			continue;
		}
		missed_in_row = 0;
		bench_samples_add(&freeze, d->freeze_ns - t0);
		bench_samples_add(&frozen, d->close_ns - d->freeze_ns);
		if (d->use_agent)
			bench_samples_add(&try_lat, g_ev.try_ns - t0);
	}
	if (missed_in_row >= 10)
		fprintf(stderr, "event-driver: %llu events in a row without a freeze and a thaw "
			"in %u ms each: stopped\n", (unsigned long long)missed_in_row,
			EVENT_TIMEOUT_NS / 1000000u);
	printf("events=%llu missed=%llu elapsed_s=%.2f upscale_failures=%llu\n",
	       (unsigned long long)i, (unsigned long long)missed,
	       (double)(bench_now_ns() - start) / 1e9, (unsigned long long)g_ev.upscale_failures);
	bench_samples_report(&freeze, "freeze");
	bench_samples_report(&frozen, "frozen");
	if (d->use_agent)
		bench_samples_report(&try_lat, "try");
	return missed > count / 100 || missed_in_row >= 10 ? 3 : 0;
}

/* Keeps a registered agent alive for the health-check benchmark. */
static int serve(struct driver *d, const char *daemon_addr, uint64_t seconds)
{
	uint64_t until;

	if (!driver_register(d, daemon_addr, NULL))
		return 1;
	printf("agent_id=%s\n", d->agent.id);
	fflush(stdout);
	until = bench_now_ns() + seconds * 1000000000u;
	while (bench_now_ns() < until)
		mh_dispatch(d->ep, 100);
	return 0;
}

int main(int argc, char **argv)
{
	static struct driver d;

	if (argc >= 4 && !strcmp(argv[1], "freeze")) {
		driver_init(&d, argv[2]);
		return run_events(&d, bench_parse_u64("EVENTS", argv[3]));
	}
	if (argc == 6 && !strcmp(argv[1], "agent")) {
		driver_init(&d, argv[2]);
		g_ev.vm_bytes = bench_parse_u64("VM_BYTES", argv[5]);
		if (!driver_register(&d, argv[4], on_try))
			return 1;
		return run_events(&d, bench_parse_u64("EVENTS", argv[3]));
	}
	if (argc == 5 && !strcmp(argv[1], "serve")) {
		driver_init(&d, argv[2]);
		return serve(&d, argv[3], bench_parse_u64("SECONDS", argv[4]));
	}
	if (argc >= 5 && !strcmp(argv[1], "predict")) {
		driver_init(&d, argv[2]);
		return driver_run_predict(&d, argc, argv);
	}
	fprintf(stderr, "usage: event-driver freeze DIR EVENTS\n"
		"       event-driver agent DIR EVENTS DAEMON_ADDR VM_BYTES\n"
		"       event-driver serve DIR DAEMON_ADDR SECONDS\n"
		"       event-driver predict DIR DAEMON_ADDR MEMINFO [--vm-mib N] [--rate-mib-s N]\n"
		"                    [--grant-mib N] [--grant-delay-ms N] [--rounds N]\n");
	return 2;
}
