/* SPDX-License-Identifier: Apache-2.0 */
/*
 * curl_lib.h — libcurl, loaded when the first call to an agent is made.
 * Not installed.
 *
 * Only agents of the HTTP informant protocol (before v0.18.0) are called
 * over HTTP; current agents speak the websocket protocol, and a daemon
 * serving them never needs a client.  libcurl (Debian's is built with
 * OpenSSL, nghttp2, libssh2, LDAP and Kerberos) costs about 3 MiB of
 * mappings and 1 MiB of private relocated pages just by being linked, and
 * curl_global_init() initialises OpenSSL (its configuration, providers and
 * error strings: another 2 MiB of touched pages) although agents are only
 * ever called over http://.  So the client loads libcurl with dlopen(3) and
 * initialises it on its first call, and calls it through ap_curl.
 */
#ifndef AGENT_PROTO_CURL_LIB_H
#define AGENT_PROTO_CURL_LIB_H

/* The slots are called through pointers: curl's type-checking macros
 * would name the functions directly. */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>

#define AP_CURL_SONAME "libcurl.so.4"

#define AP_CURL_FUNCS(X)                                                             \
	X(curl_easy_cleanup) X(curl_easy_getinfo) X(curl_easy_init) X(curl_easy_setopt) \
	X(curl_easy_strerror) X(curl_global_cleanup) X(curl_global_init)              \
	X(curl_multi_add_handle) X(curl_multi_cleanup) X(curl_multi_info_read)        \
	X(curl_multi_init) X(curl_multi_remove_handle) X(curl_multi_setopt)           \
	X(curl_multi_socket_action) X(curl_slist_append) X(curl_slist_free_all)

struct ap_curl {
#define AP_CURL_SLOT(f) __typeof__(f) *f;
	AP_CURL_FUNCS(AP_CURL_SLOT)
#undef AP_CURL_SLOT
};

/* Filled by ap_curl_load(); only read after it returned 0. */
extern struct ap_curl ap_curl;

/* Loads libcurl once; later calls return the first result.  0 or -ELIBACC
 * (ap_client_load_error() in agent_proto.h says why). */
int ap_curl_load(void);

#endif
