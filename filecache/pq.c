/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pq.c — dlopen(3) of libpq and the table of its functions (see pq.h).
 * The handle is never closed: libpq stays for the life of the process
 * once a file cache or a connection string needed it.
 */
#include "pq.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>

struct fc_pq fc_pq;

static const char *const names[] = {
#define FC_PQ_NAME(f) #f,
	FC_PQ_FUNCS(FC_PQ_NAME)
#undef FC_PQ_NAME
};

int fc_pq_load(char *err, size_t errlen)
{
	static int result = 1; /* 1: not tried yet */
	static char why[256];
	void **slots = (void **)&fc_pq;
	void *lib;

	if (result == 1) {
		_Static_assert(sizeof(fc_pq) == sizeof(names) / sizeof(names[0]) * sizeof(void *),
			       "one slot per name");
		lib = dlopen(FC_PQ_SONAME, RTLD_NOW | RTLD_LOCAL);
		result = lib ? 0 : -ENOENT;
		for (size_t i = 0; lib && i < sizeof(names) / sizeof(names[0]); i++) {
			slots[i] = dlsym(lib, names[i]);
			if (!slots[i])
				result = -ENOENT;
		}
		if (result < 0)
			snprintf(why, sizeof(why), "%s", dlerror());
	}
	if (result < 0)
		snprintf(err, errlen, "cannot load libpq (%s): %s — install libpq5", FC_PQ_SONAME,
			 why);
	return result;
}
