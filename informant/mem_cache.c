/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mem_cache.c — owns what we know of Postgres's file cache: the size it
 * holds, its maximum as last seen, and the size being set in the
 * background.
 *
 * The cache is best effort (D13): /upscale raises the cgroup limits at
 * once and the cache follows in the background, retried with back-off
 * until Postgres takes it; the limits always leave room for the larger of
 * the size held and the size being set, so the two never overlap past the
 * VM.  Every new target is sent to Postgres, which re-reads its maximum
 * each time (as the original did): a maximum raised by the operator is
 * picked up by the next resize, never remembered as a cap for ever.
 */
#include "memory_internal.h"

#include <errno.h>
#include <string.h>

void cache_init(struct memory *m)
{
	memset(&m->cache, 0, sizeof(m->cache));
	m->cache.cap = UINT64_MAX;
}

uint64_t cache_next_token(struct memory *m)
{
	return ++m->cache.last_token;
}

void cache_learned(struct memory *m, uint64_t requested, uint64_t actual)
{
	m->cache.known = true;
	m->cache.bytes = actual;
	/* Less than asked (both whole MiB) means Postgres's maximum capped it;
	 * the full size means there is no cap as of now. */
	m->cache.cap = actual < requested ? actual : UINT64_MAX;
	m->metrics->file_cache_bytes = actual;
}

static void cache_start(struct memory *m, uint64_t bytes, const char *reason)
{
	uint64_t token = cache_next_token(m);
	int r;

	r = m->io.cache_set(m->io.ctx, bytes, true, token);
	if (r < 0) {
		log_event(LOG_ERROR, "cannot start setting the file cache size",
			  LF_STR("reason", reason), LF_U64("bytes", bytes), LF_ERR(r), LF_END);
		return;
	}
	m->cache.inflight = bytes;
	m->cache.inflight_token = token;
	log_event(LOG_DEBUG, "file cache size requested", LF_STR("reason", reason),
		  LF_U64("bytes", bytes), LF_END);
}

void cache_size(struct memory *m, const char *reason)
{
	uint64_t target;

	if (!m->filecache)
		return;
	if (m->downscale.active) {
		/* The downscale owns the next size; a background one now would
		 * supersede its request or, landing after it, undo it. */
		m->cache.resize_pending = true;
		return;
	}
	target = plan_cache_target(&m->cfg, plan_basis(&m->cfg, m->limits.vm_bytes,
						       m->limits.mem_total));
	if (m->cache.inflight == target && target)
		return; /* already on its way */
	if (!m->cache.inflight && m->cache.known && m->cache.bytes == target)
		return; /* already there */
	/* Anything else, a capped size included, goes to Postgres: its
	 * maximum may have been raised since. */
	cache_start(m, target, reason);
}

void cache_restore(struct memory *m, uint64_t bytes, const char *reason)
{
	if (m->filecache)
		cache_start(m, bytes, reason);
}

void cache_after_downscale(struct memory *m)
{
	if (!m->cache.resize_pending)
		return;
	m->cache.resize_pending = false;
	cache_size(m, "after a downscale");
}

void cache_forget_inflight(struct memory *m)
{
	m->cache.inflight = 0;
	m->cache.inflight_token = 0;
}

void cache_on_result(struct memory *m, uint64_t token, int err, uint64_t requested,
		     uint64_t actual, const char *message)
{
	if (token == m->cache.inflight_token)
		cache_forget_inflight(m);
	if (err == -ECANCELED)
		return; /* superseded by a newer size, which reports itself */
	if (err < 0) {
		m->metrics->filecache_errors_total++;
		log_event(LOG_ERROR, "file cache size not set", LF_U64("bytes", requested),
			  LF_STR("error", message ? message : log_strerror(err)), LF_END);
		return;
	}
	cache_learned(m, requested, actual);
	log_event(LOG_INFO, "file cache size set", LF_U64("bytes", actual),
		  LF_U64("requested", requested), LF_END);
	(void)limits_sync(m, "file cache set");
}
