/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ws_handshake.h — the server's half of the RFC 6455 opening handshake,
 * pure: is this HTTP request a websocket upgrade we accept, and what do we
 * answer (101 with Sec-WebSocket-Accept, or a refusal).  server.c feeds it
 * the request's headers; nothing here touches a socket.
 *
 * Extensions offered by the client (nhooyr.io/websocket offers
 * permessage-deflate) are declined by not naming them in the answer;
 * subprotocols likewise (the agent asks for none).
 */
#ifndef VMI_WS_HANDSHAKE_H
#define VMI_WS_HANDSHAKE_H

#include <stdbool.h>

#define WS_ACCEPT_LEN 28 /* base64 of a SHA-1 digest */

struct ws_handshake_req {
	const char *method;     /* "GET" */
	const char *version;    /* "HTTP/1.1" */
	/* header values, NULL when absent */
	const char *upgrade;    /* Upgrade */
	const char *connection; /* Connection */
	const char *key;        /* Sec-WebSocket-Key */
	const char *ws_version; /* Sec-WebSocket-Version */
};

struct ws_handshake_answer {
	unsigned status;        /* 101, or 400, 405, 426 */
	char accept[WS_ACCEPT_LEN + 1]; /* for 101 */
	/* For a refusal: plain text, and one header to add (name "" = none):
	 * 426 names what we speak (Upgrade / Sec-WebSocket-Version). */
	char text[128];
	char hdr_name[32];
	char hdr_value[32];
};

void ws_handshake_check(const struct ws_handshake_req *req, struct ws_handshake_answer *out);

/* Sec-WebSocket-Accept for a client key (RFC 6455 §4.2.2); -EINVAL if the
 * key is not the base64 of 16 bytes, -ENOMEM/-EIO if hashing fails. */
int ws_accept_for(const char *key, char out[WS_ACCEPT_LEN + 1]);

/* Does a comma-separated header value hold token (case-insensitive)? */
bool ws_header_has_token(const char *value, const char *token);

#endif
