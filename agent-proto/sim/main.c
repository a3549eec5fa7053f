/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c — agent-sim: options, the scheduler thread (registration, health
 * checks, delayed and periodic scaling, --duration) and signal handling.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim.h"

#define GIB (1024ull * 1024 * 1024)
#define MS_NS 1000000ull

static const char usage[] =
	"Usage: agent-sim [OPTION]...\n"
	"Simulate an autoscaler-agent talking to a vm-informant.  With the monitor\n"
	"protocol (current agents, v0.18.0 on) it dials ws://INFORMANT/monitor, sends\n"
	"its version range, health-checks, sends UpscaleNotification and\n"
	"DownscaleRequest, and upscales after an UpscaleRequest.  With the informant\n"
	"protocol (v1.0..v2.0, older agents) it starts suspended, registers,\n"
	"health-checks, answers /id /suspend /resume /try-upscale like the reference\n"
	"agent, and sends /upscale and /downscale.\n"
	"One line per event on stdout; the first is \"listening addr=HOST:PORT ...\".\n"
	"\n"
	"  --protocol P            monitor (default) or informant\n"
	"  --informant HOST:PORT   informant to talk to (default 127.0.0.1:10301)\n"
	"  --listen HOST:PORT      where to serve the agent API (default 127.0.0.1:0,\n"
	"                          an ephemeral port; the bound address is printed)\n"
	"  --advertise HOST:PORT   agentServeAddr sent in /register (default: bound address)\n"
	"  --id UUID               agent ID, informant protocol (default random; a new\n"
	"                          random one after a health check answered 404 or a\n"
	"                          scaling request 400)\n"
	"  --memory Q              initial VM memory (default --meminfo's MemTotal, else 1Gi)\n"
	"  --max-memory Q          largest size an upscale reaches (default 8Gi)\n"
	"  --min-memory Q          smallest size a periodic downscale proposes (default 1Gi)\n"
	"  --step Q                upscale/downscale step (default 1Gi)\n"
	"  --cpu Q                 cpu sent in /upscale and /downscale (default 1)\n"
	"  --meminfo FILE          /proc/meminfo-format file to grow before each /upscale\n"
	"                          and shrink after each accepted /downscale (MemTotal,\n"
	"                          MemFree, MemAvailable; rewritten in place)\n"
	"  --upscale-delay MS      /try-upscale or UpscaleRequest to the upscale (default 50)\n"
	"  --health-interval MS    health check period (default 5000)\n"
	"  --register-retry MS     pause before registering (or dialling) again (default 1000)\n"
	"  --downscale-every MS    propose memory - step (not below --min-memory) this\n"
	"                          often while running (default 0 = never)\n"
	"  --duration S            exit after S seconds (default 0 = until SIGINT/SIGTERM)\n"
	"  --quiet                 print only the listening line\n"
	"  --json                  one JSON object per event line\n"
	"  --no-register           do not register at start (see POST /sim/register)\n"
	"Misbehaviour, for tests (informant protocol, except --ignore-try-upscale):\n"
	"  --fail-id               answer GET /id with 500 \"simulated failure\"\n"
	"  --wrong-id              answer with the bitwise complement of our ID\n"
	"  --seq-zero              sequenceNumber 0 in replies\n"
	"  --id-delay MS, --suspend-delay MS, --resume-delay MS   answer late\n"
	"  --fail-resume           answer /resume with 500 \"simulated failure\"\n"
	"  --ignore-try-upscale    answer /try-upscale (take UpscaleRequest) but never upscale\n"
	"Control endpoints (same listener, JSON answers):\n"
	"  GET /sim/state          protocol, agentID, registered, running, memoryBytes,\n"
	"                          counters, seq\n"
	"  POST /sim/upscale?memory=Q     upscale now (default one step up)\n"
	"  POST /sim/downscale?memory=Q   propose now (default one step down); answers\n"
	"                          with the informant's status and DownscaleResult (monitor\n"
	"                          protocol: 200 and the same body, 500 for InternalError)\n"
	"  POST /sim/register, /sim/unregister, /sim/quit (register/unregister: dial and\n"
	"                          close the session with the monitor protocol)\n"
	"Exit: 0 after --duration, a signal or /sim/quit (sending DELETE /unregister\n"
	"or closing the session first); 2 for bad options; 1 if the listener cannot start.\n";

