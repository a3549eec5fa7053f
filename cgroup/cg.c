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
	cg->dirfd = cg->epoll_fd = cg->inotify_fd = cg->wd = cg->current_fd = cg->stat_fd = -1;
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
	cg_drop_kept(cg);
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
	cg_drop_kept(cg);
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

void cg_drop_kept(struct cg *cg)
{
	if (cg->current_fd >= 0)
		close(cg->current_fd);
	if (cg->stat_fd >= 0)
		close(cg->stat_fd);
	cg->current_fd = cg->stat_fd = -1;
}

/* Files read on every sampler tick: one pread on a kept fd instead of
 * open, read, read, close.  Returns the length, or -errno after which the
 * fd is closed and the caller takes the by-name path (which also notices
 * a re-created directory). */
static ssize_t read_kept(struct cg *cg, int *fd, const char *file, char *buf)
{
	ssize_t n;

	if (*fd < 0)
		*fd = openat(cg->dirfd, file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (*fd < 0)
		return -errno;
	do
		n = pread(*fd, buf, CG_FILE_MAX + 1, 0);
	while (n < 0 && errno == EINTR);
	if (n >= 0 && n <= CG_FILE_MAX)
		return n;
	n = n < 0 ? -errno : -EFBIG;
	close(*fd);
	*fd = -1;
	return n;
}

int cg_read_current(struct cg *cg, uint64_t *out, char *err, size_t errlen)
{
	char buf[CG_FILE_MAX + 1], name[PATH_MAX + 32];
	ssize_t n = read_kept(cg, &cg->current_fd, "memory.current", buf);

	if (n < 0)
		return cg_read_value(cg, "memory.current", out, err, errlen);
	snprintf(name, sizeof(name), "%s/memory.current", cg->path);
	return cg_parse_value(name, buf, (size_t)n, out, err, errlen);
}

int cg_read_memory_stat(struct cg *cg, struct cg_memory_stat *out, char *err, size_t errlen)
{
	char buf[CG_FILE_MAX + 1], name[PATH_MAX + 32];
	ssize_t n = read_kept(cg, &cg->stat_fd, "memory.stat", buf);
	size_t len;
	int r;

	snprintf(name, sizeof(name), "%s/memory.stat", cg->path);
	if (n < 0) {
		r = cg_read_file(cg, "memory.stat", buf, &len, err, errlen);
		if (r < 0)
			return r;
		n = (ssize_t)len;
	}
	return cg_parse_memory_stat(name, buf, (size_t)n, out, err, errlen);
}

int cg_pressure_trigger(struct cg *cg, const char *trigger, int *fd, char *err, size_t errlen)
{
	size_t len = strlen(trigger) + 1; /* the kernel wants the NUL too */
	int e, f;

	if (!cg->cgroupfs) {
		snprintf(err, errlen, "%s: not on cgroupfs: no PSI triggers", cg->path);
		return -EOPNOTSUPP;
	}
	f = openat(cg->dirfd, "memory.pressure", O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (f < 0) {
		e = errno;
		snprintf(err, errlen, "%s/memory.pressure: open: %s", cg->path, strerror(e));
		return -e;
	}
	if (write(f, trigger, len) != (ssize_t)len) {
		/* A plain file takes the write; only the kernel's PSI file
		 * turns it into a trigger. */
		e = errno ? errno : EIO;
		close(f);
		snprintf(err, errlen, "%s/memory.pressure: trigger \"%s\": %s", cg->path, trigger,
			 strerror(e));
		return -e;
	}
	*fd = f;
	return 0;
}

int cg_reclaim_at(const char *dirpath, uint64_t bytes, char *err, size_t errlen)
{
	char text[24];
	int dirfd, r;

	/* A handle of its own: no state of the object is touched. */
	r = cgf_open_dir(dirpath, &dirfd, err, errlen);
	if (r < 0)
		return r;
	snprintf(text, sizeof(text), "%" PRIu64, bytes);
	r = cgf_write(dirfd, dirpath, "memory.reclaim", text, err, errlen);
	close(dirfd);
	return r;
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

int cg_read_pressure(struct cg *cg, struct cg_pressure *out, char *err, size_t errlen)
{
	char buf[CG_FILE_MAX + 1], name[PATH_MAX + 32];
	size_t len;
	int r = read_keyed(cg, "memory.pressure", buf, &len, name, sizeof(name), err, errlen);

	return r < 0 ? r : cg_parse_pressure(name, buf, len, out, err, errlen);
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
