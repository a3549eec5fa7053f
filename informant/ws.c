/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ws.c — a websocket connection driven by the loop (see ws.h).
 *
 * One function, pump(), does all the work after any event: let wslay read
 * what the socket has, then write what is queued, then decide what to wait
 * for next.  Sends and closes requested by the user only queue and ask for
 * EPOLLOUT, so the user's callbacks never run inside another connection's
 * callbacks and a connection is never freed under its caller.
 *
 * Ending: when wslay wants neither to read nor to write (the close frames
 * crossed, or it refused the peer's input with 1002/1007/1009 and sent its
 * close), we shut down our side and read and discard until the peer's FIN.
 * Closing a socket with unread input makes the kernel send a reset, which
 * can destroy our close frame in the peer's buffers before it read it — a
 * 2 MiB message refused with 1009 is exactly that case.  The drain is
 * bounded by WS_CLOSE_WAIT_MS and DRAIN_MAX bytes.
 */
#include "ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <wslay/wslay.h>

#include "log.h"

#define DRAIN_MAX (4u << 20)

struct ws_conn {
	struct loop *loop;
	int fd;
	bool in_loop;
	uint32_t events;             /* what the loop watches now */
	wslay_event_context_ptr ctx;
	const struct ws_conn_ops *ops;
	void *arg;
	void (*release)(void *);
	void *release_arg;
	unsigned char *extra;        /* bytes read by the HTTP server, not yet fed */
	size_t extra_len, extra_off;
	struct loop_timer *close_timer;
	bool eof;                    /* the peer's FIN */
	bool failed;                 /* a socket error */
	bool draining;
	bool timed_out;
	/* A close asked for while messages are queued: wslay sends control
	 * frames first, so it is queued only once they are out. */
	bool close_pending;
	uint16_t close_code;
	char close_reason[124];
	uint64_t drained;
	char peer[64];
};

/* ---- wslay's I/O callbacks ------------------------------------------------- */

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
		       void *user)
{
	struct ws_conn *c = user;
	ssize_t n;

	(void)flags;
	if (c->extra_off < c->extra_len) {
		size_t k = c->extra_len - c->extra_off < len ? c->extra_len - c->extra_off : len;

		memcpy(buf, c->extra + c->extra_off, k);
		c->extra_off += k;
		return (ssize_t)k;
	}
	n = recv(c->fd, buf, len, 0);
	if (n > 0)
		return n;
	if (n == 0) {
		c->eof = true;
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	} else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
	} else {
		c->failed = true;
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	}
	return -1;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
		       void *user)
{
	struct ws_conn *c = user;
	ssize_t n = send(c->fd, data, len,
			 MSG_NOSIGNAL | (flags & WSLAY_MSG_MORE ? MSG_MORE : 0));

	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
	} else {
		c->failed = true;
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
	}
	return -1;
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
		   void *user)
{
	struct ws_conn *c = user;

	(void)ctx;
	/* Ping is answered by wslay, close too; pong needs nothing. */
	if (a->opcode == WSLAY_TEXT_FRAME)
		c->ops->on_text(c->arg, (const char *)a->msg, a->msg_length);
	else if (a->opcode == WSLAY_BINARY_FRAME)
		c->ops->on_binary(c->arg, a->msg_length);
}

/* ---- the end ---------------------------------------------------------------- */

/* Hand the socket back and free; no callback. */
static void release(struct ws_conn *c)
{
	if (c->in_loop)
		(void)loop_del_fd(c->loop, c->fd);
	loop_timer_free(c->close_timer);
	wslay_event_context_free(c->ctx);
	c->release(c->release_arg);
	free(c->extra);
	free(c);
}

static void finish(struct ws_conn *c)
{
	struct ws_close_info info = {
		.sent = wslay_event_get_close_sent(c->ctx) ? wslay_event_get_status_code_sent(c->ctx)
							    : 0,
		.received = wslay_event_get_status_code_received(c->ctx),
	};

	if (wslay_event_get_close_received(c->ctx))
		info.why = "closed";
	else if (c->timed_out)
		info.why = "no close from the peer in time";
	else if (c->eof)
		info.why = "peer gone";
	else if (c->failed)
		info.why = "socket error";
	else
		info.why = "closed by us";
	c->ops->on_closed(c->arg, &info);
	release(c);
}

static void on_close_timer(void *arg)
{
	struct ws_conn *c = arg;

	c->timed_out = true;
	finish(c);
}

static void arm_close_timer(struct ws_conn *c)
{
	if (loop_timer_armed(c->close_timer))
		return;
	/* Cannot bound the wait: end at the next pump instead. */
	if (loop_timer_arm(c->close_timer, WS_CLOSE_WAIT_MS, 0) < 0)
		c->failed = true;
}

