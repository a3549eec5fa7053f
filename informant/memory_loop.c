/* SPDX-License-Identifier: Apache-2.0 */
/*
 * memory_loop.c — the memory policy on the daemon's loop: opening the
 * cgroup, Postgres and the sampler, and the sources that drive the policy
 * (sampler ticks, memory.events notifications, PSI, Postgres answers,
 * timers).  The struct memory_io it plugs in is memory_io.c's.
 *
 * Nothing here decides anything: every input goes straight to
 * memory_on_*() (memory_core.h).
 */
#include "memory_loop_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- sources ------------------------------------------------------------ */

static void shell_timer_react(void *arg)
{
	struct memory_shell *sh = arg;

	memory_on_timer(sh->m, MEMORY_TIMER_REACT);
}

static void shell_timer_thaw_guard(void *arg)
{
	struct memory_shell *sh = arg;

	memory_on_timer(sh->m, MEMORY_TIMER_THAW_GUARD);
}

static void shell_timer_downscale(void *arg)
{
	struct memory_shell *sh = arg;

	memory_on_timer(sh->m, MEMORY_TIMER_DOWNSCALE);
}

/* A broken memory.events shows on every tick: say so once a second. */
static void shell_watch_error(struct memory_shell *sh, const char *what, const char *err)
{
	uint64_t dropped;

	if (log_limit_allow(&sh->watch_err_log, loop_now_ms(), 1000, &dropped))
		log_event(LOG_WARN, what, LF_STR("error", err), LF_U64("repeats_not_logged", dropped),
			  LF_END);
}

static void shell_watch_readable(void *arg, uint32_t events)
{
	struct memory_shell *sh = arg;
	uint64_t n = 0;
	char err[512];

	(void)events;
	if (cg_watch_process(sh->cg, &n, err, sizeof(err)) < 0)
		shell_watch_error(sh, "memory.events watch", err);
	memory_on_high_events(sh->m, n);
}

static void shell_fc_readable(void *arg, uint32_t events)
{
	struct memory_shell *sh = arg;
	int r;

	(void)events;
	r = fc_process(sh->fc);
	if (r < 0)
		log_event(LOG_WARN, "file cache connection processing failed", LF_ERR(r), LF_END);
}

/* What the policy sees of a tick: the sampler's MemTotal and the cgroup's
 * memory.current. */
static void shell_sample(struct memory_shell *sh, const struct mc_sample *s,
			 struct memory_sample *out)
{
	char err[256];

	*out = (struct memory_sample){
		.mem_total = s->mem_total, .mem_total_err = s->mem_total_err,
		.meminfo_read = s->meminfo_read,
	};
	if (!sh->cg)
		return;
	out->current_ok = cg_read_current(sh->cg, &out->current, err, sizeof(err)) == 0;
	if (sh->m->cfg.cgroup.exclude_page_cache && !sh->stat_missing) {
		int r = cg_read_memory_stat(sh->cg, &out->stat, err, sizeof(err));

		out->stat_ok = r == 0;
		sh->stat_missing = r == -ENOENT;
		if (r < 0 && r != -ENOENT)
			/* The rule falls back to memory.current meanwhile: say so. */
			shell_watch_error(sh, "memory.stat unreadable; deciding on memory.current",
					  err);
	}
}

/* memory.pressure once a second: the totals for /metrics, and — without
 * a trigger — the stall judged from them. */
static void shell_read_pressure(struct memory_shell *sh)
{
	struct cg_pressure pr;
	char err[256];
	int r;

	if (sh->psi_missing)
		return;
	r = cg_read_pressure(sh->cg, &pr, err, sizeof(err));
	if (r < 0) {
		/* Plain directories and kernels without PSI (ENOENT, or
		 * EOPNOTSUPP with psi=0): look no more until the cgroup is new.
		 * Garbage is said once a second. */
		sh->psi_missing = r == -ENOENT || r == -EOPNOTSUPP;
		if (!sh->psi_missing)
			shell_watch_error(sh, "memory.pressure", err);
		return;
	}
	memory_on_pressure(sh->m, &pr, sh->psi_fd >= 0 ? MEMORY_PSI_TOTALS : MEMORY_PSI_READING);
}

