/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pq.h — libpq, loaded when first needed.  Not installed.
 *
 * Most VMs this daemon runs in never size a file cache, and libpq brings
 * OpenSSL, Kerberos and LDAP with it: about 3 MiB of mappings and 1 MiB of
 * relocated, private pages in every process that links it.  So the
 * library is not linked; the first connection string (a config check, a
 * redaction, the file cache itself) loads it with dlopen(3), and the code
 * calls it through fc_pq.  Its header still gives every prototype, so
 * each slot has libpq's own type.
 */
#ifndef VMI_FILECACHE_PQ_H
#define VMI_FILECACHE_PQ_H

#include <stddef.h>

#include <libpq-fe.h>

#define FC_PQ_SONAME "libpq.so.5"

#define FC_PQ_FUNCS(X)                                                             \
	X(PQclear) X(PQconnectPoll) X(PQconnectStartParams) X(PQconninfoFree)      \
	X(PQconninfoParse) X(PQconsumeInput) X(PQerrorMessage) X(PQfinish)         \
	X(PQflush) X(PQfreemem) X(PQgetResult) X(PQgetisnull) X(PQgetvalue)        \
	X(PQisBusy) X(PQnfields) X(PQntuples) X(PQresultErrorField)                \
	X(PQresultErrorMessage) X(PQresultStatus) X(PQsendQuery)                   \
	X(PQsetNoticeProcessor) X(PQsetnonblocking) X(PQsocket) X(PQstatus)

struct fc_pq {
#define FC_PQ_SLOT(f) __typeof__(f) *f;
	FC_PQ_FUNCS(FC_PQ_SLOT)
#undef FC_PQ_SLOT
};

/* Filled by fc_pq_load(); only read after it returned 0. */
extern struct fc_pq fc_pq;

/* Loads libpq once (later calls return the first result at once).  0, or
 * -ENOENT with "cannot load libpq …: <why> — install libpq5" in err. */
int fc_pq_load(char *err, size_t errlen);

#endif
