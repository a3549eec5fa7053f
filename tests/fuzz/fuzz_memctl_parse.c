/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_memctl_parse.c — memctl's parsers on arbitrary file content:
 * /proc/meminfo, /proc/self/status, cgroup single-value files and PSI.
 *
 * Input: one mode byte, then the content (not NUL-terminated).
 *   'a' mc_parse_meminfo: agrees with mc_parse_kb_field for both keys,
 *       zeroes what did not parse, and prints back to the same numbers;
 *   'b' mc_parse_kb_field with the key picked by the next byte;
 *   'c' mc_parse_u64_value with and without "max";
 *   'd' mc_parse_psi: flags come in pairs, averages within 0..100, values
 *       zero unless OK, and what parses prints back to the same numbers.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>

#include "fuzz.h"
#include "memctl.h"

static bool kb_result_ok(int r)
{
	return r == 0 || r == -ENOENT || r == -EINVAL || r == -ERANGE;
}

static void check_meminfo(const char *buf, size_t len)
{
	struct mc_meminfo mi, again;
	uint64_t total = 0, avail = 0;
	char text[128];
	int r = mc_parse_meminfo(buf, len, &mi);
	int rt = mc_parse_kb_field(buf, len, "MemTotal", &total);
	int ra = mc_parse_kb_field(buf, len, "MemAvailable", &avail);

	FUZZ_CHECK(r == 0 || r == -ENODATA);
	FUZZ_CHECK((r == 0) == (mi.mem_total_ok && mi.mem_available_ok));
	FUZZ_CHECK(mi.mem_total_ok == (rt == 0) && mi.mem_available_ok == (ra == 0));
	FUZZ_CHECK(mi.mem_total_ok ? mi.mem_total == total : mi.mem_total == 0);
	FUZZ_CHECK(mi.mem_available_ok ? mi.mem_available == avail : mi.mem_available == 0);
	if (r != 0)
		return;
	int n = snprintf(text, sizeof(text), "MemTotal: %" PRIu64 " kB\nMemAvailable: %" PRIu64
			 " kB\n", mi.mem_total / 1024, mi.mem_available / 1024);
	FUZZ_CHECK(n > 0 && (size_t)n < sizeof(text));
	FUZZ_CHECK(mc_parse_meminfo(text, (size_t)n, &again) == 0);
	FUZZ_CHECK(again.mem_total == mi.mem_total && again.mem_available == mi.mem_available);
}

static void check_kb_field(const uint8_t *p, size_t n)
{
	static const char *const keys[] = { "MemTotal", "MemAvailable", "VmRSS", "Mem", "M" };
	uint64_t bytes = 0;

	if (n == 0)
		return;
	const char *key = keys[p[0] % (sizeof(keys) / sizeof(keys[0]))];
	int r = mc_parse_kb_field((const char *)p + 1, n - 1, key, &bytes);
	FUZZ_CHECK(kb_result_ok(r));
	if (r == 0)
		FUZZ_CHECK(bytes % 1024 == 0);
}

static void check_u64_value(const char *buf, size_t len)
{
	uint64_t with_max = 1, plain = 1;
	int rm = mc_parse_u64_value(buf, len, true, &with_max);
	int rp = mc_parse_u64_value(buf, len, false, &plain);
	bool is_max = (len == 3 || (len == 4 && buf[3] == '\n')) && memcmp(buf, "max", 3) == 0;

	FUZZ_CHECK(rm == 0 || rm == -EINVAL || rm == -ERANGE);
	FUZZ_CHECK(rp == 0 || rp == -EINVAL || rp == -ERANGE);
	if (is_max) {
		FUZZ_CHECK(rm == 0 && with_max == 0 && rp == -EINVAL);
		return;
	}
	FUZZ_CHECK(rm == rp);
	if (rp == 0)
		FUZZ_CHECK(with_max == plain);
}

static void check_psi(const char *buf, size_t len)
{
	struct mc_psi psi, again;
	char text[256];
	int r = mc_parse_psi(buf, len, &psi);

	FUZZ_CHECK(r == 0 || r == -ENODATA);
	FUZZ_CHECK(psi.some_avg10_ok == psi.some_total_ok && psi.full_avg10_ok == psi.full_total_ok);
	FUZZ_CHECK((r == 0) == (psi.some_avg10_ok && psi.full_avg10_ok));
	FUZZ_CHECK(psi.some_avg10 >= 0 && psi.some_avg10 <= 100);
	FUZZ_CHECK(psi.full_avg10 >= 0 && psi.full_avg10 <= 100);
	if (!psi.some_avg10_ok)
		FUZZ_CHECK(psi.some_avg10 == 0 && psi.some_total == 0);
	if (!psi.full_avg10_ok)
		FUZZ_CHECK(psi.full_avg10 == 0 && psi.full_total == 0);
	if (r != 0)
		return;
	int n = snprintf(text, sizeof(text),
			 "some avg10=%.9f avg60=0.00 avg300=0.00 total=%" PRIu64 "\n"
			 "full avg10=%.9f avg60=0.00 avg300=0.00 total=%" PRIu64 "\n",
			 psi.some_avg10, psi.some_total, psi.full_avg10, psi.full_total);
	FUZZ_CHECK(n > 0 && (size_t)n < sizeof(text));
	FUZZ_CHECK(mc_parse_psi(text, (size_t)n, &again) == 0);
	FUZZ_CHECK(again.some_total == psi.some_total && again.full_total == psi.full_total);
	FUZZ_CHECK(fabs(again.some_avg10 - psi.some_avg10) < 1e-9 &&
		   fabs(again.full_avg10 - psi.full_avg10) < 1e-9);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int mode = fuzz_mode(data, size, 4);
	const char *buf = (const char *)data + 1;

	switch (mode) {
	case 0:
		check_meminfo(buf, size - 1);
		break;
	case 1:
		check_kb_field(data + 1, size - 1);
		break;
	case 2:
		check_u64_value(buf, size - 1);
		break;
	case 3:
		check_psi(buf, size - 1);
		break;
	default:
		break;
	}
	return 0;
}
