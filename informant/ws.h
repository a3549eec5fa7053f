/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ws.h — one server-side websocket connection on the informant's loop:
 * libwslay does the framing (masking, fragmentation, ping/pong, the close
 * handshake, UTF-8 of text messages, the message size limit → 1009); this
 * file feeds it from a non-blocking socket registered in the loop.
 *
 * The socket belongs to whoever accepted it (libmicrohttpd after the 101):
 * a connection never closes it but hands it back exactly once through
 * release().  Callbacks run on the loop thread; inside them the user may
 * send and close, never free.  A connection ends by itself (the close
 * handshake is over, the peer went away, an error, the close deadline):
 * on_closed() runs, then the connection is freed.
 */
#ifndef VMI_WS_H
#define VMI_WS_H

#include <stddef.h>
#include <stdint.h>

#include "loop.h"

#define WS_CLOSE_WAIT_MS 1000            /* closing handshake, then drain */
#define WS_MAX_QUEUED_BYTES (1u << 20)    /* output the peer leaves unread */

struct ws_conn;

struct ws_close_info {
	uint16_t sent;      /* status code we sent (0: none) */
	uint16_t received;  /* the peer's (1005: close without code, 1006: none) */
	const char *why;    /* "closed", "peer gone", "receive error", … */
};

struct ws_conn_ops {
	/* A complete text message (valid UTF-8, at most max_msg bytes). */
	void (*on_text)(void *arg, const char *msg, size_t len);
	void (*on_binary)(void *arg, size_t len);
	/* The connection is over; it is freed right after this returns. */
	void (*on_closed)(void *arg, const struct ws_close_info *info);
};

/* Take over fd (non-blocking, connected, after the 101).  extra: bytes the
 * HTTP server read past the request (the client's first frames), copied.
 * release(release_arg) gives fd back when the connection is done.  On
 * failure nothing is taken: the caller still owns fd. */
int ws_conn_new(struct loop *loop, int fd, const void *extra, size_t extra_len,
		uint64_t max_msg, void (*release)(void *), void *release_arg,
		const struct ws_conn_ops *ops, void *arg, struct ws_conn **out);
/* Queue a text message; -EPIPE once closing, -ENOMEM. */
int ws_conn_send_text(struct ws_conn *c, const char *msg, size_t len);
/* Start the closing handshake with code and reason (at most 123 bytes);
 * on_closed() follows within WS_CLOSE_WAIT_MS plus the drain. */
void ws_conn_close(struct ws_conn *c, uint16_t code, const char *reason);
/* Shutdown: one non-blocking attempt to send what is queued (say, a
 * close), then release the socket and free, without on_closed(). */
void ws_conn_destroy(struct ws_conn *c);
/* "ip:port" of the peer (for logs). */
const char *ws_conn_peer(const struct ws_conn *c);

#endif
