/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Every wire vector decodes with its message's decoder and encodes back to
 * exactly the same bytes; encoders fed from hand-built values produce the
 * vectors too; the table covers every wire vector in the directory.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent_proto.h"
#include "kinds.h"
#include "vectors.h"

static const struct {
	const char *file;
	enum kind kind;
} wire_files[] = {
	{ "register-request.json", K_AGENT_DESC },
	{ "register-response.json", K_INFORMANT_DESC },
	{ "agent-id-request.json", K_EMPTY },
	{ "agent-id-response.json", K_AGENT_IDENT_MSG },
	{ "resume-request.json", K_EXPECTED_ID },
	{ "resume-response.json", K_AGENT_IDENT_MSG },
	{ "suspend-request.json", K_EXPECTED_ID },
	{ "suspend-response.json", K_AGENT_IDENT_MSG },
	{ "health-check-request.json", K_AGENT_IDENT },
	{ "health-check-response.json", K_EMPTY },
	{ "try-upscale-request.json", K_MORE_RESOURCES },
	{ "try-upscale-response.json", K_AGENT_IDENT_MSG },
	{ "upscale-request.json", K_RESOURCE_MSG },
	{ "upscale-response.json", K_EMPTY },
	{ "downscale-request.json", K_RESOURCE_MSG },
	{ "downscale-request-fractional-cpu.json", K_RESOURCE_MSG },
	{ "downscale-response-ok.json", K_DOWNSCALE_RESULT },
	{ "downscale-response-ok-cgroup-only.json", K_DOWNSCALE_RESULT },
	{ "downscale-response-rejected.json", K_DOWNSCALE_RESULT },
	{ "downscale-response-noop.json", K_DOWNSCALE_RESULT },
	{ "unregister-request.json", K_AGENT_DESC },
	{ "unregister-response.json", K_UNREGISTER_RESULT },
};

static const char agent_id_text[] = "0f8c3b1e-5d2a-4c7e-9b61-7a4e2d9c1f30";

/* Decode body as kind and encode the result again; fails the test if the
 * decoder rejects it. */
static char *reencode(enum kind kind, const char *body, size_t len)
{
	char err[256] = "";
	union msg m;

	if (kind_decode(kind, body, len, &m, err, sizeof(err)) != 0)
		fail_msg("decoder rejected %s: %s", body, err);
	char *out = kind_encode(kind, &m);
	assert_non_null(out);
	return out;
}

static void assert_same_bytes(const char *what, const char *got, const char *want)
{
	if (strcmp(got, want) != 0)
		fail_msg("%s:\n got  %s\n want %s", what, got, want);
}

static void test_wire_vectors_round_trip(void **state)
{
	for (size_t i = 0; i < sizeof(wire_files) / sizeof(wire_files[0]); i++) {
		size_t len;
		char *want = vec_read(wire_files[i].file, &len);
		char *got = reencode(wire_files[i].kind, want, len);
		assert_same_bytes(wire_files[i].file, got, want);
		free(got);
		free(want);
	}
}

static bool is_case_table(const char *name)
{
	return strcmp(name, "error-responses.json") == 0 ||
	       strcmp(name, "version-negotiation.json") == 0 ||
	       strcmp(name, "memory-limits.json") == 0 || strncmp(name, "filecache-", 10) == 0 ||
	       strcmp(name, "monitor-messages.json") == 0; /* test_monitor.c */
}

static bool in_table(const char *name)
{
	for (size_t i = 0; i < sizeof(wire_files) / sizeof(wire_files[0]); i++)
		if (strcmp(wire_files[i].file, name) == 0)
			return true;
	return false;
}

static void test_table_covers_every_wire_vector(void **state)
{
	DIR *d = opendir(vec_dir());
	struct dirent *e;
	size_t seen = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		if (n < 5 || strcmp(e->d_name + n - 5, ".json") != 0 || is_case_table(e->d_name))
			continue;
		if (!in_table(e->d_name)) {
			char name[256];

			snprintf(name, sizeof(name), "%s", e->d_name); /* before closedir */
			closedir(d);
			fail_msg("wire vector %s has no entry in the round-trip table", name);
		}
		seen++;
	}
	closedir(d);
	assert_int_equal(seen, sizeof(wire_files) / sizeof(wire_files[0]));
}

