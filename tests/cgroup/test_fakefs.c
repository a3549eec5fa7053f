/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cgroup object and the watcher on a plain directory holding the six
 * files (what the daemon's tests and the demo use instead of cgroupfs).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cgroup.h"

#define EVENTS_FMT "low 0\nhigh %llu\nmax 0\noom 0\noom_kill 0\n"

struct fixture {
	char root[64];
	char dir[128];
	struct cg *cg;
	char err[512];
};

static void put(const struct fixture *f, const char *file, const char *text)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", f->dir, file);
	/* In place, like the kernel and the tests' rewrites: same inode. */
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(close(fd), 0);
}

static void get(const struct fixture *f, const char *file, char *buf, size_t len)
{
	char path[256];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", f->dir, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	n = read(fd, buf, len - 1);
	assert_true(n >= 0);
	buf[n] = '\0';
	close(fd);
}

static void put_high(const struct fixture *f, unsigned long long high)
{
	char text[128];

	snprintf(text, sizeof(text), EVENTS_FMT, high);
	put(f, "memory.events", text);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	snprintf(f->root, sizeof(f->root), "/tmp/vmi-cgtest-XXXXXX");
	if (!mkdtemp(f->root))
		return -1;
	snprintf(f->dir, sizeof(f->dir), "%s/pg", f->root);
	if (mkdir(f->dir, 0755) < 0)
		return -1;
	put(f, "memory.current", "104857600\n");
	put(f, "memory.high", "max\n");
	put(f, "memory.max", "max\n");
	put_high(f, 5);
	put(f, "cgroup.freeze", "1\n");  /* as if a crash left it frozen */
	put(f, "cgroup.events", "populated 1\nfrozen 1\n");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	const char *files[] = { "memory.current", "memory.high", "memory.max", "memory.events",
				"cgroup.freeze", "cgroup.events", "tmp" };
	char path[256];

	cg_close(f->cg, f->err, sizeof(f->err));
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", f->dir, files[i]);
		unlink(path);
	}
	rmdir(f->dir);
	rmdir(f->root);
	free(f);
	return 0;
}

static void open_cg(struct fixture *f)
{
	int rc = cg_open(f->root, "pg", &f->cg, f->err, sizeof(f->err));

	if (rc)
		print_error("cg_open: %s\n", f->err);
	assert_int_equal(rc, 0);
}

static void test_open_thaws_and_reads(void **state)
{
	struct fixture *f = *state;
	char buf[64];
	uint64_t v;
	bool frozen;

	open_cg(f);
	get(f, "cgroup.freeze", buf, sizeof(buf));
	assert_string_equal(buf, "0");
	assert_false(cg_is_cgroupfs(f->cg));
	assert_string_equal(cg_path(f->cg), f->dir);
	assert_int_equal(cg_read_current(f->cg, &v, f->err, sizeof(f->err)), 0);
	assert_true(v == 104857600);
	assert_int_equal(cg_read_high(f->cg, &v, f->err, sizeof(f->err)), 0);
	assert_true(v == CG_UNLIMITED);
	assert_int_equal(cg_read_max(f->cg, &v, f->err, sizeof(f->err)), 0);
	assert_true(v == CG_UNLIMITED);
	assert_int_equal(cg_read_frozen(f->cg, &frozen, f->err, sizeof(f->err)), 0);
	assert_true(frozen);   /* the plain file says so; nothing else changes it */
}

static void test_open_errors(void **state)
{
	struct fixture *f = *state;
	struct cg *cg = (struct cg *)f;
	char path[256];

	assert_int_equal(cg_open(f->root, "nope", &cg, f->err, sizeof(f->err)), -ENOENT);
	assert_null(cg);
	assert_non_null(strstr(f->err, "/nope"));
	assert_int_equal(cg_open(f->root, "../etc", &cg, f->err, sizeof(f->err)), -EINVAL);
	assert_int_equal(cg_open(f->root, "/pg", &cg, f->err, sizeof(f->err)), -EINVAL);
	assert_int_equal(cg_open(f->root, "", &cg, f->err, sizeof(f->err)), -EINVAL);
	snprintf(path, sizeof(path), "%s/memory.events", f->dir);
	unlink(path);
	assert_int_equal(cg_open(f->root, "pg", &cg, f->err, sizeof(f->err)), -ENOENT);
	assert_non_null(strstr(f->err, "memory.events"));
	put_high(f, 0);
}

