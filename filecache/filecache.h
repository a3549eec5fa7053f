/* SPDX-License-Identifier: Apache-2.0 */
/*
 * filecache.h — size Postgres's local file cache to the VM.
 *
 * Two halves:
 *
 *  - Pure policy (size.c, redact.c): configuration validation, the cache
 *    size formula with the reference's exact IEEE-754 double arithmetic,
 *    and connection strings checked and shown without their secrets.
 *
 *  - An asynchronous Postgres client (pg.c) on libpq's non-blocking API.
 *    The object owns one epoll fd (fc_fd()) covering the libpq socket, a
 *    timerfd for the connect/query deadline, a timerfd for the retry
 *    back-off and an eventfd that wakes the caller for deferred work.  Add
 *    fc_fd() to your event loop for EPOLLIN and call fc_process() whenever
 *    it is readable.  Every callback runs from fc_process() (or from
 *    fc_cancel_all()/fc_free()), never from the request function itself.
 *
 * Connections: one connection per operation, opened when the operation
 * starts and closed (PQfinish) on every path: success, SQL error, bad
 * result, timeout, cancellation.  Resizes are rare (scaling events), a
 * connection over a Unix socket costs about a millisecond, and a fresh
 * connection can never be stale after a Postgres restart — so there is no
 * reconnect logic to get wrong and nothing stays open between operations.
 *
 * Blocking caveat: libpq resolves host names synchronously inside
 * PQconnectStartParams()/PQconnectPoll().  Use an IP address (hostaddr= or
 * host=127.0.0.1) or a Unix socket directory (host=/run/postgresql) in the
 * connection string so fc_process() never waits on DNS.  Without host=,
 * libpq uses its default Unix socket directory (unlike Go's lib/pq, which
 * uses TCP localhost:5432).  The usual PG* environment variables apply.
 */
#ifndef VMI_FILECACHE_H
#define VMI_FILECACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FC_MIB ((uint64_t)1 << 20)

/* ---- pure policy ------------------------------------------------------ */

struct fc_config {
	double resource_multiplier;         /* 0.75: target share of total memory */
	uint64_t min_remaining_after_cache; /* 640 MiB kept outside the cache */
	double spread_factor;               /* 0.1: reserve per cache byte while growing */
};

/* The original's defaults (docs/file-cache.md §1). */
void fc_config_default(struct fc_config *cfg);

/* Checks in the reference's order; on the first failure returns -EINVAL
 * and puts the reference's exact message into err. */
int fc_config_validate(const struct fc_config *cfg, char *err, size_t errlen);

/* Cache size in bytes (a whole number of MiB) for total_bytes of memory,
 * bit-exact with the original's float64 arithmetic (docs/file-cache.md §2). */
uint64_t fc_cache_size(const struct fc_config *cfg, uint64_t total_bytes);

/*
 * Connection strings the way libpq reads them (redact.c).  Nothing parses
 * them by hand: libpq's PQconninfoParse says what the password is.
 *
 * fc_connstr_check: libpq must parse the string, and no part of a password
 * may have spilled into another field, as happens with an unencoded '/'
 * or '@' in a URL's password (then a port is not a number, a host name or
 * a URL's database name holds '@').  -EINVAL (-ENOMEM) with a message that
 * never quotes the string: libpq's own complaint with its quotes masked.
 */
int fc_connstr_check(const char *connstr, char *err, size_t errlen);

/* The string as libpq reads it, as key=value pairs in libpq's order, every
 * secret (password, sslpassword) shown as "***"; just "***" when libpq
 * cannot parse it.  The result parses back to the same settings.  Always
 * NUL-terminates out (outlen > 0); if out is too small the copy ends
 * before the first pair that does not fit.  0, or -ENOBUFS if cut. */
int fc_connstr_redact(const char *in, char *out, size_t outlen);

/* The secret values libpq takes from a connection string, to be masked
 * wherever else they might show up (libpq's messages quote hosts, users,
 * database names and socket paths, any of which may equal a password). */
#define FC_SECRETS_MAX 4
struct fc_secrets {
	size_t n;
	char *v[FC_SECRETS_MAX];
};
/* 0, -EINVAL (libpq cannot parse it: no secrets), -ENOMEM. */
int fc_secrets_get(const char *connstr, struct fc_secrets *s);
void fc_secrets_clear(struct fc_secrets *s); /* wipes and frees */
/* in with every occurrence of a secret replaced by "***"; a copy too
 * long for out ends early, never inside a secret. */
void fc_secrets_mask(const struct fc_secrets *s, const char *in, char *out, size_t outlen);

/* A GUC name that may be put into SQL: 1..128 characters of
 * [A-Za-z0-9_.], starting with a letter or '_'.  Returns 0 or -EINVAL. */