static void shell_psi_trigger(void *arg, uint32_t events)
{
	struct memory_shell *sh = arg;

	if (events & (EPOLLERR | EPOLLHUP)) {
		/* The cgroup went away under the trigger: fall back to readings. */
		log_event(LOG_WARN, "PSI trigger lost; judging stalls from readings", LF_END);
		(void)loop_del_fd(sh->loop, sh->psi_fd);
		close(sh->psi_fd);
		sh->psi_fd = -1;
		return;
	}
	memory_on_pressure(sh->m, NULL, MEMORY_PSI_TRIGGER);
}

/* A PSI trigger where the kernel has them: an ask follows the onset of
 * real stalls within about a second, however slowly usage grows. */
static void shell_start_psi(struct memory_shell *sh)
{
	char err[256];
	int r;

	r = cg_pressure_trigger(sh->cg, SHELL_PSI_TRIGGER, &sh->psi_fd, err, sizeof(err));
	if (r == 0)
		r = loop_add_fd(sh->loop, sh->psi_fd, EPOLLPRI, shell_psi_trigger, sh);
	if (r < 0) {
		if (sh->psi_fd >= 0)
			close(sh->psi_fd);
		sh->psi_fd = -1;
		log_event(LOG_INFO, "no PSI trigger; stalls are judged from memory.pressure "
			  "readings once a second", LF_STR("error", err), LF_END);
		return;
	}
	log_event(LOG_INFO, "PSI trigger armed", LF_STR("trigger", SHELL_PSI_TRIGGER), LF_END);
}

/* The directory was made anew: its files and its PSI are new too. */
static void shell_cgroup_recreated(struct memory_shell *sh)
{
	if (sh->psi_fd >= 0) {
		(void)loop_del_fd(sh->loop, sh->psi_fd);
		close(sh->psi_fd);
		sh->psi_fd = -1;
	}
	sh->stat_missing = sh->psi_missing = false;
	shell_start_psi(sh);
	memory_on_cgroup_recreated(sh->m);
}

static int shell_on_sample(void *arg, const struct mc_sample *tick)
{
	struct memory_shell *sh = arg;
	const struct mc_sample *s = tick;
	struct memory_sample ms;
	struct mc_sample fresh;
	uint64_t n = 0;
	char err[512];

	/* While granted memory is on its way, MemTotal is read every tick. */
	if (!s->meminfo_fresh && memory_awaiting_memory(sh->m)) {
		(void)mc_sampler_read(sh->sampler, &fresh);
		s = &fresh;
	}
	shell_sample(sh, s, &ms);
	if (sh->cg) {
		/* Safety net for a missed notification (D3); it also finds a
		 * directory that was removed and made anew.  Once a second, not
		 * every tick: the inotify watch stays armed and is the signal;
		 * reading memory.events ten times a second for nothing was a
		 * third of the idle CPU. */
		if (s->ts_ms - sh->last_poll_ms >= SHELL_POLL_MS) {
			sh->last_poll_ms = s->ts_ms;
			if (cg_watch_poll(sh->cg, &n, err, sizeof(err)) < 0)
				shell_watch_error(sh, "memory.events poll", err);
			sh->stat_missing = false; /* a newer kernel, a re-created cgroup */
			shell_read_pressure(sh);
		}
		if (cg_generation(sh->cg) != sh->cg_generation) {
			sh->cg_generation = cg_generation(sh->cg);
			shell_cgroup_recreated(sh);
		}
	}
	memory_on_sample(sh->m, &ms);
	memory_on_high_events(sh->m, n);
	return 0;
}

static void shell_on_sampler_error(void *arg, int err, const char *what)
{
	(void)arg;
	log_event(LOG_WARN, "sampler", LF_STR("step", what), LF_ERR(err), LF_END);
}

static void shell_sampler_readable(void *arg, uint32_t events)
{
	struct memory_shell *sh = arg;
	int r;

	(void)events;
	r = mc_sampler_process(sh->sampler);
	if (r < 0)
		log_event(LOG_ERROR, "sampler timer failed", LF_ERR(r), LF_END);
}

/* ---- set-up ------------------------------------------------------------- */

