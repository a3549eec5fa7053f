/* SPDX-License-Identifier: Apache-2.0 */
/*
 * predict.c — the predictive-upscale workload of the event driver.
 *
 * memory.current grows at a steady rate (one in-place rewrite per tick).
 * Like the kernel, reaching memory.high holds it there and counts a
 * memory.high event (`high` + 1 in memory.events) on every tick it stays
 * there; while cgroup.freeze reads 1 nothing grows.  The mini-agent
 * answers /try-upscale and, after a scheduling delay, "hot-plugs" memory
 * (MemTotal in the meminfo file) and sends PUT /upscale; the daemon then
 * raises the limits.  A round runs from one granted upscale to the next.
 * The figures: the share of rounds whose first /try-upscale came before
 * any memory.high event of that round, and the lead of that first ask —
 * how long memory.current, at the steady rate, still had to go to reach
 * memory.high when the ask arrived (0 after an event).
 *
 *   event-driver predict DIR DAEMON_ADDR MEMINFO [--vm-mib N] [--rate-mib-s N]
 *       [--grant-mib N] [--grant-delay-ms N] [--rounds N] [--sys-buffer-mib N]
 */
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "bench_util.h"
#include "driver.h"

#define MIB (1024u * 1024u)
#define TICK_MS 10u

struct predict {
	struct driver *d;
	const char *meminfo;
	uint64_t vm, rate, grant, grant_delay_ms, sys_buffer, rounds_wanted;
	uint64_t current, high;
	uint64_t rounds, early, late, asks, events;
	uint64_t lead_ms[256];   /* first ask of each round */
	size_t nlead;
	bool round_event, round_asked, granting;
	struct mh_watch tick, grant_timer;
};

static struct predict g_p;

static void write_meminfo(const struct predict *p)
{
	char text[256];
	uint64_t kb = (p->vm - p->sys_buffer) / 1024;

	snprintf(text, sizeof(text), "MemTotal:       %llu kB\nMemFree:        %llu kB\n"
		 "MemAvailable:   %llu kB\n", (unsigned long long)kb, (unsigned long long)kb / 2,
		 (unsigned long long)kb / 2);
	if (bench_write_file(p->meminfo, text) < 0)
		bench_die(p->meminfo);
}

static void arm(int fd, uint64_t ms, bool periodic)
{
	struct itimerspec its = { 0 };

	its.it_value.tv_sec = (time_t)(ms / 1000);
	its.it_value.tv_nsec = (long)(ms % 1000) * 1000000;
	if (ms == 0)
		its.it_value.tv_nsec = 1;
	if (periodic)
		its.it_interval = its.it_value;
	if (timerfd_settime(fd, 0, &its, NULL) < 0)
		bench_die("timerfd_settime");
}

static void on_tick(struct mh_watch *w, uint32_t events)
{
	struct predict *p = &g_p;
	uint64_t ticks, high;

	if (read(w->fd, &ticks, sizeof(ticks)) != (ssize_t)sizeof(ticks))
		return;
	if (driver_read_value(p->d, "memory.high", &high))
		p->high = high;
	if (!p->d->frozen)
		p->current += p->rate * TICK_MS / 1000 * ticks;
	if (p->current >= p->high) {
		p->current = p->high;
		p->round_event = true;
		p->events++;
		driver_bump_high(p->d);
	}
	driver_write_value(p->d, "memory.current", p->current);
}

static void on_upscale_reply(struct agent *a, int status, const char *body, size_t len)
{
	struct predict *p = &g_p;

	if (status != 200)
		fprintf(stderr, "predict: /upscale answered %d: %.*s\n", status, (int)len, body);
	p->granting = false;
	p->rounds++;
	p->round_event = p->round_asked = false;
}

static void on_grant_timer(struct mh_watch *w, uint32_t events)
{
	struct predict *p = &g_p;
	uint64_t ticks;

	if (read(w->fd, &ticks, sizeof(ticks)) != (ssize_t)sizeof(ticks))
		return;
	p->vm += p->grant;
	write_meminfo(p);   /* the memory is there before /upscale says so */
	if (agent_upscale(&p->d->agent, p->vm, on_upscale_reply) < 0) {
		fprintf(stderr, "predict: cannot send /upscale\n");
		p->granting = false;
	}
}

