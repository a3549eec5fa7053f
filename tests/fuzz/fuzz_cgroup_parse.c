/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_cgroup_parse.c — the cgroup file parsers on arbitrary file content
 * (torn reads, a hostile or buggy kernel interface, a fake cgroupfs).
 *
 * Input: one mode byte, then the file content (not NUL-terminated).
 *   'a' cg_parse_value, the one parser of the single-value files;
 *   'b' cg_parse_memory_events;
 *   'c' cg_parse_cgroup_events;
 *   'd' cg_parse_memory_stat (and cg_workload_bytes on what it parsed);
 *   'e' cg_parse_pressure.
 * Every failure must return a documented errno and a non-empty message
 * that fits the caller's buffer; what parses must print back canonically
 * and parse again to the same values.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>

#include "cgroup.h"
#include "fuzz.h"

#define ERRLEN 160

static void check_failure(int r, const char *err)
{
	FUZZ_CHECK(r == -EINVAL || r == -ERANGE || r == -ENODATA || r == -EFBIG);
	FUZZ_CHECK(fuzz_message_ok(err, ERRLEN));
}

static void check_value(const char *buf, size_t len, char *err)
{
	uint64_t cg = 0, again = 1;
	char text[32];
	int n, r = cg_parse_value("memory.high", buf, len, &cg, err, ERRLEN);

	if (r < 0) {
		check_failure(r, err);
		return;
	}
	/* Canonical text ("max" or digits and a newline) parses back the same. */
	n = cg == CG_UNLIMITED ? snprintf(text, sizeof(text), "max\n")
			       : snprintf(text, sizeof(text), "%" PRIu64 "\n", cg);
	FUZZ_CHECK(n > 0 && (size_t)n < sizeof(text));
	FUZZ_CHECK(cg_parse_value("memory.high", text, (size_t)n, &again, err, ERRLEN) == 0);
	FUZZ_CHECK(again == cg);
}

static void check_memory_events(const char *buf, size_t len, char *err)
{
	struct cg_memory_events ev, again;
	char text[512];
	int n, r = cg_parse_memory_events("memory.events", buf, len, &ev, err, ERRLEN);

	if (r < 0) {
		check_failure(r, err);
		return;
	}
	FUZZ_CHECK(ev.has_oom_group_kill || ev.oom_group_kill == 0);
	n = snprintf(text, sizeof(text),
		     "low %" PRIu64 "\nhigh %" PRIu64 "\nmax %" PRIu64 "\noom %" PRIu64
		     "\noom_kill %" PRIu64 "\n",
		     ev.low, ev.high, ev.max, ev.oom, ev.oom_kill);
	FUZZ_CHECK(n > 0 && (size_t)n < sizeof(text));
	if (ev.has_oom_group_kill)
		n += snprintf(text + n, sizeof(text) - (size_t)n, "oom_group_kill %" PRIu64 "\n",
			      ev.oom_group_kill);
	FUZZ_CHECK((size_t)n < sizeof(text));
	r = cg_parse_memory_events("memory.events", text, (size_t)n, &again, err, ERRLEN);
	FUZZ_CHECK(r == 0);
	FUZZ_CHECK(again.low == ev.low && again.high == ev.high && again.max == ev.max &&
		   again.oom == ev.oom && again.oom_kill == ev.oom_kill &&
		   again.has_oom_group_kill == ev.has_oom_group_kill &&
		   again.oom_group_kill == ev.oom_group_kill);
}

static void check_cgroup_events(const char *buf, size_t len, char *err)
{
	struct cg_cgroup_events ev, again;
	char text[64];
	int n, r = cg_parse_cgroup_events("cgroup.events", buf, len, &ev, err, ERRLEN);

	if (r < 0) {
		check_failure(r, err);
		return;
	}
	n = snprintf(text, sizeof(text), "populated %d\nfrozen %d\n", ev.populated, ev.frozen);
	FUZZ_CHECK(n > 0 && (size_t)n < sizeof(text));
	r = cg_parse_cgroup_events("cgroup.events", text, (size_t)n, &again, err, ERRLEN);
	FUZZ_CHECK(r == 0 && again.populated == ev.populated && again.frozen == ev.frozen);
}

