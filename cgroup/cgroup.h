/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cgroup.h — the Postgres cgroup (cgroup v2): strict parsers for its files,
 * the I/O object (limits, freeze/thaw), the memory.events watcher, the limit
 * formulas and the pure memory.high reaction state machine.
 *
 * Only memory.current, memory.high, memory.max, memory.events, cgroup.freeze
 * and cgroup.events under <root>/<name> are touched, so a plain directory
 * holding those six files works as well as a real cgroup2 mount.
 * Every function returns 0 or a negative errno; human messages go to the
 * caller's err buffer (file, value, what is wrong).  Nothing here blocks.
 */
#ifndef VMI_CGROUP_H
#define VMI_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "max" in a limit file: no limit. */
#define CG_UNLIMITED UINT64_MAX
/* Largest file content accepted; longer content is an error. */
#define CG_FILE_MAX 4096

/* ---- Parsers (pure; `file` is only used in messages) ---- */

struct cg_memory_events {
	uint64_t low, high, max, oom, oom_kill;
	uint64_t oom_group_kill;  /* 0 when absent */
	bool has_oom_group_kill;
};

struct cg_cgroup_events {
	bool populated, frozen;
};

/* Parses a single-value file (memory.current/high/max, cgroup.freeze): an
 * unsigned decimal or "max" (→ CG_UNLIMITED), optionally followed by one
 * newline.  Empty, signed, overflowing or trailing-garbage content fails. */
int cg_parse_value(const char *file, const char *buf, size_t len, uint64_t *out,
		   char *err, size_t errlen);
/* Parses memory.events: every line "name value" (two fields, value an
 * unsigned decimal); low/high/max/oom/oom_kill required, oom_group_kill
 * optional, unknown names skipped, a repeated name is an error. */
int cg_parse_memory_events(const char *file, const char *buf, size_t len,
			   struct cg_memory_events *out, char *err, size_t errlen);
/* Parses cgroup.events: same line rules; populated and frozen are required
 * and must be 0 or 1; unknown names are skipped. */
int cg_parse_cgroup_events(const char *file, const char *buf, size_t len,
			   struct cg_cgroup_events *out, char *err, size_t errlen);

/* ---- The cgroup object (I/O) ---- */

struct cg;

/* Opens <root>/<name> (name relative, no ".." component), checks that the
 * six files exist with the needed access and THAWS the cgroup, since a crash
 * may have left it frozen.  On error *out is NULL and err says why. */
int cg_open(const char *root, const char *name, struct cg **out, char *err, size_t errlen);
/* Thaws, stops the watcher and frees (always frees; NULL is a no-op).
 * Returns the thaw result so the caller can report a failure. */
int cg_close(struct cg *cg, char *err, size_t errlen);
/* "<root>/<name>", for messages. */
const char *cg_path(const struct cg *cg);
/* True when the directory lives on a real cgroup2 mount (statfs magic),
 * false for a plain directory imitating one. */
bool cg_is_cgroupfs(const struct cg *cg);

/* Read memory.current / memory.high / memory.max in bytes; "max" reads as
 * CG_UNLIMITED. */
int cg_read_current(struct cg *cg, uint64_t *out, char *err, size_t errlen);
int cg_read_high(struct cg *cg, uint64_t *out, char *err, size_t errlen);
int cg_read_max(struct cg *cg, uint64_t *out, char *err, size_t errlen);
/* Reads and strictly parses memory.events. */
int cg_read_memory_events(struct cg *cg, struct cg_memory_events *out, char *err, size_t errlen);
/* Reads the kernel's view of the freeze (cgroup.events "frozen"); on a plain
 * directory it is whatever the file says. */
int cg_read_frozen(struct cg *cg, bool *frozen, char *err, size_t errlen);

/* Write memory.max / memory.high as decimal bytes without newline
 * (CG_UNLIMITED writes "max").  Callers write max before high. */
int cg_write_max(struct cg *cg, uint64_t bytes, char *err, size_t errlen);
int cg_write_high(struct cg *cg, uint64_t bytes, char *err, size_t errlen);

/* Write "1" / "0" to cgroup.freeze and read it back once to check it took;
 * never waits for the kernel to finish freezing.  A failed thaw must be
 * retried by the caller (the cgroup may still be frozen). */
int cg_freeze(struct cg *cg, char *err, size_t errlen);
int cg_thaw(struct cg *cg, char *err, size_t errlen);
/* Standalone thaw of <root>/<name> without an object, e.g. by the
 * supervisor after its child died.  Same checks as cg_thaw. */
int cg_thaw_path(const char *root, const char *name, char *err, size_t errlen);

/* ---- memory.events watcher: one inotify instance for the object's life ---- */

/* Arms an IN_MODIFY watch on memory.events and remembers the current
 * `high` counter (events before this are not reported). */
int cg_watch_start(struct cg *cg, char *err, size_t errlen);
/* The pollable fd (an epoll fd owned by the object, stable even when the
 * inotify instance inside is re-created); -1 before cg_watch_start. */
int cg_watch_fd(const struct cg *cg);
/* Call when cg_watch_fd() is readable: drains notifications, re-reads
 * memory.events and sets *new_events to the growth of `high` since the last
 * read (a burst is one batch; a decrease is a reset and reports 0).
 * *new_events is always set; on error it holds what could still be read and
 * a broken inotify instance has been re-created (or will be on the next call). */
