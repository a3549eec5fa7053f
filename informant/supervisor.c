/* SPDX-License-Identifier: Apache-2.0 */
/*
 * supervisor.c — fork/exec the daemon, watch it, restart it.
 *
 * One poll() over a signalfd (SIGCHLD, SIGTERM, SIGINT, SIGHUP, blocked
 * first so none is lost) and a timerfd (restart delay or kill grace): no
 * sleeping, so a SIGTERM is acted on at once in every state.  Improves on
 * the original (defect D18): an exec failure is just a young death, the
 * child gets PR_SET_PDEATHSIG, SIGINT and SIGHUP are forwarded, SIGKILL
 * follows a grace period, and the cgroup is thawed after every child exit
 * and before the parent exits.
 */
#include "supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "log.h"

struct sup {
	const struct supervisor_opts *o;
	struct restart_policy policy;
	sigset_t old_mask;
	int sfd, tfd;
	pid_t parent;
	pid_t child;          /* 0 while no child runs */
	uint64_t started_ms;  /* start of the current/last child */
	bool stopping;        /* SIGTERM/SIGINT seen: no more restarts */
	bool done;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t supervisor_restart_delay(struct restart_policy *p, uint64_t started_ms,
				  uint64_t exited_ms)
{
	uint64_t uptime = exited_ms > started_ms ? exited_ms - started_ms : 0;
	uint64_t quick = p->min_interval_ms > SUPERVISOR_QUICK_RUN_MS ? p->min_interval_ms
								       : SUPERVISOR_QUICK_RUN_MS;
	uint64_t gap = p->min_interval_ms;

	p->quick_failures = uptime < quick ? p->quick_failures + 1 : 0;
	if (p->quick_failures >= 2) {
		uint64_t base = p->min_interval_ms > SUPERVISOR_BACKOFF_MIN_MS
					? p->min_interval_ms : SUPERVISOR_BACKOFF_MIN_MS;
		unsigned shift = p->quick_failures - 1 > 20 ? 20 : p->quick_failures - 1;
		uint64_t backoff = base << shift;

		if (backoff > SUPERVISOR_BACKOFF_CAP_MS)
			backoff = SUPERVISOR_BACKOFF_CAP_MS;
		if (backoff > gap)
			gap = backoff;
	}
	return started_ms + gap > exited_ms ? started_ms + gap - exited_ms : 0;
}

bool supervisor_is_child(void)
{
	const char *v = getenv(SUPERVISOR_ENV);

	return v && strcmp(v, "1") == 0;
}

static void thaw(const struct sup *s)
{
	char err[512];

	if (!s->o->cgroup_root)
		return;
	if (cg_thaw_path(s->o->cgroup_root, s->o->cgroup_name, err, sizeof(err)) < 0)
		log_event(LOG_ERROR, "supervisor: cannot thaw the cgroup", LF_STR("detail", err),
			  LF_END);
	else
		log_event(LOG_DEBUG, "supervisor: cgroup thawed",
			  LF_STR("cgroup", s->o->cgroup_name), LF_END);
}

static int arm_timer(const struct sup *s, uint64_t ms)
{
	struct itimerspec its = { 0 };

	its.it_value.tv_sec = (time_t)(ms / 1000);
	its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
	if (ms == 0)
		its.it_value.tv_nsec = 1; /* 0 would disarm: fire now instead */
	return timerfd_settime(s->tfd, 0, &its, NULL) < 0 ? -errno : 0;
}

/* In the forked child: never returns. */
__attribute__((noreturn))
static void exec_child(const struct sup *s)
{
	int fd;

	(void)sigprocmask(SIG_SETMASK, &s->old_mask, NULL);
	/* Die with the supervisor; it may have died before prctl took effect. */
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != s->parent)
		_exit(127);
	fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || dup2(fd, STDIN_FILENO) < 0)
		_exit(127);
	if (fd != STDIN_FILENO)
		close(fd);
	if (setenv(SUPERVISOR_ENV, "1", 1) < 0)
		_exit(127);
	execv(s->o->exe, s->o->argv);
	log_event(LOG_ERROR, "supervisor: cannot execute the daemon", LF_STR("exe", s->o->exe),
		  LF_ERR(-errno), LF_END);
	_exit(127);
}

static void schedule_restart(struct sup *s, uint64_t exited_ms)
{
	uint64_t delay = supervisor_restart_delay(&s->policy, s->started_ms, exited_ms);

	log_event(LOG_INFO, "supervisor: restarting the daemon", LF_U64("restart_in_ms", delay),
		  LF_U64("quick_failures", s->policy.quick_failures), LF_END);
	if (arm_timer(s, delay) < 0) {
		log_event(LOG_ERROR, "supervisor: cannot arm the restart timer", LF_ERR(-errno),
			  LF_END);
		s->done = true;
	}
}

