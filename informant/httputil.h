/* SPDX-License-Identifier: Apache-2.0 */
/*
 * httputil.h — pure helpers of the HTTP server: Go-compatible path
 * cleaning (for the 301 of unclean paths, spec §5.0) and the bearer-token
 * check (D19).  No I/O except http_token_load().
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

/* Read a token file: the contents without trailing whitespace; empty or
 * unreadable is an error with a message naming the file. */
int http_token_load(const char *path, char *out, size_t outlen, char *err, size_t errlen);

#endif
