/* SPDX-License-Identifier: Apache-2.0 */
/*
 * meminfo.c — grow and shrink a /proc/meminfo-format file as the simulated
 * VM's memory changes.  Rewritten in place (same inode: readers keep it open
 * and pread it again): pwrite the new text at offset 0, then ftruncate.
 * Field widths are kept, so the size usually does not change at all.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim.h"

#define MEMINFO_MAX (64 * 1024)

static int read_all(int fd, char *buf, size_t cap, size_t *len)
{
	ssize_t n;

	*len = 0;
	while (*len < cap) {
		n = pread(fd, buf + *len, cap - *len, (off_t)*len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return 0;
		*len += (size_t)n;
	}
	return -EFBIG;
}

static int load(const char *path, int flags, int *fd, char *buf, size_t *len, char *err,
		size_t errlen)
{
	int r;

	*fd = open(path, flags | O_CLOEXEC);
	if (*fd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(-r));
		return r;
	}
	r = read_all(*fd, buf, MEMINFO_MAX - 1, len);
	if (r < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(-r));
		close(*fd);
		*fd = -1;
		return r;
	}
	buf[*len] = '\0';
	return 0;
}

/* Value of "key:   N kB" in the text, in kB. */
static bool find_kb(const char *text, const char *key, uint64_t *kb)
{
	size_t klen = strlen(key);

	for (const char *line = text; *line; line = strchr(line, '\n') + 1) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ':')
			return sscanf(line + klen + 1, "%" SCNu64, kb) == 1;
		if (!strchr(line, '\n'))
			break;
	}
	return false;
}

int meminfo_read_total(const char *path, uint64_t *bytes, char *err, size_t errlen)
{
	char *buf = malloc(MEMINFO_MAX);
	uint64_t kb;
	size_t len;
	int fd, r;

	if (!buf)
		return -ENOMEM;
	r = load(path, O_RDONLY, &fd, buf, &len, err, errlen);
	if (r == 0) {
		close(fd);
		if (!find_kb(buf, "MemTotal", &kb) || kb > UINT64_MAX / 1024) {
			snprintf(err, errlen, "%s has no valid \"MemTotal: N kB\" line", path);
			r = -EINVAL;
		} else {
			*bytes = kb * 1024;
		}
	}
	free(buf);
	return r;
}

static bool adjusted_key(const char *line, size_t *klen)
{
	static const char *const keys[] = { "MemTotal", "MemFree", "MemAvailable" };

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		*klen = strlen(keys[i]);
		if (strncmp(line, keys[i], *klen) == 0 && line[*klen] == ':')
			return true;
	}
	return false;
}

/* Append one line of the old text to out, with the number changed if it
 * is one of ours.  Returns the new output length or -EFBIG. */
static long rewrite_line(const char *line, size_t linelen, int64_t delta_kb, char *out,
			 size_t outlen, size_t cap)
{
	size_t klen, width;
	uint64_t kb;
	const char *num, *rest;
	int n;

	if (!adjusted_key(line, &klen) || sscanf(line + klen + 1, "%" SCNu64, &kb) != 1) {
		if (outlen + linelen >= cap)
			return -EFBIG;
		memcpy(out + outlen, line, linelen);
		return (long)(outlen + linelen);
	}
	num = line + klen + 1;
	rest = num + strspn(num, " \t");
	rest += strspn(rest, "0123456789");
	width = (size_t)(rest - num); /* padding + digits: keep the column */
	if (delta_kb < 0)
		kb = kb > (uint64_t)-delta_kb ? kb - (uint64_t)-delta_kb : 0;
	else
		kb += (uint64_t)delta_kb;
	n = snprintf(out + outlen, cap - outlen, "%.*s: %*" PRIu64 "%.*s", (int)klen, line,
		     width > 1 ? (int)width - 1 : 0, kb, (int)(linelen - (size_t)(rest - line)),
		     rest);
	if (n < 0 || (size_t)n >= cap - outlen)
		return -EFBIG;
	return (long)(outlen + (size_t)n);
}

int meminfo_adjust(const char *path, int64_t delta, char *err, size_t errlen)
{
	char *old = malloc(MEMINFO_MAX), *out = malloc(MEMINFO_MAX);
	size_t len, outlen = 0, linelen;
	const char *nl;
	long n;
	int fd = -1, r;

	if (!old || !out) {
		r = -ENOMEM;
		goto done;
	}
	r = load(path, O_RDWR, &fd, old, &len, err, errlen);
	if (r < 0)
		goto done;
	for (const char *line = old; line < old + len; line += linelen) {
		nl = memchr(line, '\n', (size_t)(old + len - line));
		linelen = nl ? (size_t)(nl - line) + 1 : (size_t)(old + len - line);
		n = rewrite_line(line, linelen, delta / 1024, out, outlen, MEMINFO_MAX);
		if (n < 0) {
			snprintf(err, errlen, "%s: rewritten text would exceed %d bytes", path,
				 MEMINFO_MAX);
			r = -EFBIG;
			goto done;
		}
		outlen = (size_t)n;
	}
	errno = 0;
	if (pwrite(fd, out, outlen, 0) != (ssize_t)outlen || ftruncate(fd, (off_t)outlen) < 0) {
		r = errno ? -errno : -EIO; /* a short write leaves errno 0 */
		snprintf(err, errlen, "cannot rewrite %s: %s", path, strerror(-r));
	}
done:
	if (fd >= 0)
		close(fd);
	free(old);
	free(out);
	return r;
}
