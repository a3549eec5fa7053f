/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vmtool.c — the guest side of the real-VM end-to-end test, one static
 * binary with these jobs:
 *
 *   vmtool serve PORT            PID 1's command channel: one shell command
 *                                per TCP connection, its output, then
 *                                "\0EXIT <status>\n".  Reaps every orphan.
 *   vmtool alloc MIB STATEFILE   the workload: touches MIB MiB of anonymous
 *                                memory 1 MiB at a time, then holds it;
 *                                SIGUSR1 frees it all, SIGTERM ends it.
 *   vmtool watch OUT FILE...     logs every change of the FILEs (inotify)
 *                                as "<monotonic ms> <file> <content>" lines.
 *   vmtool cgmon OUT CGDIR TRIGGER MS
 *                                a PSI trigger of its own on the cgroup's
 *                                memory.pressure; logs "<ms> trigger|tick
 *                                some=<µs> full=<µs> current= anon= file=
 *                                shmem= refault= high= oom_kill=" when it
 *                                fires and every MS milliseconds.
 *   vmtool as UID GID PROG ARG...  runs PROG as that user (no groups).
 *   vmtool timed OUT PROG ARG... runs PROG and writes "<start ms> <end ms>
 *                                <exit status>" to OUT when it is done.
 *   vmtool now                   prints CLOCK_MONOTONIC in ms.
 *
 * Everything is bounded: a request line is at most 4 KiB and must arrive
 * within 5 s, a command gets at most 60 s.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096
#define REQUEST_TIMEOUT_S 5
#define COMMAND_TIMEOUT_S 60
#define MIB (1024UL * 1024UL)
#define MAX_CHUNKS 4096
#define MAX_WATCHED 8

static _Noreturn void die(const char *what)
{
	fprintf(stderr, "vmtool: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- serve ---------------------------------------------------------------- */

/* Reads one '\n'-terminated line (without it) into buf; -1 on EOF, error,
 * timeout or overlong line. */
static int read_line(int fd, char *buf, size_t size)
{
	size_t len = 0;

	while (len + 1 < size) {
		ssize_t n = read(fd, buf + len, 1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		if (buf[len] == '\n') {
			buf[len] = '\0';
			return 0;
		}
		len++;
	}
	return -1;
}

/* The per-connection process: runs the command with the socket as its
 * stdout/stderr, waits for it (not for anything it left in the
 * background, which may keep the socket open), then sends the trailer. */
static _Noreturn void handle_connection(int conn)
{
	struct timeval tv = { .tv_sec = REQUEST_TIMEOUT_S };
	char line[LINE_MAX_BYTES], trailer[64];
	int status = 0, null_fd;
	pid_t child;

	signal(SIGCHLD, SIG_DFL);
	setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (read_line(conn, line, sizeof(line)) < 0)
		_exit(1);
	child = fork();
	if (child < 0)
		_exit(1);
	if (child == 0) {
		null_fd = open("/dev/null", O_RDONLY);
		if (null_fd < 0 || dup2(null_fd, 0) < 0 || dup2(conn, 1) < 0 || dup2(conn, 2) < 0)
			_exit(126);
		setsid();
		alarm(COMMAND_TIMEOUT_S);
		execl("/bin/sh", "sh", "-c", line, (char *)NULL);
		_exit(127);
	}
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	snprintf(trailer, sizeof(trailer), "%cEXIT %d\n", '\0', status);
	write_all(conn, trailer, 1 + strlen(trailer + 1));
	_exit(0);
}

static _Noreturn void serve(int port)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1, lfd;

	/* SIG_IGN makes the kernel reap every child, orphans included (we
	 * may be PID 1). */
	signal(SIGCHLD, SIG_IGN);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	addr.sin_addr.s_addr = htonl(INADDR_ANY);
	if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(lfd, 16) < 0)
		die("bind/listen");
	for (;;) {
		int conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		pid_t pid;

		if (conn < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			sleep(1); /* e.g. EMFILE: back off instead of spinning */
			continue;
		}
		pid = fork();
		if (pid == 0) {
			close(lfd);
			handle_connection(conn);
		}
		close(conn);
	}
}

/* ---- alloc ---------------------------------------------------------------- */

static volatile sig_atomic_t free_requested;

static void on_usr1(int sig)
{
	(void)sig;
	free_requested = 1;
}

static void write_state(const char *path, const char *state, unsigned long mib)
{
	char tmp[512], buf[64];
	int fd, len;

	len = snprintf(buf, sizeof(buf), "%s %lu\n", state, mib);
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	write_all(fd, buf, (size_t)len);
	close(fd);
	rename(tmp, path); /* readers never see a half-written line */
}

static int alloc(unsigned long mib, const char *state_path)
{
	static char *chunks[MAX_CHUNKS];
	struct sigaction sa = { .sa_handler = on_usr1 };
	unsigned long i, done = 0;

	if (mib > MAX_CHUNKS) {
		fprintf(stderr, "vmtool: alloc: at most %d MiB\n", MAX_CHUNKS);
		return 2;
	}
	sigaction(SIGUSR1, &sa, NULL);
	write_state(state_path, "allocating", 0);
	for (i = 0; i < mib && !free_requested; i++) {
		chunks[i] = mmap(NULL, MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				 -1, 0);
		if (chunks[i] == MAP_FAILED)
			die("mmap");
		for (size_t off = 0; off < MIB; off += 4096)
			chunks[i][off] = (char)(off | 1); /* make every page real */
		done = i + 1;
		write_state(state_path, "allocating", done);
	}
	write_state(state_path, "holding", done);
	while (!free_requested)
		pause();
	for (i = 0; i < done; i++)
		munmap(chunks[i], MIB);
	write_state(state_path, "freed", done);
	for (;;)
		pause();
}

/* ---- watch ---------------------------------------------------------------- */

/* Appends "<ms> <path> <content with newlines as ' | '>" to out. */
static void log_file(FILE *out, const char *path)
{
	char buf[1024];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return;
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] == '\n')
			buf[i] = ',';
	fprintf(out, "%.3f %s %s\n", now_ms(), path, buf);
	fflush(out);
}