static void check_memory_stat(const char *buf, size_t len, char *err)
{
	struct cg_memory_stat st, again;
	char text[160];
	int n, r = cg_parse_memory_stat("memory.stat", buf, len, &st, err, ERRLEN);

	if (r < 0) {
		check_failure(r, err);
		return;
	}
	FUZZ_CHECK(st.has_refault_file || st.refault_file == 0);
	/* The workload never exceeds memory.current, whatever the numbers. */
	FUZZ_CHECK(cg_workload_bytes(st.anon, &st) <= st.anon);
	FUZZ_CHECK(cg_workload_bytes(UINT64_MAX, &st) >= UINT64_MAX - st.file);
	n = snprintf(text, sizeof(text), "anon %" PRIu64 "\nfile %" PRIu64 "\nshmem %" PRIu64 "\n",
		     st.anon, st.file, st.shmem);
	if (st.has_refault_file)
		n += snprintf(text + n, sizeof(text) - (size_t)n,
			      "workingset_refault_file %" PRIu64 "\n", st.refault_file);
	FUZZ_CHECK(n > 0 && (size_t)n < sizeof(text));
	r = cg_parse_memory_stat("memory.stat", text, (size_t)n, &again, err, ERRLEN);
	FUZZ_CHECK(r == 0 && again.anon == st.anon && again.file == st.file &&
		   again.shmem == st.shmem && again.refault_file == st.refault_file &&
		   again.has_refault_file == st.has_refault_file);
}

static void check_pressure(const char *buf, size_t len, char *err)
{
	struct cg_pressure pr, again;
	char text[200];
	int n, r = cg_parse_pressure("memory.pressure", buf, len, &pr, err, ERRLEN);

	if (r < 0) {
		check_failure(r, err);
		return;
	}
	FUZZ_CHECK(pr.some_avg10 >= 0 && pr.some_avg10 <= 100);
	FUZZ_CHECK(pr.full_avg10 >= 0 && pr.full_avg10 <= 100);
	/* The kernel's own form (two decimals) parses back to the same. */
	n = snprintf(text, sizeof(text),
		     "some avg10=%.2f avg60=0.00 avg300=0.00 total=%" PRIu64 "\n"
		     "full avg10=%.2f avg60=0.00 avg300=0.00 total=%" PRIu64 "\n",
		     pr.some_avg10, pr.some_total_us, pr.full_avg10, pr.full_total_us);
	FUZZ_CHECK(n > 0 && (size_t)n < sizeof(text));
	r = cg_parse_pressure("memory.pressure", text, (size_t)n, &again, err, ERRLEN);
	FUZZ_CHECK(r == 0 && again.some_total_us == pr.some_total_us &&
		   again.full_total_us == pr.full_total_us);
	FUZZ_CHECK(again.some_avg10 - pr.some_avg10 < 0.006 &&
		   pr.some_avg10 - again.some_avg10 < 0.006);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int mode = fuzz_mode(data, size, 5);
	const char *buf = (const char *)data + 1;
	char *err;

	if (mode < 0)
		return 0;
	err = malloc(ERRLEN);
	FUZZ_CHECK(err != NULL);
	memset(err, 'X', ERRLEN);
	if (mode == 0)
		check_value(buf, size - 1, err);
	else if (mode == 1)
		check_memory_events(buf, size - 1, err);
	else if (mode == 2)
		check_cgroup_events(buf, size - 1, err);
	else if (mode == 3)
		check_memory_stat(buf, size - 1, err);
	else
		check_pressure(buf, size - 1, err);
	free(err);
	return 0;
}
