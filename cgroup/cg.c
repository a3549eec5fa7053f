/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cg.c — the cgroup object: open (checks + thaw), limits, freeze/thaw.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "cg_internal.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

/* The six files the daemon uses and the access each needs. */
static const struct {
	const char *name;
	int mode;
} cg_files[] = {
	{ "memory.current", R_OK },
	{ "memory.high", R_OK | W_OK },
	{ "memory.max", R_OK | W_OK },
	{ "memory.events", R_OK },
	{ "cgroup.freeze", R_OK | W_OK },
	{ "cgroup.events", R_OK },
};

static int check_files(const struct cg *cg, char *err, size_t errlen)
{
	for (size_t i = 0; i < sizeof(cg_files) / sizeof(cg_files[0]); i++) {
		if (faccessat(cg->dirfd, cg_files[i].name, cg_files[i].mode, 0) < 0) {
			int e = errno;

			snprintf(err, errlen, "%s/%s: %s (%s access needed; is the memory "
				 "controller enabled and the cgroup delegated?)", cg->path,
				 cg_files[i].name, strerror(e),
				 cg_files[i].mode & W_OK ? "read/write" : "read");
			return -e;
		}
	}
	return 0;
}

static bool on_cgroupfs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && (uint64_t)st.f_type == CGROUP2_SUPER_MAGIC;
}

int cg_open(const char *root, const char *name, struct cg **out, char *err, size_t errlen)
{
	struct cg *cg;
	int r;

	*out = NULL;
	cg = calloc(1, sizeof(*cg));
	if (!cg) {
		snprintf(err, errlen, "cgroup: out of memory");
		return -ENOMEM;
	}
	cg->dirfd = cg->epoll_fd = cg->inotify_fd = cg->wd = -1;
	r = cgf_join(root, name, cg->path, sizeof(cg->path), err, errlen);
	if (r == 0)
		r = cgf_open_dir(cg->path, &cg->dirfd, err, errlen);
	if (r == 0)
		r = check_files(cg, err, errlen);
	/* A crash (ours or the supervisor's) may have left it frozen. */
	if (r == 0)
		r = cg_thaw(cg, err, errlen);
	if (r < 0) {
		if (cg->dirfd >= 0)
			close(cg->dirfd);
		free(cg);
		return r;
	}
	cg->cgroupfs = on_cgroupfs(cg->path);
	*out = cg;
	return 0;
}

int cg_close(struct cg *cg, char *err, size_t errlen)
{
	int r;

	if (!cg)
		return 0;
	r = cg_thaw(cg, err, errlen);
	cg_watch_stop(cg);
	close(cg->dirfd);
	free(cg);
	return r;
}

const char *cg_path(const struct cg *cg)
{
	return cg->path;
}

bool cg_is_cgroupfs(const struct cg *cg)
{
	return cg->cgroupfs;
}

uint64_t cg_generation(const struct cg *cg)
{
	return cg->generation;
}

/* A file vanished under our handle: the directory may have been removed
 * and created again (a restarted cgconfig or unit).  Re-open it by path;
 * true if that is a different directory now, to retry once. */
static bool cg_reopen(struct cg *cg)
{
	struct stat was, now;
	char ignored[256];
	int fd;

	if (cgf_open_dir(cg->path, &fd, ignored, sizeof(ignored)) < 0)
		return false;
	if (fstat(cg->dirfd, &was) < 0 || fstat(fd, &now) < 0 ||
	    (was.st_dev == now.st_dev && was.st_ino == now.st_ino)) {
		close(fd);
		return false;
	}
	close(cg->dirfd);
	cg->dirfd = fd;
	cg->generation++;
	return true;
}

static int cg_read_file(struct cg *cg, const char *file, char *buf, size_t *len, char *err,
			size_t errlen)
{
	int r = cgf_read(cg->dirfd, cg->path, file, buf, len, err, errlen);

	if (r == -ENOENT && cg_reopen(cg))
		r = cgf_read(cg->dirfd, cg->path, file, buf, len, err, errlen);
	return r;
}

