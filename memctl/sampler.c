/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sampler.c — periodic memory sampler on a timerfd that the caller polls.
 *
 * The meminfo file stays open and is re-read with pread() into a buffer
 * owned by the sampler, so a tick costs two syscalls and no allocation.
 * A file that is missing or fails is closed and retried at a low rate; the
 * sample says why meanwhile.  Nothing is read that no decision uses: each
 * file more per tick is measurable in the daemon's idle CPU.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "memctl.h"

enum { SRC_MEMINFO, SRC_COUNT };

struct source {
	char *path;             /* NULL: not configured, never read */
	int fd;                 /* -1: not open */
	uint64_t retry_at_ms;   /* when to try opening it again */
	uint64_t check_at_ms;   /* when to check the path still names it */
};

struct mc_sampler {
	struct source src[SRC_COUNT];
	int tfd;
	uint64_t interval_ms;
	bool immediate;
	bool running, in_callback;
	unsigned arm_seq;       /* bumped on every timerfd_settime */
	mc_sample_fn on_sample;
	mc_error_fn on_error;
	void *arg;
	/* meminfo is about 1.5 KiB; a longer file is parsed as far as it
	 * was read (MemTotal is its first line). */
	char buf[8192];
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC cannot fail with a valid pointer. */
	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void report(struct mc_sampler *s, int err, const char *what)
{
	if (s->on_error)
		s->on_error(s->arg, err, what);
}

static void source_close(struct source *src, uint64_t now)
{
	if (src->fd >= 0)
		close(src->fd);
	src->fd = -1;
	src->retry_at_ms = now + MC_SAMPLER_REOPEN_MS;
}

/* A file replaced by a rename, or deleted and created again, leaves our
 * descriptor on the old inode for ever: compare with what the path names
 * now, at most every MC_SAMPLER_REOPEN_MS, and reopen if they differ. */
static void source_check_replaced(struct source *src, uint64_t now)
{
	struct stat open_st, path_st;

	if (src->fd < 0 || now < src->check_at_ms)
		return;
	src->check_at_ms = now + MC_SAMPLER_REOPEN_MS;
	if (fstat(src->fd, &open_st) == 0 && stat(src->path, &path_st) == 0 &&
	    open_st.st_dev == path_st.st_dev && open_st.st_ino == path_st.st_ino)
		return;
	close(src->fd);
	src->fd = -1;
	src->retry_at_ms = now; /* open the new file (if any) right away */
}

/* Reads the whole source (up to the buffer size) into s->buf.  Returns the
 * byte count or -errno; never blocks on a regular, proc or cgroup file. */
static ssize_t source_read(struct mc_sampler *s, struct source *src, uint64_t now)
{
	ssize_t n;

	if (!src->path)
		return -ENOENT;
	source_check_replaced(src, now);
	if (src->fd < 0) {
		if (now < src->retry_at_ms)
			return -EAGAIN;
		src->fd = open(src->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (src->fd < 0) {
			int e = -errno;

			source_close(src, now);
			return e;
		}
	}
	do
		n = pread(src->fd, s->buf, sizeof(s->buf), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		int e = -errno;

		/* E.g. the cgroup was removed: reopening later is the only way
		 * back. */
		source_close(src, now);
		return e;
	}
	return n;
}

static void take_sample(struct mc_sampler *s, struct mc_sample *out)
{
	uint64_t now = now_ms();
	ssize_t n;

	memset(out, 0, sizeof(*out));
	out->ts_ms = now;
	n = source_read(s, &s->src[SRC_MEMINFO], now);
	out->meminfo_read = n >= 0;
	out->mem_total_err = n < 0 ? (int)n
				   : mc_parse_kb_field(s->buf, (size_t)n, "MemTotal",
						       &out->mem_total);
	if (out->mem_total_err)
		out->mem_total = 0;
}

static int arm(struct mc_sampler *s, uint64_t first_ns)
{
	struct itimerspec its = {
		.it_interval = { .tv_sec = (time_t)(s->interval_ms / 1000),
				 .tv_nsec = (long)(s->interval_ms % 1000) * 1000000 },
		.it_value = { .tv_sec = (time_t)(first_ns / 1000000000),
			      .tv_nsec = (long)(first_ns % 1000000000) },
	};

	if (timerfd_settime(s->tfd, 0, &its, NULL) < 0)
		return -errno;
	s->arm_seq++;
	return 0;
}

static int source_init(struct source *src, const char *path, char *err, size_t errlen)
{
	size_t len = strlen(path);

	if (len >= PATH_MAX)
		return mc_fail(err, errlen, -ENAMETOOLONG, "sampler: path too long: %.64s...",
			       path);
	src->path = strdup(path);
	if (!src->path)
		return mc_fail(err, errlen, -ENOMEM, "sampler: out of memory");
	return 0;
}

static int sources_init(struct mc_sampler *s, const struct mc_sampler_config *cfg, char *err,
			size_t errlen)
{
	return source_init(&s->src[SRC_MEMINFO],
			   cfg->meminfo_path ? cfg->meminfo_path : "/proc/meminfo", err, errlen);
}

int mc_sampler_new(const struct mc_sampler_config *cfg, mc_sample_fn on_sample,
		   mc_error_fn on_error, void *arg, struct mc_sampler **out,
		   char *err, size_t errlen)
{
	struct mc_sampler *s;
	int r;

	if (!cfg || !on_sample || !out)
		return mc_fail(err, errlen, -EINVAL, "sampler: missing config or callback");
	if (cfg->interval_ms < MC_SAMPLER_INTERVAL_MIN_MS ||
	    cfg->interval_ms > MC_SAMPLER_INTERVAL_MAX_MS)
		return mc_fail(err, errlen, -EINVAL,
			       "sampler: interval %llu ms is outside %d..%d ms",
			       (unsigned long long)cfg->interval_ms, MC_SAMPLER_INTERVAL_MIN_MS,
			       MC_SAMPLER_INTERVAL_MAX_MS);
	s = calloc(1, sizeof(*s));
	if (!s)
		return mc_fail(err, errlen, -ENOMEM, "sampler: out of memory");
	for (int i = 0; i < SRC_COUNT; i++)
		s->src[i].fd = -1;
	s->interval_ms = cfg->interval_ms;
	s->immediate = cfg->immediate;
	s->on_sample = on_sample;
	s->on_error = on_error;
	s->arg = arg;
	s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->tfd < 0) {
		int e = errno;

		r = mc_fail(err, errlen, -e, "sampler: timerfd_create: %s", strerror(e));
		free(s);
		return r;
	}
	r = sources_init(s, cfg, err, errlen);
	if (r < 0) {
		mc_sampler_free(s);
		return r;
	}
	/* Open now so that the first tick does not pay for it; a file that is
	 * missing is retried later, not treated as an error. */
	for (int i = 0; i < SRC_COUNT; i++)
		(void)source_read(s, &s->src[i], 0);
	*out = s;
	return 0;
}

void mc_sampler_free(struct mc_sampler *s)
{
	if (!s)
		return;
	for (int i = 0; i < SRC_COUNT; i++) {
		if (s->src[i].fd >= 0)
			close(s->src[i].fd);
		free(s->src[i].path);
	}
	if (s->tfd >= 0)
		close(s->tfd);
	free(s);
}

int mc_sampler_fd(const struct mc_sampler *s)
{
	return s->tfd;
}

int mc_sampler_start(struct mc_sampler *s)
{
	int r = arm(s, s->immediate ? 1 : s->interval_ms * 1000000);

	if (r < 0)
		return r;
	s->running = true;
	return 0;
}

bool mc_sampler_running(const struct mc_sampler *s)
{
	return s->running;
}

int mc_sampler_set_interval(struct mc_sampler *s, uint64_t interval_ms)
{
	if (interval_ms < MC_SAMPLER_INTERVAL_MIN_MS || interval_ms > MC_SAMPLER_INTERVAL_MAX_MS)
		return -EINVAL;
	s->interval_ms = interval_ms;
	return s->running ? arm(s, interval_ms * 1000000) : 0;
}

int mc_sampler_read(struct mc_sampler *s, struct mc_sample *out)
{
	take_sample(s, out);
	return 0;
}

/* Whether the tick being handled came so late (several expirations, or the
 * last one more than half a period ago) that keeping the timer's phase
 * would put the next tick too close to this one. */
static bool tick_is_late(const struct mc_sampler *s, uint64_t expirations)
{
	struct itimerspec left;
	uint64_t left_ns;

	if (expirations > 1)
		return true;
	if (timerfd_gettime(s->tfd, &left) < 0)
		return true; /* re-phasing is the safe side */
	left_ns = (uint64_t)left.it_value.tv_sec * 1000000000 + (uint64_t)left.it_value.tv_nsec;
	return left_ns <= s->interval_ms * 1000000 / 2;
}

int mc_sampler_process(struct mc_sampler *s)
{
	struct mc_sample sample;
	uint64_t expirations;
	unsigned seq;
	ssize_t n;
	bool late;
	int r;

	if (s->in_callback)
		return -EBUSY; /* callbacks run serially, never nested */
	n = read(s->tfd, &expirations, sizeof(expirations));
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		r = -errno;
		report(s, r, "read timerfd");
		return r;
	}
	if (n != sizeof(expirations) || expirations == 0) {
		report(s, -EIO, "read timerfd");
		return -EIO;
	}
	if (!s->running)
		return 0;
	late = tick_is_late(s, expirations);
	take_sample(s, &sample);
	sample.missed = expirations - 1;
	seq = s->arm_seq;
	s->in_callback = true;
	r = s->on_sample(s->arg, &sample);
	s->in_callback = false;
	if (r < 0)
		report(s, r, "on_sample");
	/* Re-phase from now unless the callback re-armed us. */
	if (late && s->running && seq == s->arm_seq) {
		r = arm(s, s->interval_ms * 1000000);
		if (r < 0) {
			report(s, r, "re-arm timerfd");
			return r;
		}
	}
	return 0;
}