int memory_new(struct loop *loop, const struct config *cfg, struct metrics *metrics,
	       const struct memory_hooks *hooks, struct memory **out)
{
	struct memory_shell *sh = calloc(1, sizeof(*sh));
	struct memory_io io;
	int r;

	if (!sh)
		return -ENOMEM;
	shell_io(sh, &io);
	sh->loop = loop;
	sh->hooks = *hooks;
	sh->psi_fd = -1;
	r = memory_core_new(cfg, metrics, &io, cfg->cgroup.enabled, cfg->filecache.enabled,
			    &sh->m);
	if (r < 0) {
		free(sh);
		return r;
	}
	sh->m->shell = sh;
	*out = sh->m;
	return 0;
}

static int shell_open_cgroup(struct memory_shell *sh, const struct config *cfg)
{
	char err[512];
	bool was_frozen = false;
	int r;

	r = cg_open(cfg->cgroup.root, cfg->cgroup.name, &sh->cg, err, sizeof(err));
	if (r < 0) {
		log_event(LOG_ERROR, "cannot open the cgroup", LF_STR("root", cfg->cgroup.root),
			  LF_STR("name", cfg->cgroup.name), LF_STR("error", err),
			  LF_STR("hint", "create it (cgroup v2) or set [cgroup] enabled = false"),
			  LF_END);
		return r;
	}
	(void)cg_read_frozen(sh->cg, &was_frozen, err, sizeof(err));
	log_event(was_frozen ? LOG_WARN : LOG_INFO, "cgroup opened and thawed",
		  LF_STR("path", cg_path(sh->cg)), LF_BOOL("cgroupfs", cg_is_cgroupfs(sh->cg)),
		  LF_BOOL("was_left_frozen", was_frozen), LF_END);
	sh->cg_generation = cg_generation(sh->cg);
	snprintf(sh->reclaim_path, sizeof(sh->reclaim_path), "%s/memory.reclaim", cg_path(sh->cg));
	shell_start_psi(sh);
	r = cg_watch_start(sh->cg, err, sizeof(err));
	if (r < 0) {
		log_event(LOG_ERROR, "cannot watch memory.events", LF_STR("error", err), LF_END);
		return r;
	}
	r = loop_add_fd(sh->loop, cg_watch_fd(sh->cg), EPOLLIN, shell_watch_readable, sh);
	if (r < 0)
		log_event(LOG_ERROR, "cannot watch memory.events", LF_ERR(r), LF_END);
	return r;
}

/* The policy's timers, whatever it manages (a downscale of the file cache
 * alone has its deadline too). */
static int shell_timers(struct memory_shell *sh)
{
	static const loop_timer_cb cbs[MEMORY_TIMER__COUNT] = {
		[MEMORY_TIMER_REACT] = shell_timer_react,
		[MEMORY_TIMER_THAW_GUARD] = shell_timer_thaw_guard,
		[MEMORY_TIMER_DOWNSCALE] = shell_timer_downscale,
	};
	int r = 0;

	for (int t = 0; t < MEMORY_TIMER__COUNT && r == 0; t++)
		r = loop_timer_new(sh->loop, cbs[t], sh, &sh->timers[t]);
	if (r < 0)
		log_event(LOG_ERROR, "cannot set up the memory policy's timers", LF_ERR(r), LF_END);
	return r;
}

static int shell_open_filecache(struct memory_shell *sh, const struct config *cfg)
{
	struct fc_pg_config pg = {
		.connstr = cfg->filecache.connstr,
		.size_setting = cfg->filecache.size_setting,
		.max_size_setting = cfg->filecache.max_size_setting,
		.connect_timeout_ms = cfg->filecache.connect_timeout_ms,
		.query_timeout_ms = 1000,
	};
	char err[512];
	int r;

	r = fc_new(&pg, &sh->fc, err, sizeof(err));
	if (r < 0) {
		log_event(LOG_ERROR, "cannot set up the file cache", LF_STR("error", err), LF_END);
		return r;
	}
	if (fc_connstr_resolves_names(cfg->filecache.connstr))
		log_event(LOG_WARN, "the file cache connection names a host: libpq resolves it "
			  "synchronously, which can stall the event loop",
			  LF_STR("connstr", fc_connstr_display(sh->fc)),
			  LF_STR("hint", "use an IP address, hostaddr=, or a socket directory"), LF_END);
	r = loop_add_fd(sh->loop, fc_fd(sh->fc), EPOLLIN, shell_fc_readable, sh);
	if (r < 0) {
		log_event(LOG_ERROR, "cannot watch the file cache connection", LF_ERR(r), LF_END);
		fc_free(sh->fc);
		sh->fc = NULL;
	}
	return r;
}

