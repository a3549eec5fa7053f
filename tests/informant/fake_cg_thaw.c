/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fake_cg_thaw.c — TEMPORARY test double for cg_thaw_path() until the
 * cgroup library (branch h-cgroup) is merged; linked into the platform
 * tests only, never into vm-informant.  Same observable effect on a plain
 * directory: "0" written to <root>/<name>/cgroup.freeze and read back.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int cg_thaw_path(const char *root, const char *name, char *err, size_t errlen);

int cg_thaw_path(const char *root, const char *name, char *err, size_t errlen)
{
	char path[4096], back[8] = "";
	int fd, r = 0;

	snprintf(path, sizeof(path), "%s/%s/cgroup.freeze", root, name);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	if (pwrite(fd, "0", 1, 0) != 1 || ftruncate(fd, 1) < 0 || pread(fd, back, 1, 0) != 1 ||
	    back[0] != '0') {
		r = -EIO;
		snprintf(err, errlen, "%s: thaw did not take", path);
	}
	close(fd);
	return r;
}