int fc_setting_name_check(const char *name);

/* ---- asynchronous Postgres client --------------------------------------- */

struct fc;

struct fc_pg_config {
	const char *connstr;          /* libpq key=value string or URL ("" = defaults) */
	const char *size_setting;     /* NULL = "neon.file_cache_size_limit" */
	const char *max_size_setting; /* NULL = "neon.max_file_cache_size" */
	const char *application_name; /* NULL = "vm-informant"; the connstr's wins */
	uint32_t connect_timeout_ms;  /* 0 = 1000 */
	uint32_t query_timeout_ms;    /* all statements of one operation; 0 = 1000 */
	uint32_t retry_initial_ms;    /* fc_ensure_size back-off start; 0 = 250 */
	uint32_t retry_max_ms;        /* back-off cap; 0 = 10000 */
};

/*
 * Completion of an operation, called exactly once.  err is 0 or -errno:
 *   -ECONNREFUSED  could not connect (Postgres down, bad credentials, ...)
 *   -ETIMEDOUT     connect_timeout or query_timeout expired
 *   -EACCES        the user may not run ALTER SYSTEM / pg_reload_conf()
 *   -ENOENT        a setting does not exist (the neon extension is missing)
 *   -EBADMSG       a result was not one non-negative integer (or true)
 *   -EIO           another SQL error
 *   -ECANCELED     superseded by a newer size request, or fc_cancel_all()
 *   -ENOMEM        out of memory
 * bytes: fc_set_size/fc_ensure_size: the size actually set (mb x 1 MiB,
 * never above the upper bound); fc_read_size: the setting in bytes; 0 on
 * error.  msg is a human-readable line (also on success) that names the
 * connection with its password redacted; valid only during the call.
 */
typedef void (*fc_done_cb)(void *arg, int err, uint64_t bytes, const char *msg);

/* fc_ensure_size: an attempt failed with err/msg; next try in retry_in_ms. */
typedef void (*fc_retry_cb)(void *arg, int err, uint32_t retry_in_ms, const char *msg);

/* Validates the setting names (they go into SQL) and the connection string
 * (PQconninfoParse); connects to nothing yet.  Returns 0 or -errno. */
int fc_new(const struct fc_pg_config *cfg, struct fc **out, char *err, size_t errlen);

/* Runs fc_cancel_all(), then frees.  Not from inside a callback. */
void fc_free(struct fc *fc);

int fc_fd(const struct fc *fc);

/* Non-blocking: handles whatever is ready and runs completions.  Returns 0,
 * or -errno if the object's own epoll/timer fds fail (not for Postgres
 * errors, which go to the callbacks). */
int fc_process(struct fc *fc);

/*
 * Operations run one at a time, in request order, each on its own
 * connection.  A size request (fc_set_size or fc_ensure_size) supersedes
 * every size request that has not started yet, including an fc_ensure_size
 * waiting for its next attempt: their callbacks get -ECANCELED.  A size
 * request already talking to Postgres is not interrupted (the newer one
 * runs after it, so the last request wins); if it is an fc_ensure_size
 * whose attempt fails, it does not retry but ends with -ECANCELED.
 * These return 0 (queued) or -ENOMEM / -ESHUTDOWN (cb not called).
 */

/* SELECT pg_size_bytes(current_setting('<max>')), cap bytes at it, then
 * ALTER SYSTEM SET <size> = <mb>; SELECT pg_reload_conf(). */
int fc_set_size(struct fc *fc, uint64_t bytes, fc_done_cb cb, void *arg);

/* Like fc_set_size, but retries with exponential back-off (retry_initial_ms
 * doubling up to retry_max_ms) until Postgres accepts the size — for
 * start-up before Postgres is up.  retry_cb (may be NULL) reports each
 * failed attempt.  While it waits, other queued operations run. */
int fc_ensure_size(struct fc *fc, uint64_t bytes, fc_done_cb cb, fc_retry_cb retry_cb,
		   void *arg);

/* SELECT pg_size_bytes(current_setting('<size>')). */
int fc_read_size(struct fc *fc, fc_done_cb cb, void *arg);

/* Ends every operation (closing any connection) and runs each callback
 * with -ECANCELED before returning.  Callbacks may queue new requests. */
void fc_cancel_all(struct fc *fc);

/* The connection string with passwords redacted, for log lines. */
const char *fc_connstr_display(const struct fc *fc);

/* True when connecting would resolve a host name (a host= entry that is
 * neither a socket directory nor an IP address, without hostaddr=): libpq
 * does that synchronously, so the caller should warn.  False for strings
 * libpq cannot parse (fc_new reports those). */
bool fc_connstr_resolves_names(const char *connstr);

#endif
