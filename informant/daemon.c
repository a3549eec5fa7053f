/* SPDX-License-Identifier: Apache-2.0 */
/*
 * daemon.c — wiring: loop, signals, memory policy, agent set, HTTP server,
 * the websocket monitor protocol on the server's /monitor.
 *
 * Shutdown (SIGTERM/SIGINT): stop accepting, close monitor sessions (1001),
 * give requests in flight up to SHUTDOWN_GRACE_MS, then free the memory
 * policy (which thaws the cgroup and answers its pending requests 503, a
 * monitor session's with InternalError), the monitor, the agent set
 * (pending registrations 503), flush those answers for up to FLUSH_MS,
 * and close the server.  Unlike the original (docs/informant-protocol.md §9) this stays well under 1 s and
 * always thaws.
 */
#include "daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "agents.h"
#include "handlers.h"
#include "httputil.h"
#include "log.h"
#include "loop.h"
#include "memory.h"
#include "metrics.h"
#include "monitor.h"
#include "monitor_wire.h"
#include "notify.h"
#include "server.h"
#include "vmi_build.h"

#define SHUTDOWN_GRACE_MS 500
#define SHUTDOWN_POLL_MS 10
#define FLUSH_MS 100
/* The HTTP server's limits (README, "Security").  The total number of
 * connections follows the fd budget (server_max_connections). */
#define CONNECTIONS_PER_ADDRESS 64
#define HEAD_TIMEOUT_MS 5000  /* a request head; agents send theirs in one packet */
#define BODY_TIMEOUT_MS 10000 /* a request body, from the end of its head */
#define IDLE_TIMEOUT_S 30     /* keep-alive; agents send a health check every 5 s */
/* Per connection; request heads and answers are small (a bearer token of
 * 4 KiB fits).  Worst case: CONNS_MAX connections x 16 KiB = 64 MiB. */
#define CONNECTION_MEMORY_LIMIT (16 * 1024)

struct daemon {
	struct config cfg; /* memory keeps a pointer to it: updated in place */
	daemon_reload_fn reload;
	void *reload_arg;
	struct loop *loop;
	struct notify *notify; /* NULL when no service manager listens */
	int sigfd;
	struct metrics metrics;
	struct memory *memory;
	struct agents_loop *agents;
	struct server *server;
	struct handlers_ctx hctx;
	struct monitor *monitor;
	struct monitor_wire mwire;
	struct server_upgrade upgrade;
	struct loop_timer *grace;
	uint64_t grace_deadline_ms;
	bool stopping;      /* shutdown began: signals change nothing any more */
	uint64_t nofile;    /* RLIMIT_NOFILE after raising it */
};

/* Load the token named by cfg ("" = none) into out. */
static int load_token(const struct config *c, char *out, size_t outlen)
{
	char err[512];
	int r;

	out[0] = '\0';
	if (!c->server.auth_token_file[0])
		return 0;
	r = http_token_load(c->server.auth_token_file, out, outlen, err, sizeof(err));
	if (r < 0)
		log_event(LOG_ERROR, "cannot load the auth token", LF_STR("detail", err), LF_END);
	return r;
}

/* The memory policy's hooks into the agent set. */
static void hook_request_upscale(void *agents, bool predicted)
{
	(void)agents_request_upscale(agents, predicted);
}

static void hook_upscale_applied(void *agents)
{
	agents_upscale_applied(agents);
}

/* ---- shutdown ---------------------------------------------------------------- */

static void grace_tick(void *arg)
{
	struct daemon *d = arg;

	if (server_requests_in_flight(d->server) == 0 || loop_now_ms() >= d->grace_deadline_ms)
		loop_stop(d->loop);
}

static void begin_shutdown(struct daemon *d, const char *signame)
{
	int r;

	if (d->stopping)
		return; /* a second signal while stopping */
	d->stopping = true;
	notify_stopping(d->notify);
	log_event(LOG_INFO, "shutting down", LF_STR("signal", signame),
		  LF_U64("requests_in_flight", server_requests_in_flight(d->server)), LF_END);
	server_quiesce(d->server);
	monitor_shutdown(d->monitor);
	d->grace_deadline_ms = loop_now_ms() + SHUTDOWN_GRACE_MS;
	r = loop_timer_new(d->loop, grace_tick, d, &d->grace);
	if (r == 0)
		r = loop_timer_arm(d->grace, 1, SHUTDOWN_POLL_MS);
	if (r < 0)
		loop_stop(d->loop);
}

/* ---- SIGHUP -------------------------------------------------------------------- */

static void note_restart_needed(const char *section, const char *name, void *arg)
{
	(void)arg;
	log_event(LOG_WARN, "setting changed; takes effect after a restart",
		  LF_STR("section", section), LF_STR("key", name), LF_END);
}

