/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The sampler against the real /proc/meminfo and temporary meminfo files,
 * driven by a tiny epoll loop: MemTotal and its error, in-place rewrites
 * and replacements, coalescing of missed ticks, the immediate option, the
 * error hook, and files that are missing or hold garbage.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "memctl.h"
#include "testutil.h"

#define MAX_CALLS 256

struct rec {
	size_t calls;
	uint64_t ts[MAX_CALLS], missed[MAX_CALLS];
	struct mc_sample last;
	unsigned sleep_first_ms;    /* the first callback takes this long */
	int ret;                    /* what the callback returns */
	size_t rearm_at;            /* calls after which the callback sets 500 ms */
	size_t done_at;             /* the loop ends after this many calls */
	struct mc_sampler *sampler;
	const char *rewrite_path;   /* first callback rewrites this file */
	const char *rewrite_text;
	size_t errors;
	int last_err;
	const char *last_what;
};

static char tmpdir[64];

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Writes text into dir/name in place (same inode), as tests and the demo
 * rewrite meminfo. */
static void put_file(const char *name, const char *text)
{
	char path[128];
	int fd;

	assert_true(snprintf(path, sizeof(path), "%s/%s", tmpdir, name) < (int)sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static const char *tmp_path(char *buf, size_t len, const char *name)
{
	assert_true(snprintf(buf, len, "%s/%s", tmpdir, name) < (int)len);
	return buf;
}

static int on_sample(void *arg, const struct mc_sample *s)
{
	struct rec *r = arg;

	if (r->calls < MAX_CALLS) {
		r->ts[r->calls] = s->ts_ms;
		r->missed[r->calls] = s->missed;
	}
	r->calls++;
	r->last = *s;
	if (r->calls == 1 && r->sleep_first_ms)
		sleep_ms(r->sleep_first_ms);
	if (r->calls == 1 && r->rewrite_path)
		put_file(r->rewrite_path, r->rewrite_text);
	if (r->rearm_at && r->calls == r->rearm_at)
		assert_int_equal(mc_sampler_set_interval(r->sampler, 500), 0);
	return r->ret;
}

static void on_error(void *arg, int err, const char *what)
{
	struct rec *r = arg;

	r->errors++;
	r->last_err = err;
	r->last_what = what;
}

/* Polls the sampler for up to ms, or until r->done_at calls were seen. */
static void run_loop(struct mc_sampler *s, struct rec *r, uint64_t ms)
{
	struct epoll_event ev = { .events = EPOLLIN };
	uint64_t end = mono_ms() + ms, now;
	int ep = epoll_create1(EPOLL_CLOEXEC);

	assert_true(ep >= 0);
	assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, mc_sampler_fd(s), &ev), 0);
	while ((now = mono_ms()) < end && !(r->done_at && r->calls >= r->done_at)) {
		int n = epoll_wait(ep, &ev, 1, (int)(end - now));

		assert_true(n >= 0 || errno == EINTR);
		if (n > 0)
			assert_int_equal(mc_sampler_process(s), 0);
	}
	close(ep);
}

static struct mc_sampler *new_sampler(const struct mc_sampler_config *cfg, struct rec *r)
{
	struct mc_sampler *s = NULL;
	char err[256] = "";

	assert_int_equal(mc_sampler_new(cfg, on_sample, on_error, r, &s, err, sizeof(err)), 0);
	r->sampler = s;
	return s;
}

/* A new sampler, started and polled for up to ms. */
static struct mc_sampler *run_new(const struct mc_sampler_config *cfg, struct rec *r, uint64_t ms)
{
	struct mc_sampler *s = new_sampler(cfg, r);

	assert_int_equal(mc_sampler_start(s), 0);
	run_loop(s, r, ms);
	return s;
}

static void test_real_meminfo(void **state)
{
	struct mc_sampler_config cfg = { .interval_ms = 100 };
	struct rec r = { 0 };
	struct mc_sample smp;
	struct mc_sampler *s;

	(void)state;
	s = new_sampler(&cfg, &r);
	assert_int_equal(mc_sampler_read(s, &smp), 0);
	assert_true(smp.meminfo_read);
	assert_int_equal(smp.mem_total_err, 0);
	assert_true(smp.mem_total > 0);
	assert_true(smp.ts_ms > 0 && smp.missed == 0);
	assert_int_equal(r.calls, 0); /* a one-shot read calls nothing */
	mc_sampler_free(s);
}

static void test_rewrite_meminfo_in_place(void **state)
{
	char path[128];
	struct mc_sampler_config cfg = { .interval_ms = 20 };
	struct rec r = { .rewrite_path = "meminfo", .done_at = 2 };
	struct mc_sampler *s;

	(void)state;
	put_file("meminfo", "MemTotal: 1000 kB\nMemFree: 1 kB\nMemAvailable: 500 kB\n");
	r.rewrite_text = "MemTotal: 2000 kB\nMemFree: 1 kB\nMemAvailable: 1500 kB\n";
	cfg.meminfo_path = tmp_path(path, sizeof(path), "meminfo");
	s = run_new(&cfg, &r, 1000);
	assert_int_equal(r.calls, 2);
	assert_int_equal(r.last.mem_total_err, 0);
	assert_true(r.last.mem_total == 2000 * 1024);
	mc_sampler_free(s);
}