int cg_watch_process(struct cg *cg, uint64_t *new_events, char *err, size_t errlen);
/* The same check driven by the caller's safety-net poll (e.g. every
 * 100 ms) instead of readability; also re-creates a missing inotify. */
int cg_watch_poll(struct cg *cg, uint64_t *new_events, char *err, size_t errlen);
/* The last `high` counter read by the watcher. */
uint64_t cg_watch_high_count(const struct cg *cg);

/* ---- Limits (pure) ---- */

struct cg_limits {
	uint64_t max, high;
};

/* a − b, or 0 when b > a. */
uint64_t cg_satsub(uint64_t a, uint64_t b);
/* One basis for every computation (D20): min(satsub(vm_bytes, sys_buffer),
 * mem_total).  A zero argument means "unknown": vm_bytes 0 → mem_total
 * (start-up before any agent), mem_total 0 → satsub(vm_bytes, sys_buffer). */
uint64_t cg_usable_bytes(uint64_t vm_bytes, uint64_t sys_buffer, uint64_t mem_total);
/* max = satsub(usable, file_cache) (pass 0 when the cache is not in
 * memory), high = satsub(max, oom_buffer).  The reference start-up is
 * cg_limits_compute(MemTotal, cache, oom_buffer). */
void cg_limits_compute(uint64_t usable, uint64_t file_cache, uint64_t oom_buffer,
		       struct cg_limits *out);
/* After /upscale and /downscale: usable = satsub(vm_bytes, sys_buffer),
 * then cg_limits_compute. */
void cg_limits_from_vm(uint64_t vm_bytes, uint64_t sys_buffer, uint64_t file_cache,
		       uint64_t oom_buffer, struct cg_limits *out);

struct cg_downscale_check {
	bool ok;
	uint64_t new_high, current, buffer;
};

/* Downscale rule: reject when new_high < current + buffer (saturating);
 * equality is accepted.  Fills *out with the numbers for the protocol's
 * Status text (formatted by the caller) and returns out->ok. */
bool cg_downscale_check(uint64_t new_high, uint64_t current, uint64_t buffer,
			struct cg_downscale_check *out);
/* A plain message for logs ("new memory.high N B < memory.current N B +
 * buffer N B: downscale rejected").  Returns the snprintf length or -EINVAL. */
int cg_downscale_describe(const struct cg_downscale_check *c, char *buf, size_t len);

/* ---- memory.high reaction state machine (pure; times in ms, monotonic) ---- */

struct cg_react_config {
	uint64_t max_upscale_wait_ms;          /* longest freeze: 20 */
	uint64_t min_freeze_interval_ms;       /* from a thaw to the next freeze: 1000 */
	uint64_t memory_high_step;             /* raise/lower step in bytes: 10 MiB */
	uint64_t memory_high_step_interval_ms; /* at most one step per: 25 */
	uint64_t upscale_retry_ms;             /* re-ask while pressure lasts: 2000 (D9) */
	uint64_t relax_after_ms;               /* quiet time before lowering a raised
						  memory.high back (D10); 0 = never */
};

struct cg_react {
	struct cg_react_config cfg;
	bool frozen, waiting, ever_thawed, raised;
	uint64_t freeze_deadline, last_thaw, last_request, last_event;
	uint64_t last_step;       /* last raise or lower */
	uint64_t base_high;       /* memory.high before the first raise */
	uint64_t set_high;        /* the value the last step wrote */
};

struct cg_react_action {
	bool freeze, thaw, request_upscale, set_high;
	uint64_t new_high;        /* when set_high */
	bool has_deadline;        /* call cg_react_on_timer at deadline_ms */
	uint64_t deadline_ms;
};

/* Fills cfg with the §8 defaults (20 ms, 1 s, 10 MiB, 25 ms, 2 s, 1 s). */
void cg_react_config_default(struct cg_react_config *cfg);
/* Starts idle: not frozen, not waiting, nothing raised. */
void cg_react_init(struct cg_react *r, const struct cg_react_config *cfg);
/* A memory.high event (any batch size).  high/max are the values just read
 * from the cgroup; the raise adds to high and never exceeds max (D10). */
void cg_react_on_event(struct cg_react *r, uint64_t now, uint64_t high, uint64_t max,
		       struct cg_react_action *out);
/* The upscale arrived (limits were rewritten): thaw at once if frozen,
 * forget the raise, stop waiting. */
void cg_react_on_upscale(struct cg_react *r, uint64_t now, struct cg_react_action *out);
/* The deadline passed: thaw a freeze that timed out, lower a raised
 * memory.high one step after pressure ended. */
void cg_react_on_timer(struct cg_react *r, uint64_t now, struct cg_react_action *out);
/* The caller's thaw failed: stay "frozen" and ask for a retry at the next
 * deadline (max_upscale_wait_ms from now), so no path leaves it frozen. */
void cg_react_on_thaw_failed(struct cg_react *r, uint64_t now, struct cg_react_action *out);
/* Limits were rewritten by a downscale: the raised value is gone. */
void cg_react_on_limits_written(struct cg_react *r);

#endif
