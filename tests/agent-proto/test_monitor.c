/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_monitor.c — the websocket monitor protocol's messages against
 * tests/vectors/monitor-messages.json: the agent's messages decode and
 * encode back to the exact bytes, ours carry the vectors' keys and values,
 * the handshake accepts exactly the valid ranges; plus the refusals.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent_proto.h"
#include "vectors.h"

static json_t *vectors;

static int load(void **state)
{
	(void)state;
	vectors = vec_json("monitor-messages.json");
	return vectors ? 0 : -1;
}

static int unload(void **state)
{
	(void)state;
	json_decref(vectors);
	return 0;
}

static const char *vstr(const char *section, const char *key)
{
	json_t *v = json_object_get(json_object_get(vectors, section), key);

	if (!json_is_string(v))
		fail_msg("vector %s.%s is not a string", section, key);
	return json_string_value(v);
}

static void test_handshake(void **state)
{
	json_t *hs = json_object_get(vectors, "handshake");
	const char *agent = json_string_value(json_object_get(hs, "agentSends"));
	json_t *mismatch = json_object_get(hs, "mismatch"), *bad;
	uint32_t min = 0, max = 0, chosen = 0;
	char err[256], *text;
	size_t i;

	(void)state;
	assert_int_equal(ap_mon_decode_range(agent, strlen(agent), &min, &max, err, sizeof(err)),
			 0);
	assert_int_equal(min, 1);
	assert_int_equal(max, 1);
	text = ap_mon_encode_range(1, 1);
	assert_string_equal(text, agent);
	free(text);
	assert_int_equal(ap_mon_negotiate(min, max, &chosen, err, sizeof(err)), 0);
	text = ap_mon_encode_version(chosen);
	assert_string_equal(text, json_string_value(json_object_get(hs, "serverAnswers")));
	free(text);

	agent = json_string_value(json_object_get(mismatch, "agentSends"));
	assert_int_equal(ap_mon_decode_range(agent, strlen(agent), &min, &max, err, sizeof(err)),
			 0);
	assert_int_equal(ap_mon_negotiate(min, max, &chosen, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "2 to 3"));
	/* The refusal is {"error": text} and the agent side reads it back. */
	text = ap_mon_encode_refusal(err);
	assert_int_equal(ap_mon_decode_version(text, strlen(text), &chosen, err, sizeof(err)),
			 -EPROTO);
	assert_non_null(strstr(err, "no common protocol version"));
	free(text);

	json_array_foreach(json_object_get(hs, "malformed"), i, bad) {
		const char *m = json_string_value(bad);

		min = max = 77;
		assert_int_equal(ap_mon_decode_range(m, strlen(m), &min, &max, err, sizeof(err)),
				 -EINVAL);
		assert_true(err[0] != '\0');
		assert_int_equal(min, 77); /* untouched */
	}
}