enum {
	OPT_PROTOCOL = 256, OPT_INFORMANT, OPT_LISTEN, OPT_ADVERTISE, OPT_ID, OPT_MEMORY, OPT_MAX_MEMORY,
	OPT_MIN_MEMORY, OPT_STEP, OPT_CPU, OPT_MEMINFO, OPT_UPSCALE_DELAY, OPT_HEALTH,
	OPT_REGISTER_RETRY, OPT_DOWNSCALE_EVERY, OPT_DURATION, OPT_QUIET, OPT_JSON,
	OPT_FAIL_ID, OPT_WRONG_ID, OPT_SEQ_ZERO, OPT_ID_DELAY, OPT_SUSPEND_DELAY,
	OPT_RESUME_DELAY, OPT_FAIL_RESUME, OPT_IGNORE_TRY, OPT_NO_REGISTER, OPT_HELP,
};

/* In the order of the enum above: parse_option() finds names by index. */
static const struct option options[] = {
	{ "protocol", required_argument, NULL, OPT_PROTOCOL },
	{ "informant", required_argument, NULL, OPT_INFORMANT },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "advertise", required_argument, NULL, OPT_ADVERTISE },
	{ "id", required_argument, NULL, OPT_ID },
	{ "memory", required_argument, NULL, OPT_MEMORY },
	{ "max-memory", required_argument, NULL, OPT_MAX_MEMORY },
	{ "min-memory", required_argument, NULL, OPT_MIN_MEMORY },
	{ "step", required_argument, NULL, OPT_STEP },
	{ "cpu", required_argument, NULL, OPT_CPU },
	{ "meminfo", required_argument, NULL, OPT_MEMINFO },
	{ "upscale-delay", required_argument, NULL, OPT_UPSCALE_DELAY },
	{ "health-interval", required_argument, NULL, OPT_HEALTH },
	{ "register-retry", required_argument, NULL, OPT_REGISTER_RETRY },
	{ "downscale-every", required_argument, NULL, OPT_DOWNSCALE_EVERY },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "fail-id", no_argument, NULL, OPT_FAIL_ID },
	{ "wrong-id", no_argument, NULL, OPT_WRONG_ID },
	{ "seq-zero", no_argument, NULL, OPT_SEQ_ZERO },
	{ "id-delay", required_argument, NULL, OPT_ID_DELAY },
	{ "suspend-delay", required_argument, NULL, OPT_SUSPEND_DELAY },
	{ "resume-delay", required_argument, NULL, OPT_RESUME_DELAY },
	{ "fail-resume", no_argument, NULL, OPT_FAIL_RESUME },
	{ "ignore-try-upscale", no_argument, NULL, OPT_IGNORE_TRY },
	{ "no-register", no_argument, NULL, OPT_NO_REGISTER },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

uint64_t sim_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct timespec abs_time(uint64_t ns)
{
	return (struct timespec){ .tv_sec = (time_t)(ns / 1000000000ull),
				  .tv_nsec = (long)(ns % 1000000000ull) };
}

bool sim_sleep_ms(struct sim *s, uint64_t ms)
{
	uint64_t until = sim_now_ns() + ms * MS_NS;
	struct timespec ts = abs_time(until);
	bool quit;

	pthread_mutex_lock(&s->lock);
	while (!s->quit && sim_now_ns() < until)
		pthread_cond_timedwait(&s->wake, &s->lock, &ts);
	quit = s->quit;
	pthread_mutex_unlock(&s->lock);
	return !quit;
}

void sim_request_quit(struct sim *s)
{
	pthread_mutex_lock(&s->lock);
	s->quit = true;
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->lock);
}