/* The response bodies in memory-limits.json are wire bytes too. */
static void test_memory_limits_responses_round_trip(void **state)
{
	json_t *rows = vec_json("memory-limits.json"), *row;
	size_t i, checked = 0;

	json_array_foreach(rows, i, row) {
		json_t *resp = json_object_get(row, "expectResponse");
		if (!resp)
			continue;
		const char *want = json_string_value(resp);
		bool down = strcmp(vec_str(row, "event"), "downscale") == 0;
		char *got = reencode(down ? K_DOWNSCALE_RESULT : K_EMPTY, want, strlen(want));
		assert_same_bytes(vec_str(row, "description"), got, want);
		free(got);
		checked++;
	}
	assert_true(checked >= 10);
	json_decref(rows);
}

static void expect_vector(const char *file, char *got)
{
	size_t len;
	char *want = vec_read(file, &len);

	assert_non_null(got);
	assert_same_bytes(file, got, want);
	free(got);
	free(want);
}

/* Encoders from hand-built values, independent of the decoders. */
static void test_encoders_from_values(void **state)
{
	struct ap_uuid id;
	assert_int_equal(ap_uuid_parse(agent_id_text, &id), 0);

	struct ap_agent_desc desc = { .agent_id = id, .min_proto = 1, .max_proto = 4 };
	snprintf(desc.serve_addr, sizeof(desc.serve_addr), "10.244.1.37:38247");
	expect_vector("register-request.json", ap_encode_agent_desc(&desc));

	struct ap_informant_desc inf = { AP_PROTO_V2_0, true, AP_METRICS_PROMETHEUS_PORT };
	expect_vector("register-response.json", ap_encode_informant_desc(&inf));

	struct ap_resource_msg res = { .has_cpu = true, .cpu_milli = 250, .has_memory = true,
				       .memory_bytes = 1536ull << 20, .agent_id = id, .seq = 9 };
	expect_vector("downscale-request-fractional-cpu.json", ap_encode_resource_msg(&res));

	struct ap_agent_ident_msg ident = { id, 3 };
	expect_vector("try-upscale-response.json", ap_encode_agent_ident_msg(&ident));
	expect_vector("try-upscale-request.json", ap_encode_more_resources(false, true, &id));
	expect_vector("suspend-request.json", ap_encode_expected_id(&id));
	expect_vector("health-check-request.json", ap_encode_agent_ident(&id));
	expect_vector("unregister-response.json", ap_encode_unregister_result(true));
	expect_vector("upscale-response.json", ap_encode_empty());

	/* The rejected downscale: numbers from ap_format_mib, '<' escaped. */
	struct ap_downscale_result down = { .ok = false };
	char high[32], cur[32];
	ap_format_mib(691011584, high, sizeof(high));
	ap_format_mib(629407744, cur, sizeof(cur));
	snprintf(down.status, sizeof(down.status),
		 "Calculated memory.high too low: %s MiB (new high) < %s MiB (current usage)"
		 " + 100 MiB (buffer)", high, cur);
	expect_vector("downscale-response-rejected.json", ap_encode_downscale_result(&down));
}

static void test_encode_absent_quantities_and_no_prometheus(void **state)
{
	struct ap_resource_msg res = { .seq = 1 };
	char *s = ap_encode_resource_msg(&res);
	assert_non_null(s);
	assert_string_equal(s, "{\"data\":{\"cpu\":null,\"memory\":null,\"id\":{\"agentID\":"
			       "\"00000000-0000-0000-0000-000000000000\"}},\"sequenceNumber\":1}");
	free(s);

	struct ap_informant_desc inf = { .proto_version = 4 };
	s = ap_encode_informant_desc(&inf);
	assert_non_null(s);
	assert_string_equal(s, "{\"protoVersion\":4,\"metricsMethod\":{}}");
	free(s);

	/* Invalid UTF-8 cannot be encoded: NULL, not a corrupt body. */
	struct ap_downscale_result down = { .ok = true };
	snprintf(down.status, sizeof(down.status), "bad \xff byte");
	assert_null(ap_encode_downscale_result(&down));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wire_vectors_round_trip),
		cmocka_unit_test(test_table_covers_every_wire_vector),
		cmocka_unit_test(test_memory_limits_responses_round_trip),
		cmocka_unit_test(test_encoders_from_values),
		cmocka_unit_test(test_encode_absent_quantities_and_no_prometheus),
	};

	return cmocka_run_group_tests_name("agent-proto-codec", tests, NULL, NULL);
}