static void test_version_answer(void **state)
{
	uint32_t v = 0;
	char err[128];

	(void)state;
	assert_int_equal(ap_mon_decode_version("{\"version\":1}", 13, &v, err, sizeof(err)), 0);
	assert_int_equal(v, 1);
	assert_int_equal(ap_mon_decode_version("{\"version\":0}", 13, &v, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(ap_mon_decode_version("{}", 2, &v, err, sizeof(err)), -EINVAL);
	assert_int_equal(ap_mon_decode_version("[1]", 3, &v, err, sizeof(err)), -EINVAL);
}

/* Each agent vector decodes as expected and encodes back byte for byte. */
static void check_agent(const char *key, enum ap_mon_type type, uint64_t id, double cpu,
			uint64_t mem, const char *text)
{
	const char *wire = vstr("agent", key);
	struct ap_mon_msg m;
	bool id_known = false;
	char err[256], *back;

	assert_int_equal(ap_mon_decode_agent(wire, strlen(wire), &m, &id_known, err,
					     sizeof(err)), 0);
	assert_true(id_known);
	assert_int_equal(m.type, type);
	assert_int_equal(m.id, id);
	assert_true(m.cpu == cpu);
	assert_int_equal(m.mem, mem);
	assert_string_equal(m.text, text);
	back = ap_mon_encode_agent(&m);
	assert_non_null(back);
	assert_string_equal(back, wire);
	free(back);
}

static void test_agent_messages(void **state)
{
	(void)state;
	check_agent("HealthCheck", AP_MON_HEALTH_CHECK, 2, 0, 0, "");
	check_agent("UpscaleNotification", AP_MON_UPSCALE_NOTIFICATION, 4, 1.5, 4294967296ull,
		    "");
	check_agent("UpscaleNotificationFractional", AP_MON_UPSCALE_NOTIFICATION, 6, 0.25,
		    1073741824ull, "");
	check_agent("DownscaleRequest", AP_MON_DOWNSCALE_REQUEST, 8, 1, 2147483648ull, "");
	check_agent("InvalidMessage", AP_MON_INVALID_MESSAGE, 3, 0, 0,
		    "error unmarshaling UpscaleRequest: unexpected end of JSON input");
	check_agent("InternalError", AP_MON_INTERNAL_ERROR, 10, 0, 0, "failed to do X");
}

/* Our message for a vector: same keys, same JSON types, same values except
 * the free texts the vector leaves open ("<why>"). */
static void check_monitor(const char *key, const struct ap_mon_msg *m)
{
	json_t *want = json_object_get(json_object_get(json_object_get(vectors, "server"), key),
				       "message");
	json_t *got, *wv;
	json_error_t jerr;
	struct ap_mon_msg back;
	const char *k;
	char err[256];
	char *text = ap_mon_encode_monitor(m);

	assert_non_null(want);
	assert_non_null(text);
	got = json_loads(text, 0, &jerr);
	assert_non_null(got);
	assert_int_equal(json_object_size(got), json_object_size(want));
	json_object_foreach(want, k, wv) {
		json_t *gv = json_object_get(got, k);

		assert_non_null(gv);
		assert_int_equal(json_typeof(gv), json_typeof(wv));
		if (!json_is_string(wv) || json_string_value(wv)[0] != '<')
			assert_true(json_equal(gv, wv));
	}
	json_decref(got);
	/* The agent side of our own code reads it back. */
	assert_int_equal(ap_mon_decode_monitor(text, strlen(text), &back, err, sizeof(err)), 0);
	assert_int_equal(back.type, m->type);
	assert_int_equal(back.id, m->id);
	assert_int_equal(back.ok, m->ok);
	assert_string_equal(back.text, m->text);
	free(text);
}

static void test_monitor_messages(void **state)
{
	struct ap_mon_msg m = { .type = AP_MON_HEALTH_CHECK, .id = 2 };

	(void)state;
	check_monitor("HealthCheck", &m);
	m = (struct ap_mon_msg){ .type = AP_MON_UPSCALE_CONFIRMATION, .id = 4 };
	check_monitor("UpscaleConfirmation", &m);
	m = (struct ap_mon_msg){ .type = AP_MON_DOWNSCALE_RESULT, .id = 8, .ok = false };
	snprintf(m.text, sizeof(m.text), "Calculated memory.high too low: 899 MiB (new high) < "
					 "1156 MiB (current usage) + 100 MiB (buffer)");
	check_monitor("DownscaleResultRefused", &m);
	m = (struct ap_mon_msg){ .type = AP_MON_DOWNSCALE_RESULT, .id = 8, .ok = true };
	snprintf(m.text, sizeof(m.text), "Set cgroup memory.high to 1948 MiB, of new max 2048 MiB");
	check_monitor("DownscaleResultOk", &m);
	m = (struct ap_mon_msg){ .type = AP_MON_UPSCALE_REQUEST, .id = 1 };
	check_monitor("UpscaleRequest", &m);
	m = (struct ap_mon_msg){ .type = AP_MON_INVALID_MESSAGE, .id = 0 };
	snprintf(m.text, sizeof(m.text), "invalid JSON at byte 3");
	check_monitor("InvalidMessage", &m);
	m = (struct ap_mon_msg){ .type = AP_MON_INTERNAL_ERROR, .id = 4 };
	snprintf(m.text, sizeof(m.text), "cannot write memory.max");
	check_monitor("InternalError", &m);
}

/* Refusals: garbage has no id; a readable id survives a bad rest. */
static void expect_agent_error(const char *wire, int want, bool id_known, uint64_t id)
{
	struct ap_mon_msg m = { .id = 12345 };
	bool known = !id_known;
	char err[256] = "";

	assert_int_equal(ap_mon_decode_agent(wire, strlen(wire), &m, &known, err, sizeof(err)),
			 want);
	assert_int_equal(known, id_known);
	assert_int_equal(m.id, id_known ? id : 12345);
	assert_true(err[0] != '\0');
}

static void test_agent_errors(void **state)
{
	(void)state;
	expect_agent_error("not json", -EINVAL, false, 0);
	expect_agent_error("", -EINVAL, false, 0);
	expect_agent_error("[1,2]", -EINVAL, false, 0);
	expect_agent_error("{\"type\":\"HealthCheck\",\"content\":{}}", -EINVAL, false, 0);
	expect_agent_error("{\"id\":\"2\",\"type\":\"HealthCheck\",\"content\":{}}", -EINVAL,
			   false, 0);
	expect_agent_error("{\"id\":2.0,\"type\":\"HealthCheck\",\"content\":{}}", -EINVAL,
			   false, 0);
	expect_agent_error("{\"id\":-2,\"type\":\"HealthCheck\",\"content\":{}}", -EINVAL,
			   false, 0);
	expect_agent_error("{\"id\":6,\"type\":\"Bogus\",\"content\":{}}", -ENOMSG, true, 6);
	expect_agent_error("{\"id\":6,\"type\":7,\"content\":{}}", -EINVAL, true, 6);
	expect_agent_error("{\"id\":6,\"type\":\"UpscaleRequest\",\"content\":{}}", -EINVAL,
			   true, 6);
	expect_agent_error("{\"id\":6,\"type\":\"HealthCheck\"}", -EINVAL, true, 6);
	expect_agent_error("{\"id\":4,\"type\":\"UpscaleNotification\",\"content\":{}}",
			   -EINVAL, true, 4);
	expect_agent_error("{\"content\":{\"granted\":{\"cpu\":1}},\"type\":"
			   "\"UpscaleNotification\",\"id\":4}", -EINVAL, true, 4);
	expect_agent_error("{\"content\":{\"granted\":{\"cpu\":-1,\"mem\":1}},\"type\":"
			   "\"UpscaleNotification\",\"id\":4}", -EINVAL, true, 4);
	expect_agent_error("{\"content\":{\"target\":{\"cpu\":1,\"mem\":1.5}},\"type\":"
			   "\"DownscaleRequest\",\"id\":8}", -EINVAL, true, 8);
	expect_agent_error("{\"content\":{},\"type\":\"HealthCheck\",\"id\":2} x", -EINVAL,
			   false, 0);
}

static void test_agent_lenient(void **state)
{
	struct ap_mon_msg m;
	bool known;
	char err[128];
	const char *extra = "{\"id\":2,\"extra\":[1],\"content\":{\"x\":1},\"type\":\"HealthCheck\"}";
	const char *nocpu = "{\"content\":{\"target\":{\"mem\":5}},\"type\":\"DownscaleRequest\","
			    "\"id\":18446744073709551614}";

	(void)state;
	/* Unknown members and key order do not matter, as in Go. */
	assert_int_equal(ap_mon_decode_agent(extra, strlen(extra), &m, &known, err, sizeof(err)),
			 0);
	assert_int_equal(m.type, AP_MON_HEALTH_CHECK);
	/* cpu is informational; an id above 2^63 cannot be read (jansson). */
	assert_int_equal(ap_mon_decode_agent(nocpu, strlen(nocpu), &m, &known, err, sizeof(err)),
			 -EINVAL);
	assert_false(known);
}

static void test_json_float(void **state)
{
	static const struct { double x; const char *want; } cases[] = {
		{ 1, "1" }, { 1.5, "1.5" }, { 0.25, "0.25" }, { 0.1, "0.1" }, { 0, "0" },
		{ -0.0, "-0" }, { 1e-7, "1e-7" }, { 1.5e-10, "1.5e-10" }, { 0.000001, "0.000001" },
		{ 1e20, "100000000000000000000" }, { 1e21, "1e+21" }, { 123456789, "123456789" },
		{ -2.5, "-2.5" }, { 3.0000000000000004, "3.0000000000000004" },
	};
	char buf[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ap_format_json_float(cases[i].x, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].want);
	}
	ap_format_json_float(1.5, buf, 2);
	assert_string_equal(buf, "1");
}

static void test_encode_refuses_bad_text(void **state)
{
	struct ap_mon_msg m = { .type = AP_MON_INTERNAL_ERROR, .id = 3 };

	(void)state;
	memcpy(m.text, "\xff\xfe", 3); /* not UTF-8 */
	assert_null(ap_mon_encode_monitor(&m));
	assert_null(ap_mon_encode_agent(&m));
	m.type = AP_MON__COUNT;
	assert_null(ap_mon_encode_monitor(&m));
	assert_string_equal(ap_mon_type_name(AP_MON__COUNT), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handshake),
		cmocka_unit_test(test_version_answer),
		cmocka_unit_test(test_agent_messages),
		cmocka_unit_test(test_monitor_messages),
		cmocka_unit_test(test_agent_errors),
		cmocka_unit_test(test_agent_lenient),
		cmocka_unit_test(test_json_float),
		cmocka_unit_test(test_encode_refuses_bad_text),
	};

	return cmocka_run_group_tests(tests, load, unload);
}
