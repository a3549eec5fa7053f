/* SPDX-License-Identifier: Apache-2.0 */
/* Supervisor: restart policy numbers; a real supervisor (forked from the
 * test) running sup-child: restarts a dying child no more often than
 * min_restart_interval, thaws a fake cgroup after each death, forwards
 * SIGHUP, exits 0 on SIGTERM without leaving a child, escalates to
 * SIGKILL, survives exec failures, stops at once during the restart
 * delay, and the child dies with the supervisor (PR_SET_PDEATHSIG). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "supervisor.h"

#define WAIT_MS 10000 /* upper bound for anything the tests wait for */

static const char *child_exe;

struct fixture {
	char dir[64];
	char log[256];     /* sup-child's log */
	char suplog[256];  /* the supervisor's stderr */
	char freeze[256];  /* <dir>/cg/cgroup.freeze */
	pid_t sup;
};

static void pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int count_in(const char *path, const char *what)
{
	FILE *f = fopen(path, "r");
	char line[8192];
	int n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, what) != NULL;
	fclose(f);
	return n;
}

/* Polls until `what` occurs `n` times in path; fails after WAIT_MS. */
static void wait_for(const char *path, const char *what, int n)
{
	for (int waited = 0; count_in(path, what) < n; waited += 10) {
		if (waited > WAIT_MS)
			fail_msg("timed out waiting for %d x \"%s\" in %s", n, what, path);
		pause_ms(10);
	}
}

static char *read_file(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	char cg[128];
	FILE *f;

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/vmi-sup-XXXXXX");
	if (!fx || !mkdtemp(fx->dir))
		return -1;
	snprintf(fx->log, sizeof(fx->log), "%s/child.log", fx->dir);
	snprintf(fx->suplog, sizeof(fx->suplog), "%s/sup.log", fx->dir);
	snprintf(cg, sizeof(cg), "%s/cg", fx->dir);
	snprintf(fx->freeze, sizeof(fx->freeze), "%s/cgroup.freeze", cg);
	if (mkdir(cg, 0755) < 0 || !(f = fopen(fx->freeze, "w")))
		return -1;
	fputs("0", f);
	fclose(f);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	char cmd[128];

	if (fx->sup > 0) {
		kill(fx->sup, SIGKILL);
		waitpid(fx->sup, NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", fx->dir);
	free(fx);
	return 0;
}

/* Forks a supervisor running `exe LOG MODE FREEZE` with its stderr in suplog. */
static void start_supervisor(struct fixture *fx, const char *exe, const char *mode,
			     uint64_t min_interval_ms, uint64_t grace_ms)
{
	fx->sup = fork();
	assert_true(fx->sup >= 0);
	if (fx->sup == 0) {
		char *argv[] = { (char *)exe, fx->log, (char *)mode, fx->freeze, NULL };
		struct supervisor_opts o = {
			.exe = exe, .argv = argv, .min_restart_interval_ms = min_interval_ms,
			.kill_grace_ms = grace_ms, .cgroup_root = fx->dir, .cgroup_name = "cg",
		};
		int fd = open(fx->suplog, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
			_exit(120);
		log_setup(LOG_DEBUG, LOG_FORMAT_JSON);
		_exit(supervisor_run(&o));
	}
}

/* Waits (bounded) for the supervisor to exit; returns its exit status. */
static int wait_supervisor(struct fixture *fx)
{
	int status;

	for (int waited = 0; waited <= WAIT_MS; waited += 10) {
		pid_t r = waitpid(fx->sup, &status, WNOHANG);

		if (r == fx->sup) {
			fx->sup = 0;
			assert_true(WIFEXITED(status));
			return WEXITSTATUS(status);
		}
		pause_ms(10);
	}
	fail_msg("supervisor did not exit");
	return -1;
}

/* The pid and monotonic start time of the n-th "start" line (0-based). */
static void nth_start(const char *log, int n, int *pid, long long *ms, char *env, char *in)
{
	FILE *f = fopen(log, "r");
	char line[256];

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "start ", 6) == 0 && n-- == 0) {
			int got = sscanf(line, "start %d %lld %15s %15s", pid, ms, env, in);

			assert_int_equal(got, 4);
			fclose(f);
			return;
		}
	}
	fclose(f);
	fail_msg("no start line %d", n);
}

static bool process_gone(pid_t pid)
{
	return kill(pid, 0) < 0 && errno == ESRCH;
}

static void test_restart_policy(void **state)
{
	struct restart_policy p = { .min_interval_ms = 5000 };

	/* Died after 1 s: wait until 5 s after its start. */
	assert_int_equal(supervisor_restart_delay(&p, 1000, 2000), 4000);
	assert_int_equal(p.quick_failures, 1);
	/* Dying young again: back-off 10 s, 20 s, 40 s, then the 60 s cap. */
	assert_int_equal(supervisor_restart_delay(&p, 0, 0), 10000);
	assert_int_equal(supervisor_restart_delay(&p, 0, 0), 20000);
	assert_int_equal(supervisor_restart_delay(&p, 0, 0), 40000);
	assert_int_equal(supervisor_restart_delay(&p, 0, 0), 60000);
	for (int i = 0; i < 100; i++)
		assert_int_equal(supervisor_restart_delay(&p, 0, 0), 60000);
	/* A long run resets the count: restart at once. */
	assert_int_equal(supervisor_restart_delay(&p, 0, 3600000), 0);
	assert_int_equal(p.quick_failures, 0);
	/* min_restart_interval 0: the first death restarts at once, then the
	 * back-off starts at 100 ms so a failing exec never spins. */
	p = (struct restart_policy){ .min_interval_ms = 0 };
	assert_int_equal(supervisor_restart_delay(&p, 0, 5), 0);
	assert_int_equal(supervisor_restart_delay(&p, 0, 5), 195);
	assert_int_equal(supervisor_restart_delay(&p, 0, 5), 395);
	/* A min interval above the cap is still honoured. */
	p = (struct restart_policy){ .min_interval_ms = 3600000 };
	assert_int_equal(supervisor_restart_delay(&p, 0, 0), 3600000);
	assert_int_equal(supervisor_restart_delay(&p, 0, 0), 3600000);
}

