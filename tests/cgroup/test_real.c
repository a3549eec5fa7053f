/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Freeze/thaw and memory.high events on a real cgroup2 mount.
 *
 * Needs a writable cgroup2 (skips with exit 77 otherwise).  The freeze part
 * runs on any cgroup2.  cg_open() needs the memory files, which exist only
 * when the memory controller is available; without it the freeze is driven
 * through the same internal routine cg_freeze() wraps (cgf_set_freeze) and
 * thawed with the public cg_thaw_path().
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cg_internal.h"
#include "cgroup.h"

static char mount_point[PATH_MAX];
static char child_name[64];
static char child_dir[PATH_MAX + 64];
static pid_t child_pid = -1;   /* killed by the teardown, whatever happened */

/* First cgroup2 mount in mountinfo where we may create a child. */
static bool find_cgroup2(void)
{
	FILE *fp = fopen("/proc/self/mountinfo", "r");
	char line[4096];
	bool found = false;

	if (!fp)
		return false;
	while (!found && fgets(line, sizeof(line), fp)) {
		char mnt[PATH_MAX], *sep = strstr(line, " - ");
		char fstype[32];

		if (!sep || sscanf(sep, " - %31s", fstype) != 1 || strcmp(fstype, "cgroup2") != 0)
			continue;
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
			continue;
		found = access(mnt, W_OK) == 0;
		if (found)
			snprintf(mount_point, sizeof(mount_point), "%s", mnt);
	}
	fclose(fp);
	return found;
}