static void on_try(struct agent *a, uint64_t arrived_ns)
{
	struct predict *p = &g_p;

	p->asks++;
	if (!p->round_asked) {
		p->round_asked = true;
		if (p->round_event)
			p->late++;
		else
			p->early++;
		if (p->nlead < sizeof(p->lead_ms) / sizeof(p->lead_ms[0]))
			p->lead_ms[p->nlead++] =
				p->round_event || p->current >= p->high
					? 0
					: (p->high - p->current) * 1000 / p->rate;
	}
	if (!p->granting) {
		p->granting = true;
		arm(p->grant_timer.fd, p->grant_delay_ms, false);
	}
}

static void parse_options(struct predict *p, int argc, char **argv)
{
	for (int i = 5; i + 1 < argc; i += 2) {
		uint64_t v = bench_parse_u64(argv[i], argv[i + 1]);

		if (!strcmp(argv[i], "--vm-mib"))
			p->vm = v * MIB;
		else if (!strcmp(argv[i], "--rate-mib-s"))
			p->rate = v * MIB;
		else if (!strcmp(argv[i], "--grant-mib"))
			p->grant = v * MIB;
		else if (!strcmp(argv[i], "--grant-delay-ms"))
			p->grant_delay_ms = v;
		else if (!strcmp(argv[i], "--rounds"))
			p->rounds_wanted = v;
		else if (!strcmp(argv[i], "--sys-buffer-mib"))
			p->sys_buffer = v * MIB;
		else {
			fprintf(stderr, "predict: unknown option %s\n", argv[i]);
			_exit(2);
		}
	}
}

int driver_run_predict(struct driver *d, int argc, char **argv)
{
	struct predict *p = &g_p;
	uint64_t start, until;

	*p = (struct predict){ .d = d, .meminfo = argv[4], .vm = 1024 * MIB, .rate = 200 * MIB,
			       .grant = 512 * MIB, .grant_delay_ms = 100, .sys_buffer = 100 * MIB,
			       .rounds_wanted = 6 };
	parse_options(p, argc, argv);
	if (!driver_read_value(d, "memory.current", &p->current) ||
	    !driver_read_value(d, "memory.high", &p->high))
		bench_die("predict: memory.current/memory.high");
	write_meminfo(p);
	if (!driver_register(d, argv[3], on_try))
		return 1;
	p->tick.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	p->grant_timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (p->tick.fd < 0 || p->grant_timer.fd < 0)
		bench_die("timerfd_create");
	p->tick.on_ready = on_tick;
	p->grant_timer.on_ready = on_grant_timer;
	mh_watch_add(d->ep, &p->tick, EPOLLIN);
	mh_watch_add(d->ep, &p->grant_timer, EPOLLIN);
	arm(p->tick.fd, TICK_MS, true);
	start = bench_now_ns();
	/* Bound: each round needs grant/rate seconds of growth; allow 3x + 5 s. */
	until = start + (p->rounds_wanted * (p->grant / MIB) * 3000 / (p->rate / MIB) + 5000) *
		1000000u;
	while (p->rounds < p->rounds_wanted && bench_now_ns() < until)
		mh_dispatch(d->ep, 50);
	printf("rounds=%llu early=%llu late=%llu asks=%llu high_events=%llu freezes=%llu "
	       "elapsed_s=%.1f\n", (unsigned long long)p->rounds, (unsigned long long)p->early,
	       (unsigned long long)p->late, (unsigned long long)p->asks,
	       (unsigned long long)p->events, (unsigned long long)(d->closes + 1) / 2,
	       (double)(bench_now_ns() - start) / 1e9);
	printf("predicted_share_pct=%.1f\n",
	       p->early + p->late ? 100.0 * (double)p->early / (double)(p->early + p->late) : 0);
	{
		size_t ahead = 0;

		printf("lead_ms=");
		for (size_t i = 0; i < p->nlead; i++) {
			printf("%s%llu", i ? "," : "", (unsigned long long)p->lead_ms[i]);
			ahead += p->lead_ms[i] >= 1000;
		}
		printf("\nlead_ge_1s_pct=%.1f\n",
		       p->nlead ? 100.0 * (double)ahead / (double)p->nlead : 0);
	}
	return p->rounds < p->rounds_wanted ? 3 : 0;
}