static int cg_write_file(struct cg *cg, const char *file, const char *text, char *err,
			 size_t errlen)
{
	int r = cgf_write(cg->dirfd, cg->path, file, text, err, errlen);

	if (r == -ENOENT && cg_reopen(cg))
		r = cgf_write(cg->dirfd, cg->path, file, text, err, errlen);
	return r;
}

static int cg_set_freeze(struct cg *cg, bool frozen, char *err, size_t errlen)
{
	int r = cgf_set_freeze(cg->dirfd, cg->path, frozen, err, errlen);

	if (r == -ENOENT && cg_reopen(cg))
		r = cgf_set_freeze(cg->dirfd, cg->path, frozen, err, errlen);
	return r;
}

static int cg_read_value(struct cg *cg, const char *file, uint64_t *out, char *err,
			 size_t errlen)
{
	int r = cgf_read_value(cg->dirfd, cg->path, file, out, err, errlen);

	if (r == -ENOENT && cg_reopen(cg))
		r = cgf_read_value(cg->dirfd, cg->path, file, out, err, errlen);
	return r;
}

int cg_read_current(struct cg *cg, uint64_t *out, char *err, size_t errlen)
{
	return cg_read_value(cg, "memory.current", out, err, errlen);
}

int cg_read_high(struct cg *cg, uint64_t *out, char *err, size_t errlen)
{
	return cg_read_value(cg, "memory.high", out, err, errlen);
}

int cg_read_max(struct cg *cg, uint64_t *out, char *err, size_t errlen)
{
	return cg_read_value(cg, "memory.max", out, err, errlen);
}

/* Reads a keyed file into buf and names it "<path>/<file>" for messages. */
static int read_keyed(struct cg *cg, const char *file, char *buf, size_t *len, char *name,
		      size_t namelen, char *err, size_t errlen)
{
	snprintf(name, namelen, "%s/%s", cg->path, file);
	return cg_read_file(cg, file, buf, len, err, errlen);
}

int cg_read_memory_events(struct cg *cg, struct cg_memory_events *out, char *err, size_t errlen)
{
	char buf[CG_FILE_MAX + 1], name[PATH_MAX + 32];
	size_t len;
	int r = read_keyed(cg, "memory.events", buf, &len, name, sizeof(name), err, errlen);

	return r < 0 ? r : cg_parse_memory_events(name, buf, len, out, err, errlen);
}

int cg_read_frozen(struct cg *cg, bool *frozen, char *err, size_t errlen)
{
	char buf[CG_FILE_MAX + 1], name[PATH_MAX + 32];
	struct cg_cgroup_events ev;
	size_t len;
	int r = read_keyed(cg, "cgroup.events", buf, &len, name, sizeof(name), err, errlen);

	if (r == 0)
		r = cg_parse_cgroup_events(name, buf, len, &ev, err, errlen);
	if (r == 0)
		*frozen = ev.frozen;
	return r;
}

static int write_limit(struct cg *cg, const char *file, uint64_t bytes, char *err, size_t errlen)
{
	char text[24];

	if (bytes == CG_UNLIMITED)
		snprintf(text, sizeof(text), "max");
	else
		snprintf(text, sizeof(text), "%" PRIu64, bytes);
	return cg_write_file(cg, file, text, err, errlen);
}

int cg_write_max(struct cg *cg, uint64_t bytes, char *err, size_t errlen)
{
	return write_limit(cg, "memory.max", bytes, err, errlen);
}

int cg_write_high(struct cg *cg, uint64_t bytes, char *err, size_t errlen)
{
	return write_limit(cg, "memory.high", bytes, err, errlen);
}

int cg_freeze(struct cg *cg, char *err, size_t errlen)
{
	return cg_set_freeze(cg, true, err, errlen);
}

int cg_thaw(struct cg *cg, char *err, size_t errlen)
{
	return cg_set_freeze(cg, false, err, errlen);
}

int cg_thaw_path(const char *root, const char *name, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int dirfd, r;

	r = cgf_join(root, name, path, sizeof(path), err, errlen);
	if (r == 0)
		r = cgf_open_dir(path, &dirfd, err, errlen);
	if (r < 0)
		return r;
	r = cgf_set_freeze(dirfd, path, false, err, errlen);
	close(dirfd);
	return r;
}
