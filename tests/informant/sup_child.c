/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sup_child.c — the tiny program the supervisor tests run as "daemon".
 *
 *   sup-child LOG MODE [FREEZE_FILE]
 *
 * Appends "start PID MS ENV STDIN" to LOG (MS: CLOCK_MONOTONIC, ENV: the
 * VMI_SUPERVISED value, STDIN: "null" when stdin is /dev/null), then:
 *   die-N     the first N starts (counted in LOG) write "1" to FREEZE_FILE
 *             and exit 3; later ones behave like "live"
 *   live      log "hup PID" on SIGHUP, "term PID" on SIGTERM and exit 0
 *   stubborn  ignore SIGTERM and SIGINT; only SIGKILL ends it
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

static const char *log_path;

static void append(const char *line)
{
	int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);

	if (fd < 0 || write(fd, line, strlen(line)) < 0)
		_exit(99);
	close(fd);
}

static int count_starts(void)
{
	FILE *f = fopen(log_path, "r");
	char line[256];
	int n = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		n += strncmp(line, "start ", 6) == 0;
	fclose(f);
	return n;
}

static void on_signal(int sig)
{
	char line[64];

	snprintf(line, sizeof(line), "%s %d\n", sig == SIGHUP ? "hup" : "term", (int)getpid());
	append(line);
	if (sig == SIGTERM)
		_exit(0);
}

int main(int argc, char **argv)
{
	struct timespec ts;
	struct stat st;
	char line[256];
	const char *env = getenv("VMI_SUPERVISED");

	if (argc < 3)
		return 2;
	log_path = argv[1];
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(line, sizeof(line), "start %d %lld %s %s\n", (int)getpid(),
		 (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, env ? env : "-",
		 fstat(0, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)
			 ? "null" : "other");
	append(line);
	if (strncmp(argv[2], "die-", 4) == 0 && count_starts() <= atoi(argv[2] + 4)) {
		if (argc > 3) {
			int fd = open(argv[3], O_WRONLY | O_TRUNC | O_CLOEXEC);

			if (fd < 0 || write(fd, "1", 1) != 1)
				return 98;
			close(fd);
		}
		return 3;
	}
	signal(SIGHUP, on_signal);
	signal(SIGTERM, strcmp(argv[2], "stubborn") == 0 ? SIG_IGN : on_signal);
	if (strcmp(argv[2], "stubborn") == 0)
		signal(SIGINT, SIG_IGN);
	for (;;)
		pause();
}