static void test_coalescing(void **state)
{
	/* Not a multiple of the interval: keeping the timer's phase after the
	 * slow call would put a tick 5 ms after the coalesced one. */
	const uint64_t interval = 20, slow = 155;
	struct mc_sampler_config cfg = { .interval_ms = interval };
	struct rec r = { .sleep_first_ms = (unsigned)slow };
	uint64_t t0, elapsed, max_missed = 0;
	struct mc_sampler *s;

	(void)state;
	s = new_sampler(&cfg, &r);
	t0 = mono_ms();
	assert_int_equal(mc_sampler_start(s), 0);
	run_loop(s, &r, 400);
	elapsed = mono_ms() - t0;
	print_message("%zu callbacks in %llu ms\n", r.calls, (unsigned long long)elapsed);
	assert_true(r.calls >= 4 && r.calls < MAX_CALLS);
	for (size_t i = 1; i < r.calls; i++) {
		print_message("  +%llu ms, missed %llu\n",
			      (unsigned long long)(r.ts[i] - r.ts[i - 1]),
			      (unsigned long long)r.missed[i]);
		/* No catch-up burst: ms timestamps, so allow 1 ms of rounding. */
		assert_true(r.ts[i] - r.ts[i - 1] + 1 >= interval / 2);
		if (r.missed[i] > max_missed)
			max_missed = r.missed[i];
	}
	/* The ticks lost in the slow callback came back as one sample... */
	assert_true(max_missed >= slow / interval - 2);
	/* ... not as calls: a burst would make about elapsed / interval. */
	assert_true(r.calls <= (elapsed - slow) / interval + 2);
	mc_sampler_free(s);
}

static void test_immediate(void **state)
{
	struct mc_sampler_config cfg = { .interval_ms = 1000, .immediate = true };
	struct rec r = { .done_at = 1 };
	struct mc_sampler *s;
	uint64_t t0;

	(void)state;
	s = new_sampler(&cfg, &r);
	assert_int_equal(r.calls, 0);
	t0 = mono_ms();
	assert_int_equal(mc_sampler_start(s), 0);
	assert_int_equal(r.calls, 0); /* never from inside start */
	run_loop(s, &r, 900);
	assert_int_equal(r.calls, 1);
	assert_true(r.ts[0] - t0 < cfg.interval_ms);
	mc_sampler_free(s);

	/* Without it, nothing before the first interval. */
	cfg.immediate = false;
	cfg.interval_ms = 300;
	r = (struct rec){ .done_at = 1 };
	s = new_sampler(&cfg, &r);
	assert_int_equal(mc_sampler_start(s), 0);
	run_loop(s, &r, 100);
	assert_int_equal(r.calls, 0);
	assert_int_equal(mc_sampler_process(s), 0); /* nothing due: no call */
	assert_int_equal(r.calls, 0);
	mc_sampler_free(s);
}

static void test_error_hook(void **state)
{
	struct mc_sampler_config cfg = { .interval_ms = 10, .immediate = true };
	struct rec r = { .ret = -EIO, .done_at = 3 };
	struct mc_sampler *s;

	(void)state;
	/* Goes on after an error. */
	s = run_new(&cfg, &r, 1000);
	assert_int_equal(r.calls, 3);
	assert_int_equal(r.errors, 3);
	assert_int_equal(r.last_err, -EIO);
	assert_string_equal(r.last_what, "on_sample");
	assert_true(mc_sampler_running(s));
	mc_sampler_free(s);

}

static void test_interval_inside_callback(void **state)
{
	struct mc_sampler_config cfg = { .interval_ms = 10, .immediate = true };
	struct rec r = { .rearm_at = 2 };
	struct mc_sampler *s;

	(void)state;
	/* A longer interval set inside the callback takes effect from now. */
	s = run_new(&cfg, &r, 300);
	assert_int_equal(r.calls, 2);
	assert_true(mc_sampler_running(s));
	assert_int_equal(r.errors, 0);
	r = (struct rec){ .sampler = s };
	assert_int_equal(mc_sampler_start(s), 0);
	assert_int_equal(mc_sampler_set_interval(s, 500), 0);
	run_loop(s, &r, 150);
	assert_int_equal(r.calls, 0);
	assert_int_equal(mc_sampler_set_interval(s, 0), -EINVAL);
	assert_int_equal(mc_sampler_set_interval(s, MC_SAMPLER_INTERVAL_MAX_MS + 1), -EINVAL);
	mc_sampler_free(s);
}

