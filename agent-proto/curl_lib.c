/* SPDX-License-Identifier: Apache-2.0 */
/*
 * curl_lib.c — dlopen(3) of libcurl and the table of its functions (see
 * curl_lib.h).  The handle stays open for the life of the process.
 */
#include "curl_lib.h"

#include "agent_proto.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>

struct ap_curl ap_curl;

static const char *const names[] = {
#define AP_CURL_NAME(f) #f,
	AP_CURL_FUNCS(AP_CURL_NAME)
#undef AP_CURL_NAME
};
static char load_error[256];

int ap_curl_load(void)
{
	static int result = 1; /* 1: not tried yet */
	void **slot = (void **)&ap_curl, *lib;

	_Static_assert(sizeof(ap_curl) == sizeof(names), "one slot per name");
	if (result != 1)
		return result;
	lib = dlopen(AP_CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
	for (const char *const *name = names; lib && name < names + sizeof(names) / sizeof(*names);
	     name++, slot++)
		lib = (*slot = dlsym(lib, *name)) ? lib : NULL;
	if (!lib)
		snprintf(load_error, sizeof(load_error), "cannot load libcurl (%s): %s",
			 AP_CURL_SONAME, dlerror());
	result = lib ? 0 : -ELIBACC;
	return result;
}

const char *ap_client_load_error(void)
{
	return load_error;
}