static void test_restarts_thaws_and_stops(void **state)
{
	struct fixture *fx = *state;
	long long t0, t1, t2;
	int pid0, pid1, pid2;
	char env[16], in[16], buf[64];

	start_supervisor(fx, child_exe, "die-2", 300, 5000);
	wait_for(fx->log, "start ", 3);
	nth_start(fx->log, 0, &pid0, &t0, env, in);
	nth_start(fx->log, 1, &pid1, &t1, env, in);
	nth_start(fx->log, 2, &pid2, &t2, env, in);
	assert_string_equal(env, "1");
	assert_string_equal(in, "null");
	/* Starts are at least min_restart_interval apart (20 ms slack for exec). */
	if (t1 - t0 < 280 || t2 - t1 < 280)
		fail_msg("restarts too close: %lld ms, %lld ms", t1 - t0, t2 - t1);
	/* The second young death doubled the wait. */
	assert_true(t2 - t1 >= 580);
	/* Each dying child froze the fake cgroup; the supervisor thawed it. */
	assert_string_equal(read_file(fx->freeze, buf, sizeof(buf)), "0");
	assert_int_equal(count_in(fx->suplog, "\"status\":3"), 2);
	assert_int_equal(count_in(fx->suplog, "restart_in_ms"), 2);
	/* SIGHUP reaches the running child. */
	assert_int_equal(kill(fx->sup, SIGHUP), 0);
	wait_for(fx->log, "hup ", 1);
	/* SIGTERM: forwarded, child exits, supervisor exits 0, nothing left. */
	assert_int_equal(kill(fx->sup, SIGTERM), 0);
	assert_int_equal(wait_supervisor(fx), 0);
	assert_int_equal(count_in(fx->log, "term "), 1);
	assert_true(process_gone(pid2));
	assert_int_equal(count_in(fx->log, "start "), 3);
}

static void test_sigkill_after_grace(void **state)
{
	struct fixture *fx = *state;
	long long t;
	int pid;
	char env[16], in[16];

	start_supervisor(fx, child_exe, "stubborn", 0, 200);
	wait_for(fx->log, "start ", 1);
	nth_start(fx->log, 0, &pid, &t, env, in);
	pause_ms(50); /* let the child install its SIG_IGN */
	assert_int_equal(kill(fx->sup, SIGINT), 0);
	assert_int_equal(wait_supervisor(fx), 0);
	assert_true(process_gone(pid));
	assert_int_equal(count_in(fx->suplog, "did not stop in time"), 1);
	assert_int_equal(count_in(fx->suplog, "\"signal\":\"KILL\""), 1);
}

static void test_exec_failure_does_not_stall(void **state)
{
	struct fixture *fx = *state;

	start_supervisor(fx, "/nonexistent/vm-informant", "live", 0, 1000);
	wait_for(fx->suplog, "\"status\":127", 3);
	assert_true(count_in(fx->suplog, "cannot execute the daemon") >= 3);
	assert_int_equal(kill(fx->sup, SIGTERM), 0);
	assert_int_equal(wait_supervisor(fx), 0);
}

static void test_sigterm_during_restart_delay(void **state)
{
	struct fixture *fx = *state;
	struct timespec a, b;
	char buf[64];

	start_supervisor(fx, child_exe, "die-100", 5000, 1000);
	wait_for(fx->suplog, "restart_in_ms", 1);
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(kill(fx->sup, SIGTERM), 0);
	assert_int_equal(wait_supervisor(fx), 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	/* Well before the ~5 s restart delay would have ended: no new child. */
	assert_true(b.tv_sec - a.tv_sec < 4);
	assert_int_equal(count_in(fx->log, "start "), 1);
	assert_string_equal(read_file(fx->freeze, buf, sizeof(buf)), "0");
}

static void test_child_dies_with_supervisor(void **state)
{
	struct fixture *fx = *state;
	long long t;
	int pid, status;
	char env[16], in[16];

	start_supervisor(fx, child_exe, "live", 0, 1000);
	wait_for(fx->log, "start ", 1);
	nth_start(fx->log, 0, &pid, &t, env, in);
	assert_int_equal(kill(fx->sup, SIGKILL), 0);
	assert_int_equal(waitpid(fx->sup, &status, 0), fx->sup);
	fx->sup = 0;
	/* We are the subreaper: the orphan is ours to reap once it got SIGTERM. */
	for (int waited = 0; waitpid(pid, &status, WNOHANG) != pid; waited += 10) {
		if (waited > WAIT_MS) {
			kill(pid, SIGKILL);
			fail_msg("child outlived its supervisor");
		}
		pause_ms(10);
	}
	assert_int_equal(count_in(fx->log, "term "), 1);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_restart_policy),
		cmocka_unit_test_setup_teardown(test_restarts_thaws_and_stops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigkill_after_grace, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exec_failure_does_not_stall, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sigterm_during_restart_delay, setup, teardown),
		cmocka_unit_test_setup_teardown(test_child_dies_with_supervisor, setup, teardown),
	};

	if (argc < 2) {
		fprintf(stderr, "usage: %s PATH-OF-sup-child\n", argv[0]);
		return 2;
	}
	child_exe = argv[1];
	/* Orphaned grandchildren come to us, so the tests can see them die. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