static int parse_ms(const char *name, const char *arg, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-' || v > 365ull * 24 * 3600 * 1000) {
		fprintf(stderr, "agent-sim: %s %s: expected a non-negative integer\n", name, arg);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int parse_bytes(const char *name, const char *arg, uint64_t *out)
{
	if (ap_quantity_parse(arg, out) < 0 || *out == 0) {
		fprintf(stderr, "agent-sim: %s %s: expected a positive quantity such as 4Gi\n",
			name, arg);
		return -EINVAL;
	}
	return 0;
}

static int parse_addr(const char *name, const char *arg, char *out)
{
	if (!strchr(arg, ':') || strlen(arg) >= AP_ADDR_MAX || strpbrk(arg, "/ ?#@")) {
		fprintf(stderr, "agent-sim: %s %s: expected HOST:PORT\n", name, arg);
		return -EINVAL;
	}
	snprintf(out, AP_ADDR_MAX, "%s", arg);
	return 0;
}

static int parse_option(struct sim_config *c, int opt, const char *arg)
{
	const char *name = options[opt - OPT_PROTOCOL].name;

	switch (opt) {
	case OPT_PROTOCOL:
		if (strcmp(arg, "monitor") == 0 || strcmp(arg, "informant") == 0) {
			c->protocol = arg[0] == 'm' ? SIM_PROTO_MONITOR : SIM_PROTO_INFORMANT;
			return 0;
		}
		fprintf(stderr, "agent-sim: --protocol %s: expected monitor or informant\n", arg);
		return -EINVAL;
	case OPT_INFORMANT: return parse_addr(name, arg, c->informant);
	case OPT_LISTEN: return parse_addr(name, arg, c->listen);
	case OPT_ADVERTISE: return parse_addr(name, arg, c->advertise);
	case OPT_ID:
		c->has_id = true;
		if (ap_uuid_parse(arg, &c->id) == 0)
			return 0;
		fprintf(stderr, "agent-sim: --id %s: expected a UUID\n", arg);
		return -EINVAL;
	case OPT_MEMORY: c->has_memory = true; return parse_bytes(name, arg, &c->memory);
	case OPT_MAX_MEMORY: return parse_bytes(name, arg, &c->max_memory);
	case OPT_MIN_MEMORY: return parse_bytes(name, arg, &c->min_memory);
	case OPT_STEP: return parse_bytes(name, arg, &c->step);
	case OPT_CPU:
		if (ap_quantity_parse_milli(arg, &c->cpu_milli) == 0)
			return 0;
		fprintf(stderr, "agent-sim: --cpu %s: expected a quantity such as 2 or 250m\n",
			arg);
		return -EINVAL;
	case OPT_MEMINFO: c->meminfo = arg; return 0;
	case OPT_UPSCALE_DELAY: return parse_ms(name, arg, &c->upscale_delay_ms);
	case OPT_HEALTH: return parse_ms(name, arg, &c->health_interval_ms);
	case OPT_REGISTER_RETRY: return parse_ms(name, arg, &c->register_retry_ms);
	case OPT_DOWNSCALE_EVERY: return parse_ms(name, arg, &c->downscale_every_ms);
	case OPT_DURATION: return parse_ms(name, arg, &c->duration_s);
	case OPT_QUIET: c->quiet = true; return 0;
	case OPT_JSON: c->json = true; return 0;
	case OPT_FAIL_ID: c->fail_id = true; return 0;
	case OPT_WRONG_ID: c->wrong_id = true; return 0;
	case OPT_SEQ_ZERO: c->seq_zero = true; return 0;
	case OPT_ID_DELAY: return parse_ms(name, arg, &c->id_delay_ms);
	case OPT_SUSPEND_DELAY: return parse_ms(name, arg, &c->suspend_delay_ms);
	case OPT_RESUME_DELAY: return parse_ms(name, arg, &c->resume_delay_ms);
	case OPT_FAIL_RESUME: c->fail_resume = true; return 0;
	case OPT_IGNORE_TRY: c->ignore_try_upscale = true; return 0;
	case OPT_NO_REGISTER: c->no_register = true; return 0;
	}
	return -EINVAL;
}

/* 0 to run, 1 after --help, -EINVAL on a bad option. */
static int parse_args(int argc, char **argv, struct sim_config *c)
{
	char err[256];
	int opt;

	*c = (struct sim_config){
		.informant = "127.0.0.1:10301", .listen = "127.0.0.1:0",
		.max_memory = 8 * GIB, .min_memory = GIB, .step = GIB, .cpu_milli = 1000,
		.upscale_delay_ms = 50, .health_interval_ms = 5000, .register_retry_ms = 1000,
	};
	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		if (opt == OPT_HELP || opt == 'h') {
			fputs(usage, stdout);
			return 1;
		}
		if (opt == '?' || parse_option(c, opt, optarg) < 0)
			return -EINVAL;
	}
	if (optind < argc) {
		fprintf(stderr, "agent-sim: unexpected argument %s (see --help)\n", argv[optind]);
		return -EINVAL;
	}
	if (!c->has_memory && c->meminfo) {
		if (meminfo_read_total(c->meminfo, &c->memory, err, sizeof(err)) < 0) {
			fprintf(stderr, "agent-sim: --meminfo: %s\n", err);
			return -EINVAL;
		}
	} else if (!c->has_memory) {
		c->memory = GIB;
	}
	if (c->min_memory > c->max_memory || c->health_interval_ms == 0) {
		fprintf(stderr, "agent-sim: need --min-memory <= --max-memory and a non-zero "
				"--health-interval\n");
		return -EINVAL;
	}
	return 0;
}

