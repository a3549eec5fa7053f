/* SPDX-License-Identifier: Apache-2.0 */
/* bench_util.c — clock, samples and file helpers shared by the benchmarks. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_samples_add(struct bench_samples *s, uint64_t ns)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		uint64_t *v = realloc(s->v, cap * sizeof(*v));

		if (!v)
			bench_die("realloc samples");
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = ns;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

void bench_samples_sort(struct bench_samples *s)
{
	if (s->n)
		qsort(s->v, s->n, sizeof(*s->v), cmp_u64);
}

uint64_t bench_pct(const struct bench_samples *s, double p)
{
	size_t rank;

	if (!s->n)
		return 0;
	/* Nearest rank: the smallest value with at least p% at or below it. */
	rank = (size_t)((p / 100.0) * (double)s->n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > s->n)
		rank = s->n;
	return s->v[rank - 1];
}

void bench_samples_free(struct bench_samples *s)
{
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

void bench_samples_report(struct bench_samples *s, const char *label)
{
	bench_samples_dump(s, label);
	bench_samples_sort(s);
	printf("%s_p50_us=%.1f %s_p99_us=%.1f %s_max_us=%.1f %s_n=%zu\n",
	       label, (double)bench_pct(s, 50) / 1e3, label, (double)bench_pct(s, 99) / 1e3,
	       label, (double)bench_pct(s, 100) / 1e3, label, s->n);
}

void bench_samples_dump(const struct bench_samples *s, const char *label)
{
	const char *prefix = getenv("VMI_BENCH_RAW");
	char path[4096];
	FILE *f;

	if (!prefix || !*prefix)
		return;
	snprintf(path, sizeof(path), "%s.%s", prefix, label);
	f = fopen(path, "a");
	if (!f)
		bench_die(path);
	for (size_t i = 0; i < s->n; i++)
		fprintf(f, "%.1f\n", (double)s->v[i] / 1e3);
	if (fclose(f) != 0)
		bench_die(path);
}

void bench_die(const char *msg)
{
	fprintf(stderr, "%s: %s\n", msg, strerror(errno));
	exit(1);
}

uint64_t bench_parse_u64(const char *opt, const char *text)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || end == text || *end || text[0] == '-') {
		fprintf(stderr, "%s: \"%s\" is not a non-negative integer\n", opt, text);
		exit(2);
	}
	return v;
}

int bench_write_file(const char *path, const char *text)
{
	size_t len = strlen(text);
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, len);
	if (n < 0 || (size_t)n != len) {
		int e = n < 0 ? errno : EIO;

		close(fd);
		return -e;
	}
	return close(fd) < 0 ? -errno : 0;
}

int bench_read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	close(fd);
	buf[n] = '\0';
	return (int)n;
}
