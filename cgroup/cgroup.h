/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cgroup.h — the Postgres cgroup (cgroup v2): strict parsers for its files,
 * the I/O object (limits, freeze/thaw, memory.stat, PSI), the memory.events
 * watcher and the pure memory.high reaction state machine.
 *
 * Only memory.current, memory.high, memory.max, memory.events, cgroup.freeze
 * and cgroup.events under <root>/<name> are required, so a plain directory
 * holding those six files works as well as a real cgroup2 mount; where
 * they exist memory.stat, memory.pressure and memory.reclaim are used too.
 * Every function returns 0 or a negative errno; human messages go to the
 * caller's err buffer (file, value, what is wrong).  Nothing here blocks,
 * but cg_reclaim_at(), which is meant for a worker thread.
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

/* What memory.stat says about the cgroup's memory (bytes); the kernel's
 * other lines are skipped. */
struct cg_memory_stat {
	uint64_t anon, file, shmem;
};

/* memory.pressure: cumulative stall time (µs) and the 10 s averages (%). */
struct cg_pressure {
	uint64_t some_total_us, full_total_us;
	double some_avg10, full_avg10;
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
/* Parses memory.stat: same line rules; anon, file and shmem are required
 * (every kernel since 4.x writes them), the rest is skipped. */
int cg_parse_memory_stat(const char *file, const char *buf, size_t len,
			 struct cg_memory_stat *out, char *err, size_t errlen);
/* Parses a PSI file ("some avg10=… avg60=… avg300=… total=…" and a "full"
 * line, either may come first): both lines, each with avg10 and total, are
 * required; unknown tokens (a newer kernel's) are skipped. */
int cg_parse_pressure(const char *file, const char *buf, size_t len, struct cg_pressure *out,
		      char *err, size_t errlen);

/* The memory the workload itself holds: memory.current without the page
 * cache the kernel can reclaim at memory.high — current − (file − shmem),
 * floored at 0 (shmem and tmpfs count as file but cannot go without swap). */
uint64_t cg_workload_bytes(uint64_t current, const struct cg_memory_stat *st);

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
/* Bumped each time the directory was found removed and created anew and
 * was re-opened by path: the new files hold the kernel's defaults ("max"
 * limits), so the caller must write its limits again. */
uint64_t cg_generation(const struct cg *cg);

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
/* memory.stat (kept open like memory.current) and memory.pressure; -ENOENT
 * when the file does not exist (older kernels, plain test directories). */
int cg_read_memory_stat(struct cg *cg, struct cg_memory_stat *out, char *err, size_t errlen);
int cg_read_pressure(struct cg *cg, struct cg_pressure *out, char *err, size_t errlen);
/* Registers a PSI trigger ("some 100000 1000000": 100 ms of stall within
 * 1 s) on memory.pressure and hands out the fd to poll for EPOLLPRI; the
 * caller closes it.  -ENOENT/-EINVAL/-EOPNOTSUPP where triggers are not
 * supported (plain directories, older kernels). */
int cg_pressure_trigger(struct cg *cg, const char *trigger, int *fd, char *err, size_t errlen);
/* Asks the kernel to reclaim bytes from the cgroup at dirpath (cg_path())
 * through memory.reclaim.  BLOCKS while the kernel reclaims, so it takes a
 * path, not the object: it is meant for a worker thread.  -EAGAIN when
 * less could be reclaimed, -ENOENT without memory.reclaim. */
int cg_reclaim_at(const char *dirpath, uint64_t bytes, char *err, size_t errlen);

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
 * second) instead of readability; also re-creates a missing inotify and
 * re-opens the kept memory.current by name. */
int cg_watch_poll(struct cg *cg, uint64_t *new_events, char *err, size_t errlen);

/* ---- memory.high reaction state machine (pure; times in ms, monotonic) ---- */

struct cg_react_config {
	uint64_t max_upscale_wait_ms;          /* longest freeze: 20 */
	uint64_t min_freeze_interval_ms;       /* from a thaw to the next freeze: 1000 */
	uint64_t memory_high_step;             /* raise/lower step in bytes: 10 MiB */
	uint64_t memory_high_step_interval_ms; /* at most one step per: 25 */
	uint64_t relax_after_ms;               /* quiet time before lowering a raised
						  memory.high back (D10); 0 = never */
};

struct cg_react {
	struct cg_react_config cfg;
	bool frozen, ever_thawed;
	uint64_t freeze_deadline, last_thaw, last_event;
	uint64_t last_step;       /* last raise or lower */
	uint64_t raised;          /* floor for memory.high the raise asks for; 0 = none */
};

struct cg_react_action {
	bool freeze, thaw;
	bool want_memory;         /* pressure: ask for memory (the caller rate-limits) */
	bool raise_changed;       /* r->raised changed: rewrite memory.high */
	bool has_deadline;        /* call cg_react_on_timer at deadline_ms */
	uint64_t deadline_ms;
};

/* Fills cfg with the defaults (20 ms, 1 s, 10 MiB, 25 ms, 1 s). */
void cg_react_config_default(struct cg_react_config *cfg);
/* Starts idle: not frozen, nothing raised. */
void cg_react_init(struct cg_react *r, const struct cg_react_config *cfg);
/* A memory.high event (any batch size).  high/max are the limits the files
 * hold now.  Freezes (at most once per min_freeze_interval, counted from
 * the thaw) or, between freezes, raises the floor one step above high,
 * never above max (D10).  Every event wants memory. */
void cg_react_on_event(struct cg_react *r, uint64_t now, uint64_t high, uint64_t max,
		       struct cg_react_action *out);
/* An upscale arrived: thaw at once if frozen.  The raise stays until the
 * limits catch up with it (cg_react_on_base) or pressure ends. */
void cg_react_on_upscale(struct cg_react *r, uint64_t now, struct cg_react_action *out);
/* The deadline passed: thaw a freeze that timed out; after relax_after_ms
 * without events lower the raise one step, forgetting it once it reaches
 * base_high (the computed memory.high). */
void cg_react_on_timer(struct cg_react *r, uint64_t now, uint64_t base_high,
		       struct cg_react_action *out);
/* The caller's thaw failed: stay "frozen" and ask for a retry at the next
 * deadline (max_upscale_wait_ms from now), so no path leaves it frozen. */
void cg_react_on_thaw_failed(struct cg_react *r, uint64_t now, struct cg_react_action *out);
/* The computed memory.high is now base_high: a raise at or below it has
 * done its job and is forgotten.  True if it was. */
bool cg_react_on_base(struct cg_react *r, uint64_t base_high);
/* A checked downscale set new limits: the raise is void. */
void cg_react_drop_raise(struct cg_react *r);

#endif