/* Is the job at `at` due?  Otherwise fold it into the next wake-up time. */
static bool due(uint64_t at, uint64_t now, uint64_t *next)
{
	if (!at)
		return false;
	if (at <= now)
		return true;
	if (at < *next)
		*next = at;
	return false;
}

/* After --upscale-delay: one step up, capped at --max-memory (lock held). */
static bool auto_upscale_target_locked(struct sim *s, uint64_t *to)
{
	char q[32];

	if (!s->running || !s->registered) {
		sim_event(s, "upscale-dropped", "{s:s}", "reason", "not running or not registered");
		return false;
	}
	if (s->memory >= s->cfg.max_memory) {
		ap_quantity_format_bytes(s->memory, q, sizeof(q));
		sim_event(s, "upscale-skipped", "{s:s,s:s}", "reason", "at --max-memory", "memory",
			  q);
		return false;
	}
	*to = s->memory + s->cfg.step < s->cfg.max_memory ? s->memory + s->cfg.step
							  : s->cfg.max_memory;
	return true;
}

/* Periodic downscale: one step down, floored at --min-memory (lock held). */
static bool auto_downscale_target_locked(struct sim *s, uint64_t now, uint64_t *to)
{
	s->downscale_at_ns = now + s->cfg.downscale_every_ms * MS_NS;
	if (!s->running || !s->registered || s->memory <= s->cfg.min_memory)
		return false;
	*to = s->memory > s->cfg.min_memory + s->cfg.step ? s->memory - s->cfg.step
							  : s->cfg.min_memory;
	return true;
}

enum job { JOB_NONE, JOB_REGISTER, JOB_HEALTH, JOB_UPSCALE, JOB_DOWNSCALE };

/* The next job that is due (lock held); *next = when to look again. */
static enum job pick_job_locked(struct sim *s, uint64_t now, uint64_t *next, uint64_t *to)
{
	if (s->want_register && !s->registered && !s->registering &&
	    due(s->register_at_ns, now, next))
		return JOB_REGISTER;
	if (s->registered && due(s->health_at_ns, now, next))
		return JOB_HEALTH;
	if (due(s->upscale_at_ns, now, next)) {
		s->upscale_at_ns = 0;
		if (auto_upscale_target_locked(s, to))
			return JOB_UPSCALE;
	}
	if (s->cfg.downscale_every_ms && s->registered && due(s->downscale_at_ns, now, next) &&
	    auto_downscale_target_locked(s, now, to))
		return JOB_DOWNSCALE;
	return JOB_NONE;
}