static void test_limits_and_freeze_write_files(void **state)
{
	struct fixture *f = *state;
	char buf[64];

	open_cg(f);
	assert_int_equal(cg_write_max(f->cg, 1032052736, f->err, sizeof(f->err)), 0);
	assert_int_equal(cg_write_high(f->cg, 927195136, f->err, sizeof(f->err)), 0);
	get(f, "memory.max", buf, sizeof(buf));
	assert_string_equal(buf, "1032052736");
	get(f, "memory.high", buf, sizeof(buf));
	assert_string_equal(buf, "927195136");
	assert_int_equal(cg_write_high(f->cg, CG_UNLIMITED, f->err, sizeof(f->err)), 0);
	get(f, "memory.high", buf, sizeof(buf));
	assert_string_equal(buf, "max");
	assert_int_equal(cg_freeze(f->cg, f->err, sizeof(f->err)), 0);
	get(f, "cgroup.freeze", buf, sizeof(buf));
	assert_string_equal(buf, "1");
	assert_int_equal(cg_thaw(f->cg, f->err, sizeof(f->err)), 0);
	get(f, "cgroup.freeze", buf, sizeof(buf));
	assert_string_equal(buf, "0");
	/* Closing thaws too. */
	assert_int_equal(cg_freeze(f->cg, f->err, sizeof(f->err)), 0);
	assert_int_equal(cg_close(f->cg, f->err, sizeof(f->err)), 0);
	f->cg = NULL;
	get(f, "cgroup.freeze", buf, sizeof(buf));
	assert_string_equal(buf, "0");
}

static void test_thaw_path(void **state)
{
	struct fixture *f = *state;
	char buf[64];

	assert_int_equal(cg_thaw_path(f->root, "pg", f->err, sizeof(f->err)), 0);
	get(f, "cgroup.freeze", buf, sizeof(buf));
	assert_string_equal(buf, "0");
	assert_int_equal(cg_thaw_path(f->root, "gone", f->err, sizeof(f->err)), -ENOENT);
	assert_non_null(strstr(f->err, "gone"));
}

static bool readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static uint64_t process(struct fixture *f)
{
	uint64_t n = 99;
	int rc = cg_watch_process(f->cg, &n, f->err, sizeof(f->err));

	if (rc)
		print_error("cg_watch_process: %s\n", f->err);
	assert_int_equal(rc, 0);
	return n;
}

static void test_watch_growth_burst_reset(void **state)
{
	struct fixture *f = *state;
	uint64_t n;

	open_cg(f);
	assert_int_equal(cg_watch_fd(f->cg), -1);
	assert_int_equal(cg_watch_start(f->cg, f->err, sizeof(f->err)), 0);
	assert_true(cg_watch_fd(f->cg) >= 0);
	assert_false(readable(cg_watch_fd(f->cg)));
	put_high(f, 7);
	assert_true(readable(cg_watch_fd(f->cg)));
	assert_true(process(f) == 2);
	assert_false(readable(cg_watch_fd(f->cg)));
	assert_true(process(f) == 0);
	/* A burst before processing is one batch. */
	put_high(f, 8);
	put_high(f, 9);
	put_high(f, 12);
	assert_true(process(f) == 5);
	assert_false(readable(cg_watch_fd(f->cg)));
	/* Going backwards is a reset: report nothing, count from there. */
	put_high(f, 3);
	assert_true(process(f) == 0);
	put_high(f, 4);
	assert_true(process(f) == 1);
	/* The safety-net poll sees a change too, without a notification. */
	put_high(f, 10);
	assert_int_equal(cg_watch_poll(f->cg, &n, f->err, sizeof(f->err)), 0);
	assert_true(n == 6);
	assert_int_equal(cg_watch_start(f->cg, f->err, sizeof(f->err)), -EALREADY);
}

/* Inotify instances of this process, and the fd of the last one seen. */
static unsigned count_inotify(int *fd_out)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	unsigned n = 0;

	assert_non_null(d);
	while ((de = readdir(d))) {
		char link[300], target[64];
		ssize_t len;

		snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
		len = readlink(link, target, sizeof(target) - 1);
		if (len < 0)
			continue;
		target[len] = '\0';
		if (strcmp(target, "anon_inode:inotify") == 0) {
			n++;
			*fd_out = atoi(de->d_name);
		}
	}
	closedir(d);
	return n;
}

static unsigned count_watches(int fd)
{
	char path[64], line[512];
	unsigned n = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	fp = fopen(path, "r");
	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp))
		n += strncmp(line, "inotify wd:", 11) == 0;
	fclose(fp);
	return n;
}

