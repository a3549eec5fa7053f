/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cgfile.c — bounded reads and writes of cgroup files relative to an
 * O_PATH directory handle.  Every read opens, reads into a caller buffer
 * and closes: no allocation, and a file replaced by a test (new inode) is
 * always seen.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cg_internal.h"

int cgf_join(const char *root, const char *name, char *path, size_t pathlen,
	     char *err, size_t errlen)
{
	const char *p = name;
	int n;

	if (!root || !*root || !name || !*name || name[0] == '/') {
		snprintf(err, errlen, "cgroup root \"%s\" / name \"%s\": root must be set and "
			 "name must be a non-empty relative path", root ? root : "",
			 name ? name : "");
		return -EINVAL;
	}
	/* Refuse ".." components so the name cannot escape the root. */
	while (*p) {
		size_t seg = strcspn(p, "/");

		if (seg == 2 && p[0] == '.' && p[1] == '.') {
			snprintf(err, errlen, "cgroup name \"%s\": \"..\" is not allowed", name);
			return -EINVAL;
		}
		p += seg;
		p += strspn(p, "/");
	}
	n = snprintf(path, pathlen, "%s/%s", root, name);
	if (n < 0 || (size_t)n >= pathlen) {
		snprintf(err, errlen, "cgroup path \"%s/%s\" is too long", root, name);
		return -ENAMETOOLONG;
	}
	return 0;
}

int cgf_open_dir(const char *path, int *dirfd, char *err, size_t errlen)
{
	int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0) {
		int e = errno;

		snprintf(err, errlen, "cgroup directory %s: %s (create it, or fix [cgroup] "
			 "root/name)", path, strerror(e));
		return -e;
	}
	*dirfd = fd;
	return 0;
}

int cgf_read(int dirfd, const char *dirpath, const char *file, char *buf, size_t *len,
	     char *err, size_t errlen)
{
	size_t got = 0;
	int fd, e = 0;

	fd = openat(dirfd, file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "%s/%s: open for reading: %s", dirpath, file, strerror(e));
		return -e;
	}
	/* One byte more than the limit tells "exactly full" from "too long". */
	while (got <= CG_FILE_MAX) {
		ssize_t n = read(fd, buf + got, CG_FILE_MAX + 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			e = errno;
			break;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (e) {
		snprintf(err, errlen, "%s/%s: read: %s", dirpath, file, strerror(e));
		return -e;
	}
	if (got > CG_FILE_MAX) {
		snprintf(err, errlen, "%s/%s: longer than %d bytes", dirpath, file, CG_FILE_MAX);
		return -EFBIG;
	}
	*len = got;
	return 0;
}

int cgf_write(int dirfd, const char *dirpath, const char *file, const char *text,
	      char *err, size_t errlen)
{
	size_t len = strlen(text);
	ssize_t n;
	int fd, e;

	/* O_TRUNC matters for the plain-directory imitation; cgroupfs ignores it. */
	fd = openat(dirfd, file, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "%s/%s: open for writing: %s", dirpath, file, strerror(e));
		return -e;
	}
	do
		n = write(fd, text, len);
	while (n < 0 && errno == EINTR);
	e = n < 0 ? errno : 0;
	if (close(fd) < 0 && !e && errno != EINTR)
		e = errno;
	if (e) {
		snprintf(err, errlen, "%s/%s: writing \"%s\": %s", dirpath, file, text,
			 strerror(e));
		return -e;
	}
	if ((size_t)n != len) {
		snprintf(err, errlen, "%s/%s: short write of \"%s\" (%zd of %zu bytes)", dirpath,
			 file, text, n, len);
		return -EIO;
	}
	return 0;
}

int cgf_read_value(int dirfd, const char *dirpath, const char *file, uint64_t *out,
		   char *err, size_t errlen)
{
	char buf[CG_FILE_MAX + 1], name[PATH_MAX + 32];
	size_t len;
	int r = cgf_read(dirfd, dirpath, file, buf, &len, err, errlen);

	if (r < 0)
		return r;
	snprintf(name, sizeof(name), "%s/%s", dirpath, file);
	return cg_parse_value(name, buf, len, out, err, errlen);
}

int cgf_set_freeze(int dirfd, const char *dirpath, bool frozen, char *err, size_t errlen)
{
	uint64_t shown;
	int r;

	r = cgf_write(dirfd, dirpath, "cgroup.freeze", frozen ? "1" : "0", err, errlen);
	if (r < 0)
		return r;
	/* cgroup.freeze shows the requested state at once (cgroup.events "frozen"
	 * tells when the kernel is done), so one read-back suffices: no waiting. */
	r = cgf_read_value(dirfd, dirpath, "cgroup.freeze", &shown, err, errlen);
	if (r < 0)
		return r;
	if (shown != (frozen ? 1u : 0u)) {
		snprintf(err, errlen, "%s/cgroup.freeze: wrote %d but it reads back %llu", dirpath,
			 frozen ? 1 : 0, (unsigned long long)shown);
		return -EIO;
	}
	return 0;
}
