/* SPDX-License-Identifier: Apache-2.0 */
/*
 * nocurl.c — an LD_PRELOAD shim for test_faults: dlopen(3) of libcurl
 * fails, as on a machine without libcurl4, while every other library
 * loads.  The failure comes from a real dlopen of a name that cannot
 * exist, so dlerror() holds the loader's own message, as it would.
 */
#include <dlfcn.h>
#include <string.h>

void *dlopen(const char *file, int mode)
{
	void *(*real)(const char *, int) = (void *(*)(const char *, int))dlsym(RTLD_NEXT,
										 "dlopen");

	if (file && !strncmp(file, "libcurl.so", strlen("libcurl.so")))
		file = "libcurl-hidden-by-vmi-test.so.4";
	return real(file, mode);
}
