/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ws_handshake.c — RFC 6455 §4.2: the checks on the client's upgrade
 * request and the accept key.  SHA-1 and base64 come from nettle,
 * which libmicrohttpd's GnuTLS already maps into the process (libcrypto
 * would add 1.4 MiB of touched pages, 400 KiB of them private relocations).
 */
#include "ws_handshake.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <nettle/base64.h>
#include <nettle/sha1.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define KEY_LEN 24 /* base64 of 16 bytes: 22 characters and "==" */

bool ws_header_has_token(const char *value, const char *token)
{
	size_t n = strlen(token);

	if (!value)
		return false;
	while (*value) {
		size_t len;

		value += strspn(value, " \t,");
		len = strcspn(value, ",");
		/* Trailing blanks of the element do not count. */
		while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
			len--;
		if (len == n && strncasecmp(value, token, n) == 0)
			return true;
		value += strcspn(value, ",");
	}
	return false;
}

static bool is_b64(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

int ws_accept_for(const char *key, char out[WS_ACCEPT_LEN + 1])
{
	char text[KEY_LEN + sizeof(WS_GUID)];
	uint8_t md[SHA1_DIGEST_SIZE];
	struct sha1_ctx sha;

	if (!key || strlen(key) != KEY_LEN || strcmp(key + 22, "==") != 0)
		return -EINVAL;
	for (int i = 0; i < 22; i++)
		if (!is_b64(key[i]))
			return -EINVAL;
	memcpy(text, key, KEY_LEN);
	memcpy(text + KEY_LEN, WS_GUID, sizeof(WS_GUID));
	sha1_init(&sha);
	sha1_update(&sha, strlen(text), (const uint8_t *)text);
	sha1_digest(&sha, sizeof(md), md);
	_Static_assert(BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE) == WS_ACCEPT_LEN, "28 bytes");
	base64_encode_raw(out, sizeof(md), md);
	out[WS_ACCEPT_LEN] = '\0';
	return 0;
}

static void refuse(struct ws_handshake_answer *out, unsigned status, const char *text,
		   const char *hdr_name, const char *hdr_value)
{
	out->status = status;
	snprintf(out->text, sizeof(out->text), "%s", text);
	snprintf(out->hdr_name, sizeof(out->hdr_name), "%s", hdr_name);
	snprintf(out->hdr_value, sizeof(out->hdr_value), "%s", hdr_value);
}

void ws_handshake_check(const struct ws_handshake_req *req, struct ws_handshake_answer *out)
{
	int r;

	memset(out, 0, sizeof(*out));
	if (!req->method || strcmp(req->method, "GET") != 0) {
		refuse(out, 405, "request method must be GET", "Allow", "GET");
		return;
	}
	/* Without both upgrade headers this is plain HTTP: say what is spoken
	 * here (RFC 7231 §6.5.15 wants the Upgrade header with 426). */
	if (!ws_header_has_token(req->upgrade, "websocket") ||
	    !ws_header_has_token(req->connection, "upgrade")) {
		refuse(out, 426, "this path speaks the websocket monitor protocol: "
				 "send Upgrade: websocket", "Upgrade", "websocket");
		return;
	}
	if (!req->version || strcmp(req->version, "HTTP/1.1") != 0) {
		refuse(out, 400, "websocket upgrade needs HTTP/1.1", "", "");
		return;
	}
	if (!req->ws_version || strcmp(req->ws_version, "13") != 0) {
		refuse(out, 426, "unsupported Sec-WebSocket-Version: 13 is spoken here",
		       "Sec-WebSocket-Version", "13");
		return;
	}
	r = ws_accept_for(req->key, out->accept);
	if (r == -EINVAL) {
		refuse(out, 400, "Sec-WebSocket-Key must be the base64 of 16 bytes", "", "");
		return;
	}
	if (r < 0) {
		refuse(out, 500, "Internal error", "", "");
		return;
	}
	out->status = 101;
}
