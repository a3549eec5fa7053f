/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server_accept.c — the listening socket, accepting, and the gate: a new
 * connection waits here, costing a socket and a record, until its first
 * bytes show an HTTP request line (then it goes to libmicrohttpd) or show
 * garbage (then it gets "400 Bad Request" and is closed at once).
 *
 * MHD itself would read a request line of NUL bytes as a blank line and
 * wait for more; the gate answers it before MHD sees it.
 */
#include "server_conns_internal.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "httputil.h"

/* Accepts per wake-up: MHD and the timers get their turn in between. */
#define ACCEPT_BATCH 64
/* After running out of fds (EMFILE), try accepting again after this. */
#define ACCEPT_PAUSE_MS 100

int conns_listen(const char *host, uint16_t port, int *fd_out, uint16_t *bound, char *err,
		 size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char service[8];
	int r, fd = -1, one = 1;

	snprintf(service, sizeof(service), "%u", port);
	r = getaddrinfo(host && host[0] ? host : NULL, service, &hints, &res);
	if (r != 0) {
		snprintf(err, errlen, "cannot listen on %s:%u: %s", host, port, gai_strerror(r));
		return -EADDRNOTAVAIL;
	}
	/* The backlog holds clients arriving faster than one loop turn
	 * accepts them (the kernel caps it at net.core.somaxconn). */
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, SOMAXCONN) < 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot listen on %s:%u: %s (is another informant running?)",
			 host, port, strerror(-r));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return r;
	}
	freeaddrinfo(res);
	*bound = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					       : ((struct sockaddr_in6 *)&ss)->sin6_port);
	*fd_out = fd;
	return 0;
}

/* ---- the gate ------------------------------------------------------------- */

void gate_close(struct conn *c)
{
	(void)loop_del_fd(c->cs->loop, c->fd);
	close(c->fd);
	conn_release(c);
}

void conns_answer_raw(struct conn *c, unsigned status, const char *text)
{
	char answer[512];
	int n = snprintf(answer, sizeof(answer),
			 "HTTP/1.1 %u %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
			 "Connection: close\r\nContent-Length: %zu\r\n\r\n%s",
			 status, MHD_get_reason_phrase_for(status), strlen(text), text);

	/* It cannot block: nothing else is being written on this socket, and
	 * its send buffer has room for these few bytes. */
	if (n > 0 && (size_t)n < sizeof(answer))
		(void)!send(c->fd, answer, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	/* FIN first: the client sees the answer and the end of it even if
	 * the close resets the connection over unread bytes. */
	(void)shutdown(c->fd, SHUT_WR);
}

static void gate_garbage(struct conn *c)
{
	struct conns *cs = c->cs;
	uint64_t now = loop_now_ms(), suppressed;

	conns_answer_raw(c, 400, "400 Bad Request"); /* Go's answer to a bad request line */
	cs->metrics->http_connections_dropped_total[METRICS_DROP_GARBAGE]++;
	metrics_observe_request(cs->metrics, EP_OTHER, 400, (double)(now - c->since_ms) / 1e3);
	if (log_limit_allow(&cs->garbage_log, now, CONNS_LOG_EVERY_MS, &suppressed))
		log_event(LOG_INFO, "bad request: not an HTTP request line — answered 400",
			  LF_U64("suppressed", suppressed), LF_END);
	gate_close(c);
}

static void gate_hand_over(struct conn *c)
{
	struct conns *cs = c->cs;
	enum MHD_Result ok;

	(void)loop_del_fd(cs->loop, c->fd);
	cs->adding = c;
	ok = MHD_add_connection(cs->mhd, c->fd, (const struct sockaddr *)&c->addr, c->addrlen);
	cs->adding = NULL;
	if (ok == MHD_YES && c->state == CONN_HEAD && !c->mhd_closed)
		return;
	/* Refused (out of memory): MHD has closed the fd, and reported the
	 * close if it had reported the start; only the record is left. */
	cs->metrics->http_connections_dropped_total[METRICS_DROP_REFUSED]++;
	conn_release(c);
}

/* Bytes arrived, or the peer closed: decide if we can. */
static void gate_check(struct conn *c, bool peer_done)
{
	char buf[HTTP_START_BYTES];
	ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
	int verdict;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		gate_close(c); /* closed or reset before a request: nothing to say */
		return;
	}
	verdict = http_request_start(buf, (size_t)n);
	if (verdict > 0)
		gate_hand_over(c);
	else if (verdict < 0)
		gate_garbage(c);
	else if (peer_done)
		gate_close(c); /* half a method and no more to come */
	/* else: a valid beginning; edge-triggered, the next bytes wake us */
}

static void on_gate(void *arg, uint32_t events)
{
	gate_check(arg, (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
}

/* ---- accepting --------------------------------------------------------- */

void accept_resume(void *arg)
{
	struct conns *cs = arg;

	if (cs->listen_fd >= 0)
		(void)loop_mod_fd(cs->loop, cs->listen_fd, EPOLLIN);
}

static void accept_pause(struct conns *cs, int err)
{
	uint64_t suppressed;

	if (log_limit_allow(&cs->accept_log, loop_now_ms(), CONNS_LOG_EVERY_MS, &suppressed))
		log_event(LOG_WARN, "cannot accept connections; pausing for 100 ms",
			  LF_ERR(-err), LF_U64("connections", cs->total),
			  LF_U64("suppressed", suppressed), LF_END);
	/* The listening socket stays readable: stop watching it for a while
	 * rather than spin; the backlog keeps the waiting clients. */
	(void)loop_mod_fd(cs->loop, cs->listen_fd, 0);
	(void)loop_timer_arm(cs->accept_again, ACCEPT_PAUSE_MS, 0);
}

static void accept_one(struct conns *cs, int fd, const struct sockaddr_storage *ss,
		       socklen_t len)
{
	struct conn *c = conn_admit(cs, fd, ss, len);

	if (!c) {
		close(fd); /* no room: every connection has a request being handled */
		return;
	}
	if (loop_add_fd(cs->loop, fd, EPOLLIN | EPOLLRDHUP | EPOLLET, on_gate, c) < 0) {
		close(fd);
		conn_release(c);
		return;
	}
	gate_check(c, false); /* the request often comes with the connection */
}

static void on_listen(void *arg, uint32_t events)
{
	struct conns *cs = arg;

	(void)events;
	for (int i = 0; i < ACCEPT_BATCH && cs->listen_fd >= 0; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(cs->listen_fd, (struct sockaddr *)&ss, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			accept_one(cs, fd, &ss, len);
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			accept_pause(cs, errno);
			return;
		}
		/* ECONNABORTED, EPROTO, EINTR …: that one client, not us. */
	}
}

int conns_accept_start(struct conns *cs, int listen_fd)
{
	int r = loop_add_fd(cs->loop, listen_fd, EPOLLIN, on_listen, cs);

	if (r == 0)
		cs->listen_fd = listen_fd;
	return r;
}

void conns_accept_stop(struct conns *cs)
{
	struct conn *c, *next;

	if (cs->listen_fd >= 0) {
		(void)loop_del_fd(cs->loop, cs->listen_fd);
		close(cs->listen_fd);
		cs->listen_fd = -1;
	}
	(void)loop_timer_arm(cs->accept_again, 0, 0);
	for (c = cs->wait_head[WAIT_HEAD]; c; c = next) {
		next = c->next;
		if (c->state == CONN_GATE)
			gate_close(c);
	}
}