static void reload_config(struct daemon *d)
{
	/* Large; only ever used on the loop thread. */
	static struct config loaded, n;
	char err[512] = "";
	char token[HTTP_TOKEN_MAX];
	int r;

	if (!d->reload) {
		log_event(LOG_WARN, "SIGHUP ignored: no configuration to reload", LF_END);
		return;
	}
	r = d->reload(&loaded, err, sizeof(err), d->reload_arg);
	if (r < 0) {
		log_event(LOG_ERROR, "reload failed; keeping the old configuration",
			  LF_STR("detail", err), LF_END);
		return;
	}
	/* The key table says what a reload applies (config.c). */
	n = d->cfg;
	config_apply_reload(&n, &loaded, note_restart_needed, NULL);
	log_setup(n.log.level, n.log.format);
	if (load_token(&n, token, sizeof(token)) == 0) {
		(void)server_set_token(d->server, token);
	} else {
		log_event(LOG_WARN, "keeping the previous auth token", LF_END);
		memcpy(n.server.auth_token_file, d->cfg.server.auth_token_file,
		       sizeof(n.server.auth_token_file));
	}
	explicit_bzero(token, sizeof(token));
	d->cfg = n;
	agents_set_timeouts(agents_loop_agents(d->agents), &d->cfg.agent);
	memory_reconfigure(d->memory, &d->cfg);
	log_event(LOG_INFO, "configuration reloaded", LF_STR("log_level",
		  log_level_name(d->cfg.log.level)), LF_END);
}

/* The service manager sees the reload begin and end, also when it failed
 * (the old configuration keeps running: the daemon is ready again). */
static void reload(struct daemon *d)
{
	notify_reloading(d->notify);
	reload_config(d);
	notify_ready(d->notify, "serving");
}

static void on_signal(void *arg, uint32_t events)
{
	struct daemon *d = arg;
	struct signalfd_siginfo si;

	(void)events;
	while (read(d->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo != SIGHUP)
			begin_shutdown(d, si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
		else if (d->stopping)
			log_event(LOG_INFO, "SIGHUP ignored: shutting down", LF_END);
		else
			reload(d);
	}
}

/* ---- start and stop ------------------------------------------------------------ */

static void take_monitor(void *arg, int fd, const void *extra, size_t extra_len,
			 struct server_upgraded *handle)
{
	struct daemon *d = arg;

	monitor_accept(d->monitor, fd, extra, extra_len, server_upgraded_release, handle);
}

/* The monitor protocol on GET /monitor of the same server. */
static int start_monitor(struct daemon *d)
{
	struct monitor_ops ops;
	int r;

	d->mwire = (struct monitor_wire){ d->memory, agents_loop_agents(d->agents) };
	monitor_wire_ops(&d->mwire, &ops);
	r = monitor_new(d->loop, &d->metrics, d->cfg.server.max_body_bytes, &ops, &d->monitor);
	if (r < 0) {
		log_event(LOG_ERROR, "cannot start the monitor protocol", LF_ERR(r), LF_END);
		return r;
	}
	d->upgrade = (struct server_upgrade){ "/monitor", take_monitor, d };
	return 0;
}

static int setup_signals(struct daemon *d)
{
	sigset_t set;

	/* A peer closing early must be an EPIPE, not the end of the daemon. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	d->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->sigfd < 0)
		return -errno;
	return loop_add_fd(d->loop, d->sigfd, EPOLLIN, on_signal, d);
}

/* Every connection is a file descriptor: take all the process may have
 * (the soft limit up to the hard one; systemd's default soft limit is
 * 1024, its hard one 524288) and size the connection limit from that. */
static uint64_t raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 1024;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t old = rl.rlim_cur;

		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			log_event(LOG_WARN, "cannot raise the open file limit",
				  LF_U64("soft", old), LF_U64("hard", rl.rlim_max),
				  LF_ERR(-errno), LF_END);
			rl.rlim_cur = old;
		}
	}
	return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
}

static int start_server(struct daemon *d)
{
	const struct server_route *routes;
	size_t nroutes = handlers_routes(d->cfg.server.metrics, &routes);
	char token[HTTP_TOKEN_MAX], err[512] = "";
	struct server_options o = {
		.host = d->cfg.server.listen_host,
		.port = d->cfg.server.listen_port,
		.max_body_bytes = d->cfg.server.max_body_bytes,
		.token = token,
		.max_connections = server_max_connections(d->nofile),
		.max_connections_per_address = CONNECTIONS_PER_ADDRESS,
		.head_timeout_ms = HEAD_TIMEOUT_MS,
		.body_timeout_ms = BODY_TIMEOUT_MS,
		.idle_timeout_s = IDLE_TIMEOUT_S,
		.connection_memory_limit = CONNECTION_MEMORY_LIMIT,
	};
	int r = load_token(&d->cfg, token, sizeof(token));

	if (r < 0)
		return r;
	r = server_new(d->loop, &o, routes, nroutes, &d->hctx, &d->metrics, &d->server, err,
		       sizeof(err));
	explicit_bzero(token, sizeof(token));
	if (r < 0) {
		/* D19: no server, no daemon — one clear line and exit 1. */
		log_event(LOG_ERROR, "cannot start the HTTP server", LF_STR("detail", err), LF_END);
		return r;
	}
	server_set_upgrade(d->server, &d->upgrade);
	log_event(LOG_INFO, "informant started", LF_STR("listen", d->cfg.server.listen_host),
		  LF_U64("port", server_port(d->server)),
		  LF_BOOL("auth", d->cfg.server.auth_token_file[0] != '\0'),
		  LF_BOOL("metrics", d->cfg.server.metrics),
		  LF_BOOL("memory_managed", memory_managed(d->memory)),
		  LF_U64("open_file_limit", d->nofile),
		  LF_U64("watchdog_usec", notify_watchdog_usec(d->notify)),
		  LF_U64("max_connections", o.max_connections),
		  LF_U64("max_connections_per_address", o.max_connections_per_address), LF_END);
	return 0;
}

