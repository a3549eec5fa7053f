/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read the child's first line, "<t> listening addr=HOST:PORT ...", within 5 s. */
static int read_listen_addr(struct sim_proc *p)
{
	char buf[1024];
	size_t len = 0;
	int64_t end = mono_ms() + 5000;
	struct pollfd pfd = { .fd = p->out_fd, .events = POLLIN };
	const char *at;
	ssize_t n;

	while (len < sizeof(buf) - 1) {
		if (poll(&pfd, 1, (int)(end - mono_ms())) <= 0)
			return -ETIMEDOUT;
		n = read(p->out_fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			return -EPIPE;
		len += (size_t)n;
		buf[len] = '\0';
		at = strstr(buf, " addr=");
		if (at && strchr(at, ' ' ) && sscanf(at, " addr=%63s", p->addr) == 1)
			return 0;
	}
	return -EPROTO;
}

int sim_start(struct sim_proc *p, const char *const *extra)
{
	const char *dir = getenv("VMI_BUILD_DIR");
	const char *argv[32] = { NULL, "--protocol", "informant", "--no-register", "--quiet",
				 "--listen", "127.0.0.1:0", "--id", TEST_AGENT_ID, "--informant",
				 "127.0.0.1:9" };
	char path[512];
	int fds[2], argc = 11, r;

	if (!dir)
		return -ENOENT;
	snprintf(path, sizeof(path), "%s/agent-proto/agent-sim", dir);
	argv[0] = path;
	for (; extra && *extra && argc < 31; extra++)
		argv[argc++] = *extra;
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	p->pid = fork();
	if (p->pid < 0) {
		r = -errno;
		close(fds[0]);
		close(fds[1]);
		return r;
	}
	if (p->pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	p->out_fd = fds[0];
	r = read_listen_addr(p);
	if (r < 0)
		sim_stop(p);
	return r;
}

int sim_stop(struct sim_proc *p)
{
	int status = 0;
	int64_t end = mono_ms() + 5000;

	if (p->pid <= 0)
		return -1;
	kill(p->pid, SIGTERM);
	while (waitpid(p->pid, &status, WNOHANG) == 0) {
		if (mono_ms() > end) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, &status, 0);
			status = -1;
			break;
		}
		usleep(5000);
	}
	close(p->out_fd);
	p->pid = 0;
	return status < 0 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- canned server ---------------------------------------------------------- */

/* Read one request: headers, then Content-Length bytes of body. */
static void read_request(int fd, char *buf, size_t cap)
{
	size_t len = 0, want = 0;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	const char *end, *cl;
	ssize_t n;

	buf[0] = '\0';
	while (len < cap - 1 && poll(&pfd, 1, 2000) > 0) {
		n = read(fd, buf + len, cap - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (!end)
			continue;
		cl = strcasestr(buf, "Content-Length:");
		want = (size_t)(end + 4 - buf) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
		if (len >= want)
			break;
	}
}

static void *canned_serve(void *arg)
{
	struct canned_server *srv = arg;
	char req[4096];
	size_t off;
	ssize_t n;
	int fd;

	while ((fd = accept(srv->lfd, NULL, NULL)) >= 0) {
		read_request(fd, req, sizeof(req));
		pthread_mutex_lock(&srv->lock);
		srv->requests++;
		snprintf(srv->last_request, sizeof(srv->last_request), "%s", req);
		pthread_mutex_unlock(&srv->lock);
		for (off = 0; off < srv->response_len; off += (size_t)n) {
			n = send(fd, srv->response + off, srv->response_len - off, MSG_NOSIGNAL);
			if (n <= 0)
				break;
		}
		close(fd);
	}
	return NULL;
}

int canned_start(struct canned_server *srv, const char *response, size_t len)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t slen = sizeof(sin);

	srv->response = response;
	srv->response_len = len;
	srv->requests = 0;
	srv->last_request[0] = '\0';
	srv->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (srv->lfd < 0 || bind(srv->lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
	    listen(srv->lfd, 16) < 0 || getsockname(srv->lfd, (struct sockaddr *)&sin, &slen) < 0)
		return -errno;
	snprintf(srv->addr, sizeof(srv->addr), "127.0.0.1:%u", ntohs(sin.sin_port));
	pthread_mutex_init(&srv->lock, NULL);
	if (pthread_create(&srv->thread, NULL, canned_serve, srv) != 0)
		return -EAGAIN;
	return 0;
}

void canned_stop(struct canned_server *srv)
{
	/* shutdown() wakes the accept() of the serving thread. */
	shutdown(srv->lfd, SHUT_RDWR);
	pthread_join(srv->thread, NULL);
	close(srv->lfd);
	pthread_mutex_destroy(&srv->lock);
}

/* ---- loop ------------------------------------------------------------------- */

void waiter_cb(void *arg, const struct ap_call_result *res)
{
	struct waiter *w = arg;

	w->calls++;
	w->res = *res;
}

int loop_until(struct ap_client *c, const int *done, int want, int max_ms,
	       unsigned long *ticks)
{
	struct itimerspec tick = { .it_interval.tv_nsec = 5000000, .it_value.tv_nsec = 5000000 };
	struct epoll_event ev = { .events = EPOLLIN }, got[4];
	int64_t end = mono_ms() + max_ms;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	uint64_t n;
	int r = -ETIMEDOUT;

	ev.data.fd = ap_client_fd(c);
	epoll_ctl(ep, EPOLL_CTL_ADD, ev.data.fd, &ev);
	ev.data.fd = tfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
	timerfd_settime(tfd, 0, &tick, NULL);
	while (mono_ms() < end) {
		if (*done >= want) {
			r = 0;
			break;
		}
		int k = epoll_wait(ep, got, 4, (int)(end - mono_ms()));

		for (int i = 0; i < k; i++) {
			if (got[i].data.fd == tfd) {
				if (read(tfd, &n, sizeof(n)) == sizeof(n) && ticks)
					*ticks += n;
			} else {
				ap_client_process(c);
			}
		}
	}
	if (*done >= want)
		r = 0;
	close(tfd);
	close(ep);
	return r;
}
