/* SPDX-License-Identifier: Apache-2.0 */
/*
 * minihttp.h — the small HTTP/1.1 subset the benchmark tools speak: parse a
 * request or response head (Content-Length bodies only, keep-alive), and a
 * tiny epoll dispatcher shared by the tools.
 */
#ifndef VMI_BENCH_MINIHTTP_H
#define VMI_BENCH_MINIHTTP_H

#include <stddef.h>
#include <stdint.h>

struct mh_head {
	char method[16];
	char path[128];
	int status;              /* responses only */
	size_t content_length;   /* 0 when absent */
	size_t head_len;         /* bytes up to and including the blank line */
};

/* Parses the head at buf[0..len).  Returns 1 when complete (*out filled),
 * 0 when more bytes are needed, -1 when malformed or chunked. */
int mh_parse_request(const char *buf, size_t len, struct mh_head *out);
int mh_parse_response(const char *buf, size_t len, struct mh_head *out);

/* An epoll registration: data.ptr points to one of these. */
struct mh_watch {
	int fd;
	void (*on_ready)(struct mh_watch *w, uint32_t events);
};

/* Adds w->fd to ep for `events`; exits on failure. */
void mh_watch_add(int ep, struct mh_watch *w, uint32_t events);
/* One epoll_wait of at most timeout_ms; dispatches every ready watch. */
void mh_dispatch(int ep, int timeout_ms);

/* Listens on 127.0.0.1:port (0 = any free port), non-blocking; returns the
 * fd and stores the bound port.  Exits on failure. */
int mh_listen_loopback(uint16_t port, uint16_t *bound);
/* Connects (blocking, loopback is immediate) to "host:port", then makes the
 * socket non-blocking with TCP_NODELAY.  Returns the fd or -errno. */
int mh_connect(const char *hostport);

#endif
