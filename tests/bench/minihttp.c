/* SPDX-License-Identifier: Apache-2.0 */
/* minihttp.c — head parsers, epoll dispatch and loopback sockets. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench_util.h"
#include "minihttp.h"

/* Copies the token up to the next space into dst (bounded); returns the
 * position after the space or NULL. */
static const char *token(const char *p, const char *end, char *dst, size_t dstlen)
{
	size_t n = 0;

	while (p < end && *p != ' ' && *p != '\r') {
		if (n + 1 < dstlen)
			dst[n++] = *p;
		p++;
	}
	dst[n] = '\0';
	return p < end && *p == ' ' ? p + 1 : NULL;
}

/* Scans header lines after the start line for Content-Length and a
 * chunked Transfer-Encoding (which these tools do not speak). */
static int scan_headers(const char *p, const char *end, struct mh_head *out)
{
	out->content_length = 0;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t n;

		if (!eol)
			return -1;
		n = (size_t)(eol - p);
		if (n >= 15 && !strncasecmp(p, "content-length:", 15))
			out->content_length = strtoul(p + 15, NULL, 10);
		else if (n >= 18 && !strncasecmp(p, "transfer-encoding:", 18))
			return -1;
		p = eol + 1;
	}
	return 1;
}

static const char *head_end(const char *buf, size_t len)
{
	const char *e = memmem(buf, len, "\r\n\r\n", 4);

	return e ? e + 4 : NULL;
}

int mh_parse_request(const char *buf, size_t len, struct mh_head *out)
{
	const char *end = head_end(buf, len), *p;

	if (!end)
		return len > 16384 ? -1 : 0;
	out->head_len = (size_t)(end - buf);
	out->status = 0;
	p = token(buf, end, out->method, sizeof(out->method));
	if (!p || !token(p, end, out->path, sizeof(out->path)))
		return -1;
	return scan_headers(memchr(buf, '\n', out->head_len) + 1, end - 2, out);
}

int mh_parse_response(const char *buf, size_t len, struct mh_head *out)
{
	const char *end = head_end(buf, len), *p;

	if (!end)
		return len > 16384 ? -1 : 0;
	out->head_len = (size_t)(end - buf);
	out->method[0] = out->path[0] = '\0';
	p = token(buf, end, out->method, sizeof(out->method));   /* "HTTP/1.1" */
	if (!p)
		return -1;
	out->status = atoi(p);
	return scan_headers(memchr(buf, '\n', out->head_len) + 1, end - 2, out);
}

void mh_watch_add(int ep, struct mh_watch *w, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = w };

	if (epoll_ctl(ep, EPOLL_CTL_ADD, w->fd, &ev) < 0)
		bench_die("epoll_ctl ADD");
}

void mh_dispatch(int ep, int timeout_ms)
{
	struct epoll_event evs[64];
	int n = epoll_wait(ep, evs, 64, timeout_ms);

	for (int i = 0; i < n; i++) {
		struct mh_watch *w = evs[i].data.ptr;

		w->on_ready(w, evs[i].events);
	}
}

int mh_listen_loopback(uint16_t port, uint16_t *bound)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	socklen_t salen = sizeof(sa);
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		bench_die("socket");
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1024) < 0)
		bench_die("bind/listen 127.0.0.1");
	if (getsockname(fd, (struct sockaddr *)&sa, &salen) < 0)
		bench_die("getsockname");
	*bound = ntohs(sa.sin_port);
	return fd;
}

int mh_connect(const char *hostport)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char host[64];
	const char *colon = strrchr(hostport, ':');
	int one = 1, fd;

	if (!colon || (size_t)(colon - hostport) >= sizeof(host))
		return -EINVAL;
	memcpy(host, hostport, (size_t)(colon - hostport));
	host[colon - hostport] = '\0';
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -EINVAL;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		return -e;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	return fd;
}
