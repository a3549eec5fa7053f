/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_util.h — shared helpers of the benchmark programs: a monotonic
 * clock, latency samples with percentiles, and small file helpers.
 * Benchmarks are tools, not daemon code: on a setup failure they print
 * what failed and exit 1.
 */
#ifndef VMI_BENCH_UTIL_H
#define VMI_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* A growable array of durations in nanoseconds. */
struct bench_samples {
	uint64_t *v;
	size_t n, cap;
};

void bench_samples_add(struct bench_samples *s, uint64_t ns);
/* Sorts in place; then bench_pct() may be called. */
void bench_samples_sort(struct bench_samples *s);
/* The p-th percentile (0..100, nearest rank) of sorted samples; 0 if none. */
uint64_t bench_pct(const struct bench_samples *s, double p);
void bench_samples_free(struct bench_samples *s);
/* Prints "<label>_p50_us=… <label>_p99_us=… <label>_max_us=… <label>_n=…"
 * on one line (machine-readable key=value for run.sh). Sorts first. */
void bench_samples_report(struct bench_samples *s, const char *label);

/* Appends every sample (µs, one per line) to "<$VMI_BENCH_RAW>.<label>"
 * when that variable is set, so run.sh can pool several runs. */
void bench_samples_dump(const struct bench_samples *s, const char *label);

/* Prints "msg: strerror(errno)" and exits 1. */
void bench_die(const char *msg) __attribute__((noreturn));
/* Parses a non-negative decimal (exits with a message if malformed). */
uint64_t bench_parse_u64(const char *opt, const char *text);
/* Writes text to path with open(O_TRUNC)+write+close; 0 or -errno. */
int bench_write_file(const char *path, const char *text);
/* Reads up to len-1 bytes of path into buf (NUL-terminated); bytes or -errno. */
int bench_read_file(const char *path, char *buf, size_t len);

#endif
