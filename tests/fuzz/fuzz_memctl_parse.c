/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_memctl_parse.c — memctl's meminfo parser on arbitrary file content
 * (torn reads, garbage in a fake /proc/meminfo).
 *
 * Input: one mode byte, then the content (not NUL-terminated).
 *   'a' MemTotal, as the sampler reads it: a documented errno, a whole
 *       number of KiB, and what parses prints back to the same number;
 *   'b' mc_parse_kb_field with the key picked by the next byte.
 */
#include <errno.h>
#include <inttypes.h>

#include "fuzz.h"
#include "memctl.h"

static bool kb_result_ok(int r)
{
	return r == 0 || r == -ENOENT || r == -EINVAL || r == -ERANGE;
}

static void check_mem_total(const char *buf, size_t len)
{
	uint64_t total = 1, again = 2;
	char text[128];
	int r = mc_parse_kb_field(buf, len, "MemTotal", &total);

	FUZZ_CHECK(kb_result_ok(r));
	if (r != 0)
		return;
	FUZZ_CHECK(total % 1024 == 0);
	int n = snprintf(text, sizeof(text), "MemTotal: %" PRIu64 " kB\n", total / 1024);
	FUZZ_CHECK(n > 0 && (size_t)n < sizeof(text));
	FUZZ_CHECK(mc_parse_kb_field(text, (size_t)n, "MemTotal", &again) == 0);
	FUZZ_CHECK(again == total);
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	switch (fuzz_mode(data, size, 2)) {
	case 0:
		check_mem_total((const char *)data + 1, size - 1);
		break;
	case 1:
		check_kb_field(data + 1, size - 1);
		break;
	default:
		break;
	}
	return 0;
}