static void start_child(struct sup *s)
{
	pid_t pid;

	s->started_ms = now_ms();
	pid = fork();
	if (pid == 0)
		exec_child(s);
	if (pid < 0) {
		log_event(LOG_ERROR, "supervisor: fork failed", LF_ERR(-errno), LF_END);
		schedule_restart(s, now_ms());
		return;
	}
	s->child = pid;
	log_event(LOG_INFO, "supervisor: daemon started", LF_I64("pid", pid), LF_END);
}

static void on_child_exit(struct sup *s, int status)
{
	uint64_t exited = now_ms();
	uint64_t uptime = exited - s->started_ms;

	if (WIFSIGNALED(status)) {
		const char *name = sigabbrev_np(WTERMSIG(status));

		log_event(LOG_WARN, "supervisor: daemon killed by a signal",
			  LF_I64("pid", s->child), LF_STR("signal", name ? name : "?"),
			  LF_U64("uptime_ms", uptime), LF_END);
	} else {
		enum log_level level = WEXITSTATUS(status) == 0 ? LOG_INFO : LOG_WARN;

		log_event(level, "supervisor: daemon exited", LF_I64("pid", s->child),
			  LF_I64("status", WEXITSTATUS(status)), LF_U64("uptime_ms", uptime),
			  LF_END);
	}
	s->child = 0;
	thaw(s);
	if (s->stopping)
		s->done = true;
	else
		schedule_restart(s, exited);
}

static void reap(struct sup *s)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if (pid == s->child)
			on_child_exit(s, status);
	}
}

static void on_stop_signal(struct sup *s, int sig)
{
	if (!s->child) {
		/* Waiting to restart: nothing to stop. */
		log_event(LOG_INFO, "supervisor: stopping", LF_STR("signal", sigabbrev_np(sig)),
			  LF_END);
		thaw(s);
		s->done = true;
		return;
	}
	log_event(LOG_INFO, "supervisor: stopping the daemon", LF_STR("signal", sigabbrev_np(sig)),
		  LF_I64("pid", s->child), LF_U64("kill_after_ms", s->o->kill_grace_ms), LF_END);
	(void)kill(s->child, sig);
	if (!s->stopping && arm_timer(s, s->o->kill_grace_ms) < 0)
		log_event(LOG_ERROR, "supervisor: cannot arm the kill timer", LF_ERR(-errno),
			  LF_END);
	s->stopping = true;
}

static void on_signal(struct sup *s)
{
	struct signalfd_siginfo si;

	while (read(s->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGCHLD:
			reap(s);
			break;
		case SIGTERM:
		case SIGINT:
			on_stop_signal(s, (int)si.ssi_signo);
			break;
		case SIGHUP:
			if (s->child)
				(void)kill(s->child, SIGHUP);
			log_event(LOG_INFO, "supervisor: SIGHUP",
				  LF_BOOL("forwarded", s->child != 0), LF_END);
			break;
		}
	}
}

static void on_timer(struct sup *s)
{
	uint64_t expirations;

	if (read(s->tfd, &expirations, sizeof(expirations)) < 0)
		return;
	if (s->child && s->stopping) {
		log_event(LOG_WARN, "supervisor: daemon did not stop in time, killing it",
			  LF_I64("pid", s->child), LF_END);
		(void)kill(s->child, SIGKILL);
	} else if (!s->child && !s->stopping) {
		start_child(s);
	}
}

static int setup(struct sup *s)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	/* Query first so old_mask is valid for the restore even on failure. */
	if (sigprocmask(SIG_BLOCK, NULL, &s->old_mask) < 0 ||
	    sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	s->sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (s->sfd < 0)
		return -errno;
	s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (s->tfd < 0)
		return -errno;
	return 0;
}

int supervisor_run(const struct supervisor_opts *o)
{
	struct sup s = { .o = o, .sfd = -1, .tfd = -1, .parent = getpid() };
	int r = setup(&s);

	s.policy.min_interval_ms = o->min_restart_interval_ms;
	if (r < 0) {
		log_event(LOG_ERROR, "supervisor: cannot set up signals and timers", LF_ERR(r),
			  LF_END);
	} else {
		thaw(&s); /* a previous run may have died with the cgroup frozen */
		start_child(&s);
	}
	while (r == 0 && !s.done) {
		struct pollfd pfd[2] = { { .fd = s.sfd, .events = POLLIN },
					 { .fd = s.tfd, .events = POLLIN } };

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			log_event(LOG_ERROR, "supervisor: poll failed", LF_ERR(r), LF_END);
			break;
		}
		if (pfd[0].revents)
			on_signal(&s);
		if (pfd[1].revents && !s.done)
			on_timer(&s);
	}
	if (s.child) {
		/* Only after a failure of the supervisor itself: don't leave it behind. */
		(void)kill(s.child, SIGKILL);
		(void)waitpid(s.child, NULL, 0);
		thaw(&s);
	}
	if (s.sfd >= 0)
		close(s.sfd);
	if (s.tfd >= 0)
		close(s.tfd);
	(void)sigprocmask(SIG_SETMASK, &s.old_mask, NULL);
	if (r == 0)
		log_event(LOG_INFO, "supervisor: stopped", LF_END);
	return r == 0 ? 0 : 1;
}