/* Read and throw away until the peer's FIN; true when over. */
static bool drain(struct ws_conn *c)
{
	char buf[16384];
	ssize_t n;

	while ((n = recv(c->fd, buf, sizeof(buf), 0)) > 0) {
		c->drained += (uint64_t)n;
		if (c->drained > DRAIN_MAX)
			return true;
	}
	return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static void watch(struct ws_conn *c, uint32_t events)
{
	if (events == c->events)
		return;
	if (loop_mod_fd(c->loop, c->fd, events) == 0)
		c->events = events;
	else
		c->failed = true;
}

/* ---- the pump ------------------------------------------------------------------ */

static void pump(struct ws_conn *c)
{
	int r = 0;

	if (c->draining) {
		if (drain(c))
			finish(c);
		return;
	}
	if (wslay_event_want_read(c->ctx))
		r = wslay_event_recv(c->ctx);
	if (r == 0 && wslay_event_want_write(c->ctx))
		r = wslay_event_send(c->ctx);
	if (r == 0 && c->close_pending && wslay_event_get_queued_msg_count(c->ctx) == 0) {
		c->close_pending = false;
		(void)wslay_event_queue_close(c->ctx, c->close_code,
					      (const uint8_t *)c->close_reason,
					      strlen(c->close_reason));
		r = wslay_event_send(c->ctx);
	}
	if (r < 0 || c->eof || c->failed) {
		finish(c);
		return;
	}
	if (wslay_event_get_queued_msg_length(c->ctx) > WS_MAX_QUEUED_BYTES) {
		log_event(LOG_WARN, "websocket peer does not read its messages; closing",
			  LF_STR("peer", c->peer), LF_END);
		finish(c);
		return;
	}
	if (!wslay_event_want_read(c->ctx) && !wslay_event_want_write(c->ctx)) {
		/* Both close frames are through, or wslay refused the input
		 * and said so: our side is done, wait for the peer's FIN. */
		c->draining = true;
		(void)shutdown(c->fd, SHUT_WR);
		arm_close_timer(c);
		watch(c, EPOLLIN);
		if (!c->failed && drain(c) == false)
			return;
		finish(c);
		return;
	}
	if (wslay_event_get_close_sent(c->ctx) || !wslay_event_want_read(c->ctx))
		arm_close_timer(c);
	watch(c, (wslay_event_want_read(c->ctx) ? EPOLLIN : 0) |
			 (wslay_event_want_write(c->ctx) ? EPOLLOUT : 0));
	if (c->failed)
		finish(c);
}

static void on_io(void *arg, uint32_t events)
{
	struct ws_conn *c = arg;

	/* Hang-up with nothing left to read is the end; anything else is
	 * found out by reading. */
	if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN) && !c->draining) {
		c->eof = true;
		finish(c);
		return;
	}
	pump(c);
}

/* ---- the API ------------------------------------------------------------------------ */

static void name_peer(struct ws_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (getpeername(c->fd, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&ss;

			inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
			port = ntohs(in->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

			inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
			port = ntohs(in6->sin6_port);
		}
	}
	snprintf(c->peer, sizeof(c->peer), "%s:%u", host, port);
}

int ws_conn_new(struct loop *loop, int fd, const void *extra, size_t extra_len,
		uint64_t max_msg, void (*release_fn)(void *), void *release_arg,
		const struct ws_conn_ops *ops, void *arg, struct ws_conn **out)
{
	static const struct wslay_event_callbacks cbs = {
		.recv_callback = on_recv, .send_callback = on_send, .on_msg_recv_callback = on_msg,
	};
	struct ws_conn *c = malloc(sizeof(*c));
	int one = 1, r = -ENOMEM;

	if (!c)
		return -ENOMEM;
	*c = (struct ws_conn){ .loop = loop, .fd = fd, .ops = ops, .arg = arg,
			       .release = release_fn, .release_arg = release_arg };
	name_peer(c);
	/* The HTTP server turned Nagle back on for the upgrade; our messages
	 * are small requests and answers, each wanted at once. */
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (extra_len) {
		c->extra = malloc(extra_len);
		if (!c->extra)
			goto fail;
		memcpy(c->extra, extra, extra_len);
		c->extra_len = extra_len;
	}
	if (wslay_event_context_server_init(&c->ctx, &cbs, c) != 0)
		goto fail;
	wslay_event_config_set_max_recv_msg_length(c->ctx, max_msg);
	r = loop_timer_new(loop, on_close_timer, c, &c->close_timer);
	if (r < 0)
		goto fail;
	/* EPOLLOUT at first: the socket is writable, so the first pump comes
	 * at once and feeds wslay the bytes that came with the request. */
	c->events = EPOLLIN | EPOLLOUT;
	r = loop_add_fd(loop, fd, c->events, on_io, c);
	if (r < 0)
		goto fail;
	c->in_loop = true;
	*out = c;
	return 0;
fail:
	loop_timer_free(c->close_timer);
	if (c->ctx)
		wslay_event_context_free(c->ctx);
	free(c->extra);
	free(c);
	return r;
}

int ws_conn_send_text(struct ws_conn *c, const char *msg, size_t len)
{
	struct wslay_event_msg m = { WSLAY_TEXT_FRAME, (const uint8_t *)msg, len };
	int r = c->close_pending ? WSLAY_ERR_NO_MORE_MSG : wslay_event_queue_msg(c->ctx, &m);

	if (r == WSLAY_ERR_NO_MORE_MSG)
		return -EPIPE;
	if (r != 0)
		return -ENOMEM;
	watch(c, c->events | EPOLLOUT);
	return 0;
}

void ws_conn_close(struct ws_conn *c, uint16_t code, const char *reason)
{
	/* Already closing (either side) is fine: that close stands.  The
	 * frame goes out after the messages queued before it (pump). */
	if (c->close_pending || wslay_event_get_close_sent(c->ctx))
		return;
	c->close_pending = true;
	c->close_code = code;
	snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason ? reason : "");
	watch(c, c->events | EPOLLOUT);
	arm_close_timer(c);
}

void ws_conn_destroy(struct ws_conn *c)
{
	if (!c->failed && !c->draining) {
		(void)wslay_event_send(c->ctx);
		if (c->close_pending)
			(void)wslay_event_queue_close(c->ctx, c->close_code,
						      (const uint8_t *)c->close_reason,
						      strlen(c->close_reason));
		(void)wslay_event_send(c->ctx);
	}
	release(c);
}

const char *ws_conn_peer(const struct ws_conn *c)
{
	return c->peer;
}