static void write_file(const char *dir, const char *file, const char *text)
{
	char path[PATH_MAX + 128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static bool read_file(const char *dir, const char *file, char *buf, size_t len)
{
	char path[PATH_MAX + 128];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return false;
	buf[n] = '\0';
	return true;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Polls cgroup.events until "frozen" equals want, for at most 2 s. */
static bool wait_frozen(bool want)
{
	uint64_t end = now_ms() + 2000;
	char buf[512], err[256];

	do {
		struct cg_cgroup_events ev;

		if (read_file(child_dir, "cgroup.events", buf, sizeof(buf)) &&
		    cg_parse_cgroup_events("cgroup.events", buf, strlen(buf), &ev, err,
					   sizeof(err)) == 0 && ev.frozen == want)
			return true;
		poll(NULL, 0, 5);
	} while (now_ms() < end);
	return false;
}

/* Forks a child that waits on a pipe, moves it into the cgroup, then lets it
 * run fn.  Returns its pid. */
static pid_t spawn_in_cgroup(void (*fn)(void))
{
	char pidtext[32], go;
	int gate[2];
	pid_t pid;

	assert_int_equal(pipe(gate), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(gate[1]);
		if (read(gate[0], &go, 1) != 1)
			_exit(1);
		fn();
		_exit(0);
	}
	close(gate[0]);
	snprintf(pidtext, sizeof(pidtext), "%d", (int)pid);
	write_file(child_dir, "cgroup.procs", pidtext);
	assert_int_equal(write(gate[1], "g", 1), 1);
	close(gate[1]);
	return pid;
}

static void sleeper(void)
{
	for (int i = 0; i < 600; i++)
		sleep(1);
}

/* Touches 256 MiB page by page: well past a 16 MiB memory.high. */
static void allocator(void)
{
	size_t len = 256u << 20;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		_exit(2);
	for (size_t off = 0; off < len; off += 4096)
		p[off] = 1;
	sleeper();
}

static void reap(void)
{
	if (child_pid > 0) {
		kill(child_pid, SIGKILL);
		waitpid(child_pid, NULL, 0);
	}
	child_pid = -1;
}

static int make_child(void **state)
{
	(void)state;
	snprintf(child_name, sizeof(child_name), "vmi-cgtest-%d-%ld", (int)getpid(),
		 (long)now_ms());
	snprintf(child_dir, sizeof(child_dir), "%s/%s", mount_point, child_name);
	return mkdir(child_dir, 0755) == 0 ? 0 : -1;
}

static int remove_child(void **state)
{
	char err[256];

	(void)state;
	cg_thaw_path(mount_point, child_name, err, sizeof(err));
	reap();
	/* The emptied cgroup may stay busy for a moment. */
	for (int i = 0; i < 200 && rmdir(child_dir) < 0 && errno == EBUSY; i++)
		poll(NULL, 0, 10);
	return 0;
}

static void test_freeze_thaw(void **state)
{
	char err[512] = "";
	int dirfd, rc;

	(void)state;
	child_pid = spawn_in_cgroup(sleeper);
	assert_int_equal(cgf_open_dir(child_dir, &dirfd, err, sizeof(err)), 0);
	rc = cgf_set_freeze(dirfd, child_dir, true, err, sizeof(err));
	close(dirfd);
	if (rc != 0)
		print_error("freeze: %s\n", err);
	assert_int_equal(rc, 0);
	assert_true(wait_frozen(true));
	assert_int_equal(cg_thaw_path(mount_point, child_name, err, sizeof(err)), 0);
	assert_true(wait_frozen(false));
}

static bool enable_memory_controller(void)
{
	char buf[512];

	if (!read_file(mount_point, "cgroup.controllers", buf, sizeof(buf)) ||
	    !strstr(buf, "memory"))
		return false;
	if (read_file(mount_point, "cgroup.subtree_control", buf, sizeof(buf)) &&
	    strstr(buf, "memory"))
		return true;
	write_file(mount_point, "cgroup.subtree_control", "+memory");
	return true;
}

/* Waits up to 5 s for the watcher to report a memory.high event. */
static uint64_t wait_high_event(struct cg *cg)
{
	uint64_t end = now_ms() + 5000, total = 0;
	char err[512];

	while (total == 0 && now_ms() < end) {
		struct pollfd p = { .fd = cg_watch_fd(cg), .events = POLLIN };
		uint64_t n = 0;

		poll(&p, 1, 100);   /* 100 ms: the daemon's safety-net cadence */
		assert_int_equal(cg_watch_process(cg, &n, err, sizeof(err)), 0);
		total += n;
	}
	return total;
}

static void test_memory_high_event(void **state)
{
	struct cg *cg = NULL;
	char err[512] = "";

	(void)state;
	if (!enable_memory_controller()) {
		print_message("skip: no memory controller on cgroup2 here\n");
		skip();
	}
	/* The child was made before the controller was enabled: start afresh. */
	remove_child(state);
	assert_int_equal(make_child(state), 0);
	if (cg_open(mount_point, child_name, &cg, err, sizeof(err)) != 0)
		print_error("cg_open: %s\n", err);
	assert_non_null(cg);
	assert_true(cg_is_cgroupfs(cg));
	assert_int_equal(cg_write_max(cg, CG_UNLIMITED, err, sizeof(err)), 0);
	assert_int_equal(cg_write_high(cg, 16u << 20, err, sizeof(err)), 0);
	assert_int_equal(cg_watch_start(cg, err, sizeof(err)), 0);
	child_pid = spawn_in_cgroup(allocator);
	assert_true(wait_high_event(cg) > 0);
	/* Freeze/thaw through the object as well. */
	assert_int_equal(cg_freeze(cg, err, sizeof(err)), 0);
	assert_true(wait_frozen(true));
	assert_int_equal(cg_close(cg, err, sizeof(err)), 0);
	assert_true(wait_frozen(false));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_freeze_thaw, make_child, remove_child),
		cmocka_unit_test_setup_teardown(test_memory_high_event, make_child, remove_child),
	};

	if (!find_cgroup2() || make_child(NULL) < 0) {
		printf("skip: no cgroup2 mount in /proc/self/mountinfo where a child "
		       "cgroup can be created\n");
		return 77;
	}
	rmdir(child_dir);
	printf("using cgroup2 at %s\n", mount_point);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