static void test_watch_10000_events_one_instance(void **state)
{
	struct fixture *f = *state;
	int ifd = -1;

	open_cg(f);
	assert_int_equal(cg_watch_start(f->cg, f->err, sizeof(f->err)), 0);
	for (unsigned long long i = 1; i <= 10000; i++) {
		put_high(f, 5 + i);
		assert_true(process(f) == 1);
	}
	assert_int_equal(count_inotify(&ifd), 1);
	assert_int_equal(count_watches(ifd), 1);
}

static void test_watch_file_replaced(void **state)
{
	struct fixture *f = *state;
	char tmp[256], path[256], text[128];
	int ifd = -1;

	open_cg(f);
	assert_int_equal(cg_watch_start(f->cg, f->err, sizeof(f->err)), 0);
	/* Replace by rename (a new inode): the kernel drops the old watch. */
	snprintf(text, sizeof(text), EVENTS_FMT, 8ull);
	put(f, "tmp", text);
	snprintf(tmp, sizeof(tmp), "%s/tmp", f->dir);
	snprintf(path, sizeof(path), "%s/memory.events", f->dir);
	assert_int_equal(rename(tmp, path), 0);
	assert_true(readable(cg_watch_fd(f->cg)));
	assert_true(process(f) == 3);
	/* The watch was re-added on the new file. */
	put_high(f, 9);
	assert_true(readable(cg_watch_fd(f->cg)));
	assert_true(process(f) == 1);
	assert_int_equal(count_inotify(&ifd), 1);
	assert_int_equal(count_watches(ifd), 1);
}

static void test_malformed_files(void **state)
{
	struct fixture *f = *state;
	uint64_t v = 0, n = 99;

	open_cg(f);
	assert_int_equal(cg_watch_start(f->cg, f->err, sizeof(f->err)), 0);
	put(f, "memory.events", "low 0\nhigh x\n");
	assert_int_equal(cg_watch_process(f->cg, &n, f->err, sizeof(f->err)), -EINVAL);
	assert_true(n == 0);
	assert_non_null(strstr(f->err, "memory.events: line 2"));
	put(f, "memory.events", "");
	assert_int_equal(cg_watch_poll(f->cg, &n, f->err, sizeof(f->err)), -ENODATA);
	/* Recovers once the file is sane again; the last good value counts. */
	put_high(f, 6);
	assert_true(process(f) == 1);
	put(f, "memory.high", "-5\n");
	assert_int_equal(cg_read_high(f->cg, &v, f->err, sizeof(f->err)), -EINVAL);
	assert_non_null(strstr(f->err, "pg/memory.high"));
	put(f, "memory.current", "");
	assert_int_equal(cg_read_current(f->cg, &v, f->err, sizeof(f->err)), -ENODATA);
	put(f, "cgroup.events", "populated 1\n");
	assert_int_equal(cg_read_frozen(f->cg, &(bool){ false }, f->err, sizeof(f->err)),
			 -EINVAL);
	assert_non_null(strstr(f->err, "\"frozen\" is missing"));
	put(f, "cgroup.freeze", "");
	/* Our own write replaces it; a malformed freeze file cannot stop a thaw. */
	assert_int_equal(cg_thaw(f->cg, f->err, sizeof(f->err)), 0);
}

static void test_start_fails_on_bad_events(void **state)
{
	struct fixture *f = *state;

	open_cg(f);
	put(f, "memory.events", "low 0\nhigh 1\n");
	assert_int_equal(cg_watch_start(f->cg, f->err, sizeof(f->err)), -EINVAL);
	assert_non_null(strstr(f->err, "\"max\" is missing"));
	assert_int_equal(cg_watch_fd(f->cg), -1);
	put_high(f, 1);
	assert_int_equal(cg_watch_start(f->cg, f->err, sizeof(f->err)), 0);
}

/* When the inotify instance cannot be created, start fails cleanly: no fd
 * is left behind, and a later start works. */
static void test_watch_start_without_fds(void **state)
{
	struct fixture *f = *state;
	struct rlimit old, tight;
	int probe, ifd = -1, rc;

	open_cg(f);
	probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(probe >= 0);
	close(probe);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	/* Room for exactly one more fd: the epoll fd fits, inotify does not. */
	tight = old;
	tight.rlim_cur = (rlim_t)probe + 1;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &tight), 0);
	rc = cg_watch_start(f->cg, f->err, sizeof(f->err));
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(rc, -EMFILE);
	assert_non_null(strstr(f->err, "inotify_init1"));
	assert_int_equal(cg_watch_fd(f->cg), -1);
	/* The lowest free fd is free again: nothing leaked. */
	probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_int_equal(probe, (int)tight.rlim_cur - 1);
	close(probe);
	assert_int_equal(cg_watch_start(f->cg, f->err, sizeof(f->err)), 0);
	assert_int_equal(count_inotify(&ifd), 1);
}

