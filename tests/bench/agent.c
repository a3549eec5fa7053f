/* SPDX-License-Identifier: Apache-2.0 */
/* agent.c — the benchmarks' minimal autoscaler-agent (see agent.h). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"
#include "bench_util.h"

static void reply(struct agent_conn *c, int status, const char *reason, const char *body)
{
	char out[1024];
	int n = snprintf(out, sizeof(out), "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n"
			 "Content-Type: application/json\r\n\r\n%s", status, reason,
			 strlen(body), body);

	/* Replies are small and the socket idle: one write is enough. */
	if (n > 0 && write(c->w.fd, out, (size_t)n) != n)
		fprintf(stderr, "agent: short reply write\n");
}

static void reply_message(struct agent_conn *c)
{
	char body[160];

	snprintf(body, sizeof(body), "{\"data\":{\"agentID\":\"%s\"},\"sequenceNumber\":%llu}",
		 c->a->id, (unsigned long long)++c->a->seq);
	reply(c, 200, "OK", body);
}

/* Answers one complete request like the reference agent would. */
static void handle(struct agent_conn *c, const struct mh_head *h, const char *body)
{
	struct agent *a = c->a;
	bool post = !strcmp(h->method, "POST");

	if (!strcmp(h->path, "/id") && !strcmp(h->method, "GET")) {
		a->id_requests++;
		reply_message(c);
		return;
	}
	if (!post || (strcmp(h->path, "/resume") && strcmp(h->path, "/suspend") &&
		      strcmp(h->path, "/try-upscale"))) {
		reply(c, 404, "Not Found", "not found");
		return;
	}
	if (!strstr(body, a->id)) {
		reply(c, 404, "Not Found", "AgentID not found");
		return;
	}
	if (!strcmp(h->path, "/resume"))
		a->resumed = true;
	else if (!strcmp(h->path, "/suspend"))
		a->resumed = false;
	reply_message(c);
	if (!strcmp(h->path, "/try-upscale")) {
		a->try_requests++;
		if (a->on_try)
			a->on_try(a, c->first_byte_ns);
	}
}

static void close_conn(struct agent_conn *c)
{
	close(c->w.fd);
	c->w.fd = -1;
	c->len = 0;
}

static void on_conn(struct mh_watch *w, uint32_t events)
{
	struct agent_conn *c = (struct agent_conn *)w;
	uint64_t now = bench_now_ns();
	ssize_t n = read(w->fd, c->in + c->len, sizeof(c->in) - 1 - c->len);
	struct mh_head h;
	int r;

	if (n <= 0) {
		if (n < 0 && errno == EAGAIN)
			return;
		close_conn(c);
		return;
	}
	if (c->len == 0)
		c->first_byte_ns = now;
	c->len += (size_t)n;
	while ((r = mh_parse_request(c->in, c->len, &h)) == 1 &&
	       c->len >= h.head_len + h.content_length) {
		size_t total = h.head_len + h.content_length;
		char body[4096];
		size_t blen = h.content_length < sizeof(body) ? h.content_length : sizeof(body) - 1;

		memcpy(body, c->in + h.head_len, blen);
		body[blen] = '\0';
		handle(c, &h, body);
		memmove(c->in, c->in + total, c->len - total);
		c->len -= total;
		c->first_byte_ns = now;
	}
	if (r < 0)
		close_conn(c);
}

static void on_accept(struct mh_watch *w, uint32_t events)
{
	struct agent *a = (struct agent *)((char *)w - offsetof(struct agent, listener));
	int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	for (int i = 0; i < AGENT_MAX_CONNS; i++) {
		struct agent_conn *c = &a->conns[i];

		if (c->w.fd >= 0)
			continue;
		c->w.fd = fd;
		c->w.on_ready = on_conn;
		c->a = a;
		c->len = 0;
		mh_watch_add(a->ep, &c->w, EPOLLIN);
		return;
	}
	close(fd);   /* more connections than any informant should open */
}

