/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cg_internal.h — shared between the cgroup library's source files only:
 * the object layout and the bounded file helpers.
 */
#ifndef VMI_CG_INTERNAL_H
#define VMI_CG_INTERNAL_H

#include <limits.h>

#include "cgroup.h"

struct cg {
	char path[PATH_MAX];      /* <root>/<name> */
	int dirfd;                /* O_PATH handle on the directory */
	bool cgroupfs;            /* statfs says cgroup2 */
	int epoll_fd;             /* what cg_watch_fd() hands out; -1 = not watching */
	int inotify_fd;           /* -1 when missing (to be re-created) */
	int wd;                   /* watch on memory.events; -1 when missing */
	uint64_t last_high;       /* the `high` counter last read by the watcher */
	uint64_t generation;      /* re-opens after the directory was re-created */
	int current_fd;           /* memory.current kept open for pread; -1 = closed */
	int stat_fd;              /* memory.stat, the same way */
};

/* Reads all of <dirpath>/<file> (at most CG_FILE_MAX bytes) into buf, which
 * holds CG_FILE_MAX + 1 bytes; sets *len.  Larger content fails (-EFBIG). */
int cgf_read(int dirfd, const char *dirpath, const char *file, char *buf, size_t *len,
	     char *err, size_t errlen);
/* Truncates <dirpath>/<file> and writes text (one write, no newline). */
int cgf_write(int dirfd, const char *dirpath, const char *file, const char *text,
	      char *err, size_t errlen);
/* Reads and parses a single-value file. */
int cgf_read_value(int dirfd, const char *dirpath, const char *file, uint64_t *out,
		   char *err, size_t errlen);
/* Writes "1"/"0" to cgroup.freeze and checks once that it reads back. */
int cgf_set_freeze(int dirfd, const char *dirpath, bool frozen, char *err, size_t errlen);
/* Builds <root>/<name> into path after validating name. */
int cgf_join(const char *root, const char *name, char *path, size_t pathlen,
	     char *err, size_t errlen);
/* Opens <path> as an O_PATH directory handle. */
int cgf_open_dir(const char *path, int *dirfd, char *err, size_t errlen);

/* Closes the watcher's fds (the object stays usable). */
void cg_watch_stop(struct cg *cg);
/* Closes the kept memory.current and memory.stat; the next read opens
 * them by name again (so a file replaced under the same name is seen). */
void cg_drop_kept(struct cg *cg);

#endif
