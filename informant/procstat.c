/* SPDX-License-Identifier: Apache-2.0 */
/*
 * procstat.c — process figures from getrusage(2), getrlimit(2) and /proc,
 * defined as the Prometheus client libraries define them, so dashboards
 * made for any exporter work: CPU from getrusage (microseconds, where
 * /proc/self/stat has clock ticks), the start time from /proc/self/stat's
 * starttime plus the boot time in /proc/stat.
 */
#include "procstat.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static int first_error(int r, int err)
{
	return r < 0 ? r : err;
}

static int read_file(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f)
		return -errno;
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
	return 0;
}

static int read_memory(struct procstat *out)
{
	unsigned long long size, resident;
	long page = sysconf(_SC_PAGESIZE);
	char buf[128];
	int r = read_file("/proc/self/statm", buf, sizeof(buf));

	if (r < 0)
		return r;
	if (sscanf(buf, "%llu %llu", &size, &resident) != 2 || page <= 0)
		return -EINVAL;
	out->virtual_bytes = size * (uint64_t)page;
	out->resident_bytes = resident * (uint64_t)page;
	return 0;
}

static int count_fds(uint64_t *out)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	uint64_t n = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	*out = n ? n - 1 : 0; /* not the directory's own descriptor */
	return 0;
}

/* Boot time ("btime" of /proc/stat, seconds since the epoch) plus the
 * start after boot (field 22 of /proc/self/stat, in clock ticks, counted
 * after the ")" that ends the command name, which may hold spaces).  It
 * never changes: /proc is read once. */
static int start_time(double *out)
{
	static double cached;
	char sys[8192], self[1024], *p;
	unsigned long long btime, ticks;
	long hz = sysconf(_SC_CLK_TCK);
	int r;

	if (cached == 0) {
		r = read_file("/proc/stat", sys, sizeof(sys));
		if (r == 0)
			r = read_file("/proc/self/stat", self, sizeof(self));
		if (r < 0)
			return r;
		p = strstr(sys, "\nbtime ");
		if (!p || sscanf(p + 7, "%llu", &btime) != 1)
			return -EINVAL;
		p = strrchr(self, ')');
		for (int field = 2; field < 22 && p; field++)
			p = strchr(p + 1, ' ');
		if (!p || sscanf(p + 1, "%llu", &ticks) != 1 || hz <= 0)
			return -EINVAL;
		cached = (double)btime + (double)ticks / (double)hz;
	}
	*out = cached;
	return 0;
}

int procstat_read(struct procstat *out)
{
	struct rusage ru;
	struct rlimit rl;
	int err = 0;

	memset(out, 0, sizeof(*out));
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		out->cpu_seconds = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
				   ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
	else
		err = -errno;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		out->max_fds = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
	else
		err = first_error(err, -errno);
	err = first_error(err, read_memory(out));
	err = first_error(err, count_fds(&out->open_fds));
	err = first_error(err, start_time(&out->start_time_seconds));
	return err;
}