/* The directory removed and made anew: the next access re-opens it by
 * path and the generation tells the caller to write its limits again. */
static void test_directory_recreated(void **state)
{
	struct fixture *f = *state;
	const char *files[] = { "memory.current", "memory.high", "memory.max", "memory.events",
				"cgroup.freeze", "cgroup.events" };
	char path[256];
	uint64_t v, gen;

	open_cg(f);
	gen = cg_generation(f->cg);
	assert_int_equal(cg_write_max(f->cg, 1000, f->err, sizeof(f->err)), 0);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", f->dir, files[i]);
		assert_int_equal(unlink(path), 0);
	}
	assert_int_equal(rmdir(f->dir), 0);
	assert_true(cg_read_max(f->cg, &v, f->err, sizeof(f->err)) < 0);
	assert_true(cg_generation(f->cg) == gen);
	assert_int_equal(mkdir(f->dir, 0755), 0);
	put(f, "memory.current", "0\n");
	put(f, "memory.high", "max\n");
	put(f, "memory.max", "max\n");
	put_high(f, 0);
	put(f, "cgroup.freeze", "0\n");
	put(f, "cgroup.events", "populated 0\nfrozen 0\n");
	assert_int_equal(cg_read_max(f->cg, &v, f->err, sizeof(f->err)), 0);
	assert_true(v == CG_UNLIMITED);
	assert_true(cg_generation(f->cg) == gen + 1);
	/* Only once: the same directory is not "new" again. */
	assert_int_equal(cg_read_high(f->cg, &v, f->err, sizeof(f->err)), 0);
	assert_true(cg_generation(f->cg) == gen + 1);
}

/* memory.stat kept open like memory.current; memory.pressure read by
 * name; a PSI trigger refused on a plain directory (the daemon then reads
 * the file); memory.reclaim absent here. */
static void test_stat_pressure_reclaim_on_a_plain_directory(void **state)
{
	struct fixture *f = *state;
	struct cg_memory_stat st;
	struct cg_pressure pr;
	char path[256];
	int fd = -1;

	open_cg(f);
	assert_int_equal(cg_read_memory_stat(f->cg, &st, f->err, sizeof(f->err)), -ENOENT);
	put(f, "memory.stat", "anon 100\nfile 300\nshmem 50\nfile_mapped 7\n");
	assert_int_equal(cg_read_memory_stat(f->cg, &st, f->err, sizeof(f->err)), 0);
	assert_true(st.anon == 100 && st.file == 300 && st.shmem == 50);
	assert_true(cg_workload_bytes(400, &st) == 150);
	put(f, "memory.stat", "anon 200\nfile 30\nshmem 0\n");  /* in place: kept fd sees it */
	assert_int_equal(cg_read_memory_stat(f->cg, &st, f->err, sizeof(f->err)), 0);
	assert_true(st.anon == 200 && st.file == 30);
	assert_true(cg_workload_bytes(10, &st) == 0); /* floored */

	put(f, "memory.pressure", "some avg10=1.50 avg60=0.00 avg300=0.00 total=2500\n"
				  "full avg10=0.25 avg60=0.00 avg300=0.00 total=1200\n");
	assert_int_equal(cg_read_pressure(f->cg, &pr, f->err, sizeof(f->err)), 0);
	assert_true(pr.some_total_us == 2500 && pr.full_total_us == 1200);
	assert_int_equal(cg_pressure_trigger(f->cg, "some 100000 1000000", &fd, f->err,
					     sizeof(f->err)),
			 -EOPNOTSUPP);
	assert_int_equal(fd, -1);
	assert_int_equal(cg_reclaim_at(cg_path(f->cg), 4096, f->err, sizeof(f->err)), -ENOENT);
	snprintf(path, sizeof(path), "%s/memory.stat", f->dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/memory.pressure", f->dir);
	unlink(path);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_open_thaws_and_reads),
		T(test_open_errors),
		T(test_limits_and_freeze_write_files),
		T(test_thaw_path),
		T(test_watch_growth_burst_reset),
		T(test_watch_10000_events_one_instance),
		T(test_watch_file_replaced),
		T(test_malformed_files),
		T(test_start_fails_on_bad_events),
		T(test_watch_start_without_fds),
		T(test_directory_recreated),
		T(test_stat_pressure_reclaim_on_a_plain_directory),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
