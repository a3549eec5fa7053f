/* SPDX-License-Identifier: Apache-2.0 */
/*
 * loadgen.c — keep-alive HTTP load generator for PUT /health-check.
 *
 * N connections, each sending one request and waiting for its response
 * before the next (request-response, no pipelining), for a fixed time after
 * a warm-up.  One thread and epoll, so it uses at most one core.  Prints
 * key=value figures: requests per second, latency percentiles, errors.
 *
 *   loadgen HOST:PORT BODY [--conns N] [--duration S] [--warmup S]
 *           [--path P] [--method M]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "bench_util.h"
#include "minihttp.h"

struct conn {
	struct mh_watch w;
	char in[8192];
	size_t in_len;
	uint64_t sent_at;
};

static char g_req[2048];
static size_t g_req_len;
static struct bench_samples g_lat;
static uint64_t g_measure_from, g_measure_until, g_done, g_errors, g_non200;

static void send_request(struct conn *c)
{
	ssize_t n = write(c->w.fd, g_req, g_req_len);

	/* A fresh request on an idle keep-alive socket always fits the buffer. */
	if (n != (ssize_t)g_req_len) {
		fprintf(stderr, "loadgen: short write: %s\n", n < 0 ? strerror(errno) : "partial");
		exit(1);
	}
	c->sent_at = bench_now_ns();
}

/* Consumes complete responses; returns -1 when the connection broke. */
static int consume(struct conn *c, uint64_t now)
{
	struct mh_head h;
	int r = mh_parse_response(c->in, c->in_len, &h);
	size_t total;

	if (r <= 0)
		return r;
	total = h.head_len + h.content_length;
	if (c->in_len < total)
		return 0;
	if (now >= g_measure_from && now < g_measure_until) {
		bench_samples_add(&g_lat, now - c->sent_at);
		g_done++;
		if (h.status != 200)
			g_non200++;
	}
	memmove(c->in, c->in + total, c->in_len - total);
	c->in_len -= total;
	if (now < g_measure_until)
		send_request(c);
	return 1;
}

static void on_conn(struct mh_watch *w, uint32_t events)
{
	struct conn *c = (struct conn *)w;
	ssize_t n = read(w->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);

	if (n <= 0) {
		if (n < 0 && errno == EAGAIN)
			return;
		fprintf(stderr, "loadgen: connection closed by server (%s)\n",
			n < 0 ? strerror(errno) : "EOF");
		g_errors++;
		close(w->fd);
		exit(1);
	}
	c->in_len += (size_t)n;
	if (consume(c, bench_now_ns()) < 0) {
		fprintf(stderr, "loadgen: malformed response\n");
		exit(1);
	}
}

int main(int argc, char **argv)
{
	uint64_t conns = 16, duration = 10, warmup = 1;
	const char *path = "/health-check", *method = "PUT";
	struct conn *cs;
	int ep, len;

	if (argc < 3) {
		fprintf(stderr, "usage: loadgen HOST:PORT BODY [--conns N] [--duration S] "
			"[--warmup S] [--path P] [--method M]\n");
		return 2;
	}
	for (int i = 3; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--conns"))
			conns = bench_parse_u64(argv[i], argv[i + 1]);
		else if (!strcmp(argv[i], "--duration"))
			duration = bench_parse_u64(argv[i], argv[i + 1]);
		else if (!strcmp(argv[i], "--warmup"))
			warmup = bench_parse_u64(argv[i], argv[i + 1]);
		else if (!strcmp(argv[i], "--path"))
			path = argv[i + 1];
		else if (!strcmp(argv[i], "--method"))
			method = argv[i + 1];
		else {
			fprintf(stderr, "loadgen: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	len = snprintf(g_req, sizeof(g_req), "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %zu\r\n"
		       "\r\n%s", method, path, argv[1], strlen(argv[2]), argv[2]);
	if (len < 0 || (size_t)len >= sizeof(g_req) || conns == 0 || conns > 4096) {
		fprintf(stderr, "loadgen: request too long or bad --conns\n");
		return 2;
	}
	g_req_len = (size_t)len;
	ep = epoll_create1(EPOLL_CLOEXEC);
	cs = calloc(conns, sizeof(*cs));
	if (ep < 0 || !cs)
		bench_die("loadgen: epoll/calloc");
	g_measure_from = bench_now_ns() + warmup * 1000000000u;
	g_measure_until = g_measure_from + duration * 1000000000u;
	for (uint64_t i = 0; i < conns; i++) {
		int fd = mh_connect(argv[1]);

		if (fd < 0) {
			fprintf(stderr, "loadgen: connect %s: %s\n", argv[1], strerror(-fd));
			return 1;
		}
		cs[i].w.fd = fd;
		cs[i].w.on_ready = on_conn;
		mh_watch_add(ep, &cs[i].w, EPOLLIN);
		send_request(&cs[i]);
	}
	/* Responses after the end are neither counted nor followed by a request. */
	while (bench_now_ns() < g_measure_until)
		mh_dispatch(ep, 100);
	printf("rps=%.0f non200=%llu errors=%llu conns=%llu duration_s=%llu\n",
	       (double)g_done / (double)duration, (unsigned long long)g_non200,
	       (unsigned long long)g_errors, (unsigned long long)conns,
	       (unsigned long long)duration);
	bench_samples_report(&g_lat, "lat");
	return g_non200 ? 3 : 0;
}