static int watch(const char *out_path, int nfiles, char **files)
{
	int wds[MAX_WATCHED], ifd;
	char evbuf[4096] __attribute__((aligned(8)));
	FILE *out;

	if (nfiles > MAX_WATCHED)
		return 2;
	out = fopen(out_path, "we");
	ifd = inotify_init1(IN_CLOEXEC);
	if (!out || ifd < 0)
		die("watch: open");
	for (int i = 0; i < nfiles; i++) {
		wds[i] = inotify_add_watch(ifd, files[i], IN_MODIFY);
		if (wds[i] < 0)
			die(files[i]);
		log_file(out, files[i]);
	}
	for (;;) {
		ssize_t n = read(ifd, evbuf, sizeof(evbuf));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("watch: read");
		for (char *p = evbuf; p < evbuf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;

			for (int i = 0; i < nfiles; i++)
				if (ev->wd == wds[i])
					log_file(out, files[i]);
			p += sizeof(*ev) + ev->len;
		}
	}
}

/* ---- cgmon ---------------------------------------------------------------- */

/* The number after "<key> " or "<key>=" in a keyed file's text (0 if absent). */
static unsigned long long keyed(const char *buf, const char *key)
{
	size_t klen = strlen(key);

	for (const char *p = buf; (p = strstr(p, key)) != NULL; p += klen) {
		bool at_start = p == buf || p[-1] == '\n' || p[-1] == ' ';

		if (at_start && (p[klen] == ' ' || p[klen] == '='))
			return strtoull(p + klen + 1, NULL, 10);
	}
	return 0;
}

static void read_at(int fd, char *buf, size_t size)
{
	ssize_t n = pread(fd, buf, size - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
}

struct cgmon {
	FILE *out;
	int pressure, current, stat, events;
};

static void cgmon_log(struct cgmon *c, const char *what)
{
	char pr[512], cur[64], st[4096], ev[512];
	const char *full;

	read_at(c->pressure, pr, sizeof(pr));
	read_at(c->current, cur, sizeof(cur));
	read_at(c->stat, st, sizeof(st));
	read_at(c->events, ev, sizeof(ev));
	full = strstr(pr, "full");
	fprintf(c->out, "%.3f %s some=%llu full=%llu current=%llu anon=%llu file=%llu "
		"shmem=%llu refault=%llu high=%llu oom_kill=%llu\n", now_ms(), what,
		keyed(pr, "total"), full ? keyed(full, "total") : 0, strtoull(cur, NULL, 10),
		keyed(st, "anon"), keyed(st, "file"), keyed(st, "shmem"),
		keyed(st, "workingset_refault_file"), keyed(ev, "high"), keyed(ev, "oom_kill"));
	fflush(c->out);
}

static int open_in(const char *dir, const char *file, int flags)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	return open(path, flags | O_CLOEXEC);
}