static void client_close(struct agent *a)
{
	if (a->client.fd >= 0) {
		epoll_ctl(a->ep, EPOLL_CTL_DEL, a->client.fd, NULL);
		close(a->client.fd);
	}
	a->client.fd = -1;
	a->cin_len = 0;
}

static void on_client(struct mh_watch *w, uint32_t events)
{
	struct agent *a = (struct agent *)((char *)w - offsetof(struct agent, client));
	ssize_t n = read(w->fd, a->cin + a->cin_len, sizeof(a->cin) - 1 - a->cin_len);
	struct mh_head h;
	int r;

	if (n <= 0) {
		if (n < 0 && errno == EAGAIN)
			return;
		client_close(a);
		if (a->client_busy) {
			a->client_busy = false;
			a->on_reply(a, 0, "", 0);
		}
		return;
	}
	a->cin_len += (size_t)n;
	r = mh_parse_response(a->cin, a->cin_len, &h);
	if (r == 0 || (r == 1 && a->cin_len < h.head_len + h.content_length))
		return;
	a->client_busy = false;
	if (r < 0) {
		client_close(a);
		a->on_reply(a, 0, "", 0);
		return;
	}
	a->cin[h.head_len + h.content_length] = '\0';
	a->cin_len = 0;
	a->on_reply(a, h.status, a->cin + h.head_len, h.content_length);
}

static int send_request(struct agent *a, const char *method, const char *path,
			const char *body, agent_reply_fn on_reply)
{
	char out[1024];
	int n;

	if (a->client_busy)
		return -EBUSY;
	if (a->client.fd < 0) {
		int fd = mh_connect(a->daemon);

		if (fd < 0)
			return fd;
		a->client.fd = fd;
		a->client.on_ready = on_client;
		mh_watch_add(a->ep, &a->client, EPOLLIN);
	}
	n = snprintf(out, sizeof(out), "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %zu\r\n"
		     "Content-Type: application/json\r\n\r\n%s", method, path, a->daemon,
		     strlen(body), body);
	if (n < 0 || (size_t)n >= sizeof(out) || write(a->client.fd, out, (size_t)n) != n) {
		client_close(a);
		return -EIO;
	}
	a->client_busy = true;
	a->on_reply = on_reply;
	return 0;
}

void agent_init(struct agent *a, int ep, const char *daemon_addr, agent_try_fn on_try)
{
	unsigned char r[16];
	FILE *f = fopen("/dev/urandom", "rb");

	memset(a, 0, sizeof(*a));
	if (!f || fread(r, 1, sizeof(r), f) != sizeof(r))
		bench_die("/dev/urandom");
	fclose(f);
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
	snprintf(a->id, sizeof(a->id), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7],
		 r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
	a->ep = ep;
	a->on_try = on_try;
	snprintf(a->daemon, sizeof(a->daemon), "%s", daemon_addr);
	for (int i = 0; i < AGENT_MAX_CONNS; i++)
		a->conns[i].w.fd = -1;
	a->client.fd = -1;
	a->listener.fd = mh_listen_loopback(0, &a->port);
	a->listener.on_ready = on_accept;
	mh_watch_add(ep, &a->listener, EPOLLIN);
}

int agent_register(struct agent *a, agent_reply_fn on_reply)
{
	char body[256];

	snprintf(body, sizeof(body), "{\"agentID\":\"%s\",\"agentServeAddr\":\"127.0.0.1:%u\","
		 "\"minProtoVersion\":1,\"maxProtoVersion\":4}", a->id, a->port);
	return send_request(a, "POST", "/register", body, on_reply);
}

int agent_upscale(struct agent *a, uint64_t vm_bytes, agent_reply_fn on_reply)
{
	char body[256];

	snprintf(body, sizeof(body), "{\"data\":{\"cpu\":\"1\",\"memory\":\"%llu\",\"id\":"
		 "{\"agentID\":\"%s\"}},\"sequenceNumber\":%llu}",
		 (unsigned long long)vm_bytes, a->id, (unsigned long long)++a->seq);
	return send_request(a, "PUT", "/upscale", body, on_reply);
}