static void test_missing_and_garbage_files(void **state)
{
	char meminfo[128];
	struct mc_sampler_config cfg = { .interval_ms = 100 };
	struct rec r = { 0 };
	struct mc_sample smp;
	struct mc_sampler *s;

	(void)state;
	cfg.meminfo_path = tmp_path(meminfo, sizeof(meminfo), "late-meminfo");
	s = new_sampler(&cfg, &r);
	mc_sampler_read(s, &smp);
	assert_false(smp.meminfo_read);
	assert_int_equal(smp.mem_total_err, -ENOENT);
	assert_true(smp.mem_total == 0);

	/* A file that appears is picked up, but only at the low retry rate. */
	put_file("late-meminfo", "MemTotal: 8 kB\nMemAvailable: 4 kB\n");
	mc_sampler_read(s, &smp);
	assert_false(smp.meminfo_read);
	sleep_ms(MC_SAMPLER_REOPEN_MS + 20);
	mc_sampler_read(s, &smp);
	assert_true(smp.meminfo_read);
	assert_int_equal(smp.mem_total_err, 0);
	assert_true(smp.mem_total == 8192);

	/* No MemTotal line, torn or empty contents: the parser's error, read
	 * true — the caller can tell "no file" from "bad file". */
	put_file("late-meminfo", "MemFree: 8 kB\n");
	mc_sampler_read(s, &smp);
	assert_true(smp.meminfo_read);
	assert_int_equal(smp.mem_total_err, -ENOENT);
	put_file("late-meminfo", "MemTotal: 8");
	mc_sampler_read(s, &smp);
	assert_int_equal(smp.mem_total_err, -EINVAL);
	assert_true(smp.mem_total == 0);
	put_file("late-meminfo", "");
	mc_sampler_read(s, &smp);
	assert_int_equal(smp.mem_total_err, -ENOENT);
	mc_sampler_free(s);
}

/* Replaced by rename (the usual atomic update): the new inode is read
 * within the reopen period. */
static void test_meminfo_replaced(void **state)
{
	char path[128], tmp[128];
	struct mc_sampler_config cfg = { .interval_ms = 100 };
	struct rec r = { 0 };
	struct mc_sample smp;
	struct mc_sampler *s;

	(void)state;
	put_file("meminfo", "MemTotal: 1000 kB\n");
	cfg.meminfo_path = tmp_path(path, sizeof(path), "meminfo");
	s = new_sampler(&cfg, &r);
	mc_sampler_read(s, &smp);
	assert_true(smp.mem_total == 1000 * 1024);
	put_file("meminfo.new", "MemTotal: 3000 kB\n");
	assert_int_equal(rename(tmp_path(tmp, sizeof(tmp), "meminfo.new"), path), 0);
	sleep_ms(MC_SAMPLER_REOPEN_MS + 20);
	mc_sampler_read(s, &smp);
	assert_true(smp.mem_total == 3000 * 1024);
	mc_sampler_free(s);
}

static void test_config_errors(void **state)
{
	char longdir[5000];
	struct mc_sampler_config cfg = { .interval_ms = 0 };
	struct mc_sampler *s = NULL;
	char err[256] = "";

	(void)state;
	assert_int_equal(mc_sampler_new(&cfg, on_sample, NULL, NULL, &s, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "interval"));
	cfg.interval_ms = MC_SAMPLER_INTERVAL_MAX_MS + 1;
	assert_int_equal(mc_sampler_new(&cfg, on_sample, NULL, NULL, &s, err, sizeof(err)),
			 -EINVAL);
	cfg.interval_ms = 100;
	assert_int_equal(mc_sampler_new(&cfg, NULL, NULL, NULL, &s, err, sizeof(err)), -EINVAL);
	memset(longdir, 'a', sizeof(longdir) - 1);
	longdir[0] = '/';
	longdir[sizeof(longdir) - 1] = '\0';
	cfg.meminfo_path = longdir;
	err[0] = '\0';
	assert_int_equal(mc_sampler_new(&cfg, on_sample, NULL, NULL, &s, err, sizeof(err)),
			 -ENAMETOOLONG);
	assert_true(err[0] != '\0');
	assert_null(s);
	mc_sampler_free(NULL);
}

static int make_tmpdir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/memctl-test-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
	static const char *const names[] = { "meminfo", "meminfo.new", "late-meminfo" };
	char path[128];

	(void)state;
	for (size_t i = 0; i < N_ELEMS(names); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
		unlink(path);
	}
	return rmdir(tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_meminfo),
		cmocka_unit_test(test_meminfo_replaced),
		cmocka_unit_test(test_rewrite_meminfo_in_place),
		cmocka_unit_test(test_coalescing),
		cmocka_unit_test(test_immediate),
		cmocka_unit_test(test_error_hook),
		cmocka_unit_test(test_interval_inside_callback),
		cmocka_unit_test(test_missing_and_garbage_files),
		cmocka_unit_test(test_config_errors),
	};

	return cmocka_run_group_tests_name("memctl-sampler", tests, make_tmpdir, remove_tmpdir);
}
