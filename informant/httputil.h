/* SPDX-License-Identifier: Apache-2.0 */
/*
 * httputil.h — pure helpers of the HTTP server: Go-compatible path
 * cleaning (for the 301 of unclean paths, docs/informant-protocol.md §5.0), the bearer-token
 * check (D19) and the check of a connection's first bytes.  No I/O except
 * http_token_load().
 */
#ifndef VMI_HTTPUTIL_H
#define VMI_HTTPUTIL_H

#include <stdbool.h>
#include <stddef.h>

#define HTTP_TOKEN_MAX 4096

/* Go's path.Clean: collapse "//", drop "." elements, resolve "..", never
 * above the root; "" becomes ".".  out needs strlen(in) + 2 bytes;
 * -ENAMETOOLONG otherwise. */
int http_path_clean(const char *in, char *out, size_t outlen);
/* What Go's ServeMux redirects to: the path made absolute and cleaned,
 * with a trailing slash kept (so "/register/" stays itself and 404s).
 * out needs strlen(in) + 3 bytes. */
int http_mux_clean(const char *in, char *out, size_t outlen);

/* Does an Authorization header value carry "Bearer <token>"?  The scheme
 * is case-insensitive; the token is compared in constant time for a
 * given token length.  A NULL header never matches. */
bool http_auth_ok(const char *header, const char *token);

/* How the first bytes of a connection begin (RFC 9112 §2.2, §3): at most
 * HTTP_START_MAX_BLANK CR/LF bytes, then a method token of at most
 * HTTP_METHOD_MAX characters, then a blank.  Returns 1 for a request line,
 * 0 when the n bytes are a valid but too short beginning (read more), -1
 * for anything else (garbage: answer 400).  HTTP_START_BYTES bytes always
 * decide. */
#define HTTP_START_MAX_BLANK 8
#define HTTP_METHOD_MAX 32
#define HTTP_START_BYTES (HTTP_START_MAX_BLANK + HTTP_METHOD_MAX + 1)
int http_request_start(const char *p, size_t n);

/* Read a token file: the contents without trailing whitespace; empty or
 * unreadable is an error with a message naming the file. */
int http_token_load(const char *path, char *out, size_t outlen, char *err, size_t errlen);

#endif
