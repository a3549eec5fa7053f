/* SPDX-License-Identifier: Apache-2.0 */
/*
 * httputil.c — path cleaning with Go's semantics and the bearer check.
 */
#include "httputil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* The lexical algorithm of Go's path.Clean, element by element. */
int http_path_clean(const char *p, char *out, size_t outlen)
{
	size_t n = strlen(p), r = 0, w = 0, dotdot = 0;
	bool rooted = n > 0 && p[0] == '/';

	if (outlen < n + 2)
		return -ENAMETOOLONG;
	if (rooted) {
		out[w++] = '/';
		r = dotdot = 1;
	}
	while (r < n) {
		if (p[r] == '/') {
			r++;
		} else if (p[r] == '.' && (r + 1 == n || p[r + 1] == '/')) {
			r++;
		} else if (p[r] == '.' && p[r + 1] == '.' && (r + 2 == n || p[r + 2] == '/')) {
			r += 2;
			if (w > dotdot) {
				/* back up over the last element */
				w--;
				while (w > dotdot && out[w] != '/')
					w--;
			} else if (!rooted) {
				/* a relative path keeps leading ".." */
				if (w > 0)
					out[w++] = '/';
				out[w++] = '.';
				out[w++] = '.';
				dotdot = w;
			}
		} else {
			if ((rooted && w != 1) || (!rooted && w != 0))
				out[w++] = '/';
			while (r < n && p[r] != '/')
				out[w++] = p[r++];
		}
	}
	if (w == 0)
		out[w++] = '.';
	out[w] = '\0';
	return 0;
}

int http_mux_clean(const char *in, char *out, size_t outlen)
{
	char abs[2048];
	size_t len;
	int r;

	if (snprintf(abs, sizeof(abs), "%s%s", in[0] == '/' ? "" : "/", in) >= (int)sizeof(abs))
		return -ENAMETOOLONG;
	r = http_path_clean(abs, out, outlen);
	if (r < 0)
		return r;
	len = strlen(abs);
	if (abs[len - 1] == '/' && strcmp(out, "/") != 0) {
		size_t olen = strlen(out);

		if (olen + 2 > outlen)
			return -ENAMETOOLONG;
		out[olen] = '/';
		out[olen + 1] = '\0';
	}
	return 0;
}

/* RFC 9110 §5.6.2: the characters of a token (a method). */
static bool is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int http_request_start(const char *p, size_t n)
{
	size_t i = 0, method;

	while (i < n && i < HTTP_START_MAX_BLANK && (p[i] == '\r' || p[i] == '\n'))
		i++;
	if (i == n)
		return 0;
	if (p[i] == '\r' || p[i] == '\n')
		return -1; /* more blank lines than anyone sends */
	for (method = 0; i < n && is_tchar((unsigned char)p[i]); i++)
		if (++method > HTTP_METHOD_MAX)
			return -1;
	if (i == n)
		return 0;
	return method > 0 && p[i] == ' ' ? 1 : -1;
}

bool http_auth_ok(const char *header, const char *token)
{
	static const char scheme[] = "Bearer ";
	size_t tlen = strlen(token), hlen;
	unsigned diff = 0;

	if (!header || strncasecmp(header, scheme, sizeof(scheme) - 1) != 0)
		return false;
	header += sizeof(scheme) - 1;
	hlen = strlen(header);
	/* Every byte of the token is looked at whatever the header holds, so
	 * the time taken does not tell how many leading bytes were right. */
	diff |= (unsigned)(hlen != tlen);
	for (size_t i = 0; i < tlen; i++)
		diff |= (unsigned)(uint8_t)token[i] ^ (unsigned)(uint8_t)(i < hlen ? header[i] : 0);
	return tlen > 0 && diff == 0;
}

int http_token_load(const char *path, char *out, size_t outlen, char *err, size_t errlen)
{
	/* O_NONBLOCK: a FIFO or device given by mistake must not hang us. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	struct stat st;
	ssize_t n;
	size_t len;

	if (fd < 0 || fstat(fd, &st) < 0) {
		int r = -errno;

		snprintf(err, errlen, "cannot read auth_token_file %s: %s", path, strerror(-r));
		if (fd >= 0)
			close(fd);
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "auth_token_file %s: not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	n = read(fd, out, outlen);
	close(fd);
	if (n < 0 || (size_t)n >= outlen) {
		snprintf(err, errlen, "cannot read auth_token_file %s: %s", path,
			 n < 0 ? "read error" : "token longer than 4095 bytes");
		return n < 0 ? -EIO : -EFBIG;
	}
	len = (size_t)n;
	while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r' || out[len - 1] == ' ' ||
			   out[len - 1] == '\t'))
		len--;
	out[len] = '\0';
	if (len == 0 || memchr(out, '\0', len) || strpbrk(out, "\r\n")) {
		snprintf(err, errlen, "auth_token_file %s: %s", path,
			 len == 0 ? "the file is empty" : "the token must be one line of text");
		return -EINVAL;
	}
	return 0;
}