static int shell_start_sampler(struct memory_shell *sh, const struct config *cfg,
			       struct memory_sample *first)
{
	struct mc_sampler_config sc = {
		.meminfo_path = cfg->system.meminfo,
		.interval_ms = cfg->sampler.interval_ms ? cfg->sampler.interval_ms : 1000,
		.meminfo_every_ms = SHELL_MEMINFO_MS,
		.immediate = false,
	};
	struct mc_sample s;
	char err[512];
	int r;

	r = mc_sampler_new(&sc, shell_on_sample, shell_on_sampler_error, sh, &sh->sampler, err,
			   sizeof(err));
	if (r < 0) {
		log_event(LOG_ERROR, "cannot set up the sampler", LF_STR("error", err), LF_END);
		return r;
	}
	(void)mc_sampler_read(sh->sampler, &s);
	shell_sample(sh, &s, first);
	if (!cfg->sampler.interval_ms)
		return 0; /* sampling off: MemTotal read once, no prediction */
	r = loop_add_fd(sh->loop, mc_sampler_fd(sh->sampler), EPOLLIN, shell_sampler_readable, sh);
	if (r == 0)
		r = mc_sampler_start(sh->sampler);
	if (r < 0)
		log_event(LOG_ERROR, "cannot start the sampler", LF_ERR(r), LF_END);
	return r;
}

int memory_start(struct memory *m)
{
	struct memory_shell *sh = m->shell;
	struct memory_sample first;
	int r;

	r = shell_timers(sh);
	if (r < 0)
		return r;
	if (m->cgroup) {
		r = shell_open_cgroup(sh, &m->cfg);
		if (r < 0)
			return r;
	}
	if (m->filecache) {
		r = shell_open_filecache(sh, &m->cfg);
		if (r < 0)
			return r;
	}
	r = shell_start_sampler(sh, &m->cfg, &first);
	if (r < 0)
		return r;
	return memory_core_start(m, &first);
}

void memory_free(struct memory *m)
{
	struct memory_shell *sh;
	char err[512];

	if (!m)
		return;
	sh = m->shell;
	memory_core_stop(m); /* thaws; its pending requests get 503 */
	if (sh->sampler) {
		(void)loop_del_fd(sh->loop, mc_sampler_fd(sh->sampler));
		mc_sampler_free(sh->sampler);
	}
	if (sh->fc) {
		(void)loop_del_fd(sh->loop, fc_fd(sh->fc));
		fc_free(sh->fc); /* cancels: results go nowhere now */
	}
	for (int t = 0; t < MEMORY_TIMER__COUNT; t++)
		loop_timer_free(sh->timers[t]);
	reclaim_worker_free(sh->reclaimer);
	if (sh->psi_fd >= 0) {
		(void)loop_del_fd(sh->loop, sh->psi_fd);
		close(sh->psi_fd);
	}
	if (sh->cg) {
		if (cg_watch_fd(sh->cg) >= 0)
			(void)loop_del_fd(sh->loop, cg_watch_fd(sh->cg));
		if (cg_close(sh->cg, err, sizeof(err)) < 0)
			log_event(LOG_ERROR, "cgroup may be left frozen: thaw failed at exit",
				  LF_STR("error", err), LF_END);
	}
	memory_core_free(m);
	free(sh);
}

void memory_reconfigure(struct memory *m, const struct config *cfg)
{
	struct memory_shell *sh = m->shell;
	int r;

	memory_core_reconfigure(m, cfg);
	if (!sh->sampler)
		return;
	if (mc_sampler_running(sh->sampler) != (cfg->sampler.interval_ms != 0)) {
		log_event(LOG_WARN, "turning sampling on or off needs a restart", LF_END);
		return;
	}
	if (!cfg->sampler.interval_ms)
		return;
	r = mc_sampler_set_interval(sh->sampler, cfg->sampler.interval_ms);
	if (r < 0)
		log_event(LOG_WARN, "sampler interval not changed", LF_ERR(r), LF_END);
}
