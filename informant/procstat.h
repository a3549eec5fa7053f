/* SPDX-License-Identifier: Apache-2.0 */
/*
 * procstat.h — the daemon's own process figures for the standard
 * Prometheus process_* families (CPU time, memory, file descriptors, start
 * time), read when /metrics is served.
 */
#ifndef VMI_PROCSTAT_H
#define VMI_PROCSTAT_H

#include <stdint.h>

struct procstat {
	double cpu_seconds;          /* user + system, this process's threads */
	uint64_t resident_bytes;     /* /proc/self/statm resident x page size */
	uint64_t virtual_bytes;      /* /proc/self/statm size x page size */
	uint64_t open_fds;           /* entries of /proc/self/fd */
	uint64_t max_fds;            /* soft RLIMIT_NOFILE */
	double start_time_seconds;   /* since the Unix epoch */
};

/* Fills what it can read; a figure it cannot read stays 0.  Returns 0, or
 * the first -errno met. */
int procstat_read(struct procstat *out);

#endif