static int start(struct daemon *d)
{
	struct agents *agents;
	int r;

	d->hctx.metrics = &d->metrics;
	d->hctx.cfg = &d->cfg;
	d->hctx.started_ms = loop_now_ms();
	r = setup_signals(d);
	if (r < 0) {
		log_event(LOG_ERROR, "cannot set up signal handling", LF_ERR(r), LF_END);
		return r;
	}
	r = agents_loop_new(d->loop, &d->cfg.agent, &d->metrics, &d->agents);
	if (r < 0) {
		log_event(LOG_ERROR, "cannot create the agent client", LF_ERR(r), LF_END);
		return r;
	}
	agents = agents_loop_agents(d->agents);
	d->hctx.agents = agents;
	r = memory_new(d->loop, &d->cfg, &d->metrics,
		       &(struct memory_hooks){ .request_upscale = hook_request_upscale,
					       .upscale_applied = hook_upscale_applied,
					       .arg = agents },
		       &d->memory);
	if (r == 0)
		r = memory_start(d->memory);
	if (r < 0) {
		log_event(LOG_ERROR, "cannot start memory management", LF_ERR(r), LF_END);
		return r;
	}
	d->hctx.memory = d->memory;
	r = start_monitor(d);
	return r < 0 ? r : start_server(d);
}

/* Let MHD deliver the answers that freeing memory and agents produced. */
static void flush_answers(struct daemon *d)
{
	uint64_t deadline = loop_now_ms() + FLUSH_MS;

	while (server_requests_in_flight(d->server) > 0 && loop_now_ms() < deadline)
		(void)loop_run_once(d->loop, SHUTDOWN_POLL_MS);
}

static void stop(struct daemon *d)
{
	/* From here on the loop runs only to flush answers: signals stay
	 * blocked and pending (a SIGHUP must not reload into freed objects). */
	d->stopping = true;
	if (d->sigfd >= 0) {
		(void)loop_del_fd(d->loop, d->sigfd);
		close(d->sigfd);
		d->sigfd = -1;
	}
	d->hctx.memory = NULL;
	d->mwire.memory = NULL;
	if (d->memory)
		memory_free(d->memory); /* thaws; its pending requests get 503 */
	d->memory = NULL;
	/* Before the agent set (sessions leave it) and the server (which
	 * owns the sessions' sockets). */
	monitor_free(d->monitor);
	d->monitor = NULL;
	d->mwire.agents = NULL;
	d->hctx.agents = NULL;
	agents_loop_free(d->agents); /* pending registrations get 503 */
	d->agents = NULL;
	if (d->server) {
		flush_answers(d);
		server_free(d->server);
	}
	loop_timer_free(d->grace);
	notify_free(d->notify);
	loop_free(d->loop);
}

int daemon_run(const struct config *cfg, daemon_reload_fn reload_fn, void *reload_arg)
{
	static struct daemon d; /* one daemon per process; too big for the stack */
	int r;

	memset(&d, 0, sizeof(d));
	d.cfg = *cfg;
	d.reload = reload_fn;
	d.reload_arg = reload_arg;
	d.sigfd = -1;
	d.metrics.version = VMI_VERSION;
	log_setup(cfg->log.level, cfg->log.format);
	d.nofile = raise_nofile();
	r = loop_new(&d.loop);
	if (r < 0) {
		log_event(LOG_ERROR, "cannot create the event loop", LF_ERR(r), LF_END);
		return 1;
	}
	r = notify_new(d.loop, &d.notify);
	if (r < 0)
		log_event(LOG_ERROR, "cannot set up the watchdog ping", LF_ERR(r), LF_END);
	else
		r = start(&d);
	if (r == 0) {
		/* Serving, and memory_start() has written the limits. */
		notify_ready(d.notify, "serving");
		r = loop_run(d.loop);
		if (r < 0)
			log_event(LOG_ERROR, "event loop failed", LF_ERR(r), LF_END);
	}
	stop(&d);
	if (r == 0)
		log_event(LOG_INFO, "informant stopped", LF_END);
	return r == 0 ? 0 : 1;
}