static void run_job(struct sim *s, enum job job, uint64_t to)
{
	struct sim_reply rep = { 0 };

	switch (job) {
	case JOB_REGISTER: sim_register(s); break;
	case JOB_HEALTH: sim_health_check(s); break;
	case JOB_UPSCALE: sim_upscale(s, to, &rep); break;
	case JOB_DOWNSCALE: sim_downscale(s, to, &rep); break;
	case JOB_NONE: break;
	}
	sim_reply_free(&rep);
}

static void run_scheduler(struct sim *s)
{
	uint64_t deadline = s->cfg.duration_s ? s->start_ns + s->cfg.duration_s * 1000 * MS_NS : 0;
	uint64_t now, next, to = 0;
	struct timespec ts;
	enum job job;

	pthread_mutex_lock(&s->lock);
	while (!s->quit) {
		now = sim_now_ns();
		next = now + 1000 * MS_NS; /* look again at least every second */
		if (deadline && due(deadline, now, &next)) {
			sim_event(s, "duration-over", "{s:I}", "seconds",
				  (json_int_t)s->cfg.duration_s);
			s->quit = true;
			break;
		}
		job = pick_job_locked(s, now, &next, &to);
		if (job != JOB_NONE) {
			pthread_mutex_unlock(&s->lock);
			run_job(s, job, to);
			pthread_mutex_lock(&s->lock);
			continue;
		}
		ts = abs_time(next);
		pthread_cond_timedwait(&s->wake, &s->lock, &ts);
	}
	pthread_mutex_unlock(&s->lock);
}

static void *wait_for_signal(void *arg)
{
	struct sim *s = arg;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (sigwait(&set, &sig) == 0) {
		sim_event(s, "signal", "{s:s}", "signal", sig == SIGINT ? "SIGINT" : "SIGTERM");
		sim_request_quit(s);
	}
	return NULL;
}

static int sim_init(struct sim *s)
{
	pthread_condattr_t attr;
	int r;

	s->start_ns = sim_now_ns();
	if (s->cfg.has_id)
		s->id = s->cfg.id;
	else if ((r = ap_uuid_random(&s->id)) < 0)
		return r;
	s->memory = s->cfg.memory;
	s->want_register = !s->cfg.no_register;
	s->register_at_ns = s->start_ns;
	if (pthread_mutex_init(&s->lock, NULL) != 0)
		return -ENOMEM;
	if (pthread_condattr_init(&attr) != 0 ||
	    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
	    pthread_cond_init(&s->wake, &attr) != 0) {
		pthread_mutex_destroy(&s->lock);
		return -ENOMEM;
	}
	pthread_condattr_destroy(&attr);
	return 0;
}

int main(int argc, char **argv)
{
	static struct sim sim;
	struct sim_reply rep = { 0 };
	pthread_t sig_thread;
	sigset_t set;
	char err[512];
	bool registered;
	int r;

	r = parse_args(argc, argv, &sim.cfg);
	if (r != 0)
		return r > 0 ? 0 : 2;
	if (sim_init(&sim) < 0 || sim_http_init() < 0) {
		fprintf(stderr, "agent-sim: cannot initialise (out of memory?)\n");
		return 1;
	}
	/* Signals go to the waiting thread only; every thread started later
	 * (also libmicrohttpd's) inherits this mask. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (sim_server_start(&sim, err, sizeof(err)) < 0) {
		fprintf(stderr, "agent-sim: %s\n", err);
		sim_http_cleanup();
		return 1;
	}
	if (pthread_create(&sig_thread, NULL, wait_for_signal, &sim) != 0) {
		fprintf(stderr, "agent-sim: cannot start the signal thread\n");
		sim_server_stop();
		sim_http_cleanup();
		return 1;
	}
	run_scheduler(&sim);

	pthread_mutex_lock(&sim.lock);
	registered = sim.registered;
	pthread_mutex_unlock(&sim.lock);
	if (registered) {
		sim_unregister(&sim, &rep);
		sim_reply_free(&rep);
	}
	sim_server_stop();
	pthread_cancel(sig_thread);
	pthread_join(sig_thread, NULL);
	sim_event(&sim, "exit", "{}");
	sim_http_cleanup();
	pthread_cond_destroy(&sim.wake);
	pthread_mutex_destroy(&sim.lock);
	return 0;
}