static int cgmon(const char *out_path, const char *dir, const char *trigger, int tick_ms)
{
	struct cgmon c = {
		.out = fopen(out_path, "we"),
		.pressure = open_in(dir, "memory.pressure", O_RDONLY),
		.current = open_in(dir, "memory.current", O_RDONLY),
		.stat = open_in(dir, "memory.stat", O_RDONLY),
		.events = open_in(dir, "memory.events", O_RDONLY),
	};
	int tfd = open_in(dir, "memory.pressure", O_RDWR | O_NONBLOCK);
	double next;

	if (!c.out || c.pressure < 0 || c.current < 0 || c.stat < 0 || c.events < 0 || tfd < 0)
		die("cgmon: open");
	if (write(tfd, trigger, strlen(trigger) + 1) < 0)
		die("cgmon: trigger");
	cgmon_log(&c, "tick");
	next = now_ms() + tick_ms;
	for (;;) {
		struct pollfd p = { .fd = tfd, .events = POLLPRI };
		double left = next - now_ms();
		int r = poll(&p, 1, left > 0 ? (int)left : 0);

		if (r < 0 && errno != EINTR)
			die("cgmon: poll");
		if (r > 0 && (p.revents & (POLLERR | POLLHUP)))
			return 1;
		if (r > 0 && (p.revents & POLLPRI))
			cgmon_log(&c, "trigger");
		if (now_ms() >= next) {
			cgmon_log(&c, "tick");
			next += tick_ms;
		}
	}
}

/* ---- as, timed, now -------------------------------------------------------- */

static int run_as(const char *uid, const char *gid, char **argv)
{
	gid_t g = (gid_t)strtoul(gid, NULL, 10);

	if (setgroups(0, NULL) < 0 || setgid(g) < 0 || setuid((uid_t)strtoul(uid, NULL, 10)) < 0)
		die("as: set ids");
	execv(argv[0], argv);
	die(argv[0]);
}

static int timed(const char *out_path, char **argv)
{
	double start = now_ms();
	int status;
	pid_t pid = fork();
	FILE *out;

	if (pid < 0)
		die("timed: fork");
	if (pid == 0) {
		execv(argv[0], argv);
		die(argv[0]);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("timed: waitpid");
	out = fopen(out_path, "we");
	if (!out)
		die(out_path);
	fprintf(out, "%.3f %.3f %d\n", start, now_ms(),
		WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	fclose(out);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "serve") == 0)
		serve(atoi(argv[2]));
	if (argc == 4 && strcmp(argv[1], "alloc") == 0)
		return alloc(strtoul(argv[2], NULL, 10), argv[3]);
	if (argc >= 4 && strcmp(argv[1], "watch") == 0)
		return watch(argv[2], argc - 3, argv + 3);
	if (argc == 6 && strcmp(argv[1], "cgmon") == 0)
		return cgmon(argv[2], argv[3], argv[4], atoi(argv[5]));
	if (argc >= 5 && strcmp(argv[1], "as") == 0)
		return run_as(argv[2], argv[3], argv + 4);
	if (argc >= 4 && strcmp(argv[1], "timed") == 0)
		return timed(argv[2], argv + 3);
	if (argc == 2 && strcmp(argv[1], "now") == 0) {
		printf("%.3f\n", now_ms());
		return 0;
	}
	fprintf(stderr, "usage: vmtool serve PORT | alloc MIB STATEFILE | watch OUT FILE... | "
		"cgmon OUT CGDIR TRIGGER MS | as UID GID PROG ARG... | timed OUT PROG ARG... | now\n");
	return 2;
}
