/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_metrics.c — Prometheus text rendering: every line is a comment or
 * "name{labels} value"; every sample has HELP and TYPE; histogram buckets
 * are cumulative and end with +Inf = _count; the process_* families hold
 * this process's own figures.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "metrics.h"

static bool name_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
	       (!first && c >= '0' && c <= '9');
}

/* Parse "name{k="v",...} value"; returns the name length or 0. */
static size_t parse_sample(const char *line, char *labels, size_t llen, double *value)
{
	size_t n = 0;
	const char *p;
	char *end;

	while (name_char(line[n], n == 0))
		n++;
	if (n == 0)
		return 0;
	p = line + n;
	labels[0] = '\0';
	if (*p == '{') {
		const char *close = strchr(p, '}');

		if (!close || (size_t)(close - p) >= llen)
			return 0;
		memcpy(labels, p + 1, (size_t)(close - p - 1));
		labels[close - p - 1] = '\0';
		/* each label: name="value" separated by commas */
		for (const char *q = labels; *q;) {
			size_t k = 0;

			while (name_char(q[k], k == 0))
				k++;
			if (k == 0 || q[k] != '=' || q[k + 1] != '"')
				return 0;
			q = strchr(q + k + 2, '"');
			if (!q)
				return 0;
			q++;
			if (*q == ',')
				q++;
			else if (*q)
				return 0;
		}
		p = close + 1;
	}
	if (*p != ' ')
		return 0;
	*value = strtod(p + 1, &end);
	if (end == p + 1 || *end != '\0')
		return 0;
	return n;
}

static void test_render_parses(void **state)
{
	struct metrics m = { 0 };
	char *text, *save = NULL, labels[256], typed[128] = "";
	double v = 0, cum = -1, count_inf = -1;
	unsigned samples = 0;

	(void)state;
	m.agents_registered = 2;
	m.agent_current = true;
	m.frozen_seconds_total = 0.125;
	m.memory_high_bytes = 1ull << 33;
	metrics_observe_request(&m, EP_REGISTER, 200, 0.0004);
	metrics_observe_request(&m, EP_REGISTER, 409, 0.03);
	metrics_observe_request(&m, EP_UPSCALE, 503, 9.0);
	metrics_observe_request(&m, EP_OTHER, 404, 0.0);
	text = metrics_render(&m, NULL);
	assert_non_null(text);
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		size_t n;

		if (strncmp(line, "# HELP vm_informant_", 20) == 0)
			continue;
		if (strncmp(line, "# TYPE vm_informant_", 20) == 0) {
			snprintf(typed, sizeof(typed), "%s", line + 7);
			*strchr(typed, ' ') = '\0';
			continue;
		}
		n = parse_sample(line, labels, sizeof(labels), &v);
		if (!n)
			fail_msg("bad line: %s", line);
		assert_int_equal(strncmp(line, "vm_informant_", 13), 0);
		/* A sample belongs to the family declared last. */
		assert_int_equal(strncmp(line, typed, strlen(typed)), 0);
		assert_false(isnan(v));
		samples++;
		/* One series per endpoint and status: register 200 and 409. */
		if (strstr(line, "duration_seconds_bucket{endpoint=\"register\",status=\"409\"")) {
			assert_true(v >= cum); /* cumulative */
			cum = v;
			if (strstr(labels, "le=\"+Inf\""))
				count_inf = v;
		}
		if (strstr(line, "duration_seconds_count{endpoint=\"register\",status=\"409\"}"))
			assert_true(v == count_inf && v == 1);
		if (strstr(line, "duration_seconds_count{endpoint=\"register\",status=\"200\"}"))
			assert_true(v == 1);
	}
	assert_true(samples > 20);
	free(text);

	text = metrics_render(&m, NULL);
	assert_non_null(strstr(text, "vm_informant_agents_registered 2\n"));
	assert_non_null(strstr(text, "vm_informant_agent_current 1\n"));
	assert_non_null(strstr(text, "vm_informant_memory_high_bytes 8589934592\n"));
	assert_non_null(strstr(text, "vm_informant_frozen_seconds_total 0.125\n"));
	assert_non_null(strstr(text,
		"vm_informant_http_requests_total{endpoint=\"register\",status=\"409\"} 1\n"));
	assert_non_null(strstr(text,
		"vm_informant_http_requests_total{endpoint=\"upscale\",status=\"503\"} 1\n"));
	/* 0.4 ms (a 200) falls in the first bucket; 30 ms (a 409) in le=0.05. */
	assert_non_null(strstr(text, "vm_informant_http_request_duration_seconds_bucket"
				     "{endpoint=\"register\",status=\"200\",le=\"0.0005\"} 1\n"));
	assert_non_null(strstr(text, "vm_informant_http_request_duration_seconds_bucket"
				     "{endpoint=\"register\",status=\"409\",le=\"0.025\"} 0\n"));
	assert_non_null(strstr(text, "vm_informant_http_request_duration_seconds_bucket"
				     "{endpoint=\"register\",status=\"409\",le=\"0.05\"} 1\n"));
	/* 9 s is only in +Inf. */
	assert_non_null(strstr(text, "vm_informant_http_request_duration_seconds_bucket"
				     "{endpoint=\"upscale\",status=\"503\",le=\"2.5\"} 0\n"));
	assert_non_null(strstr(text, "vm_informant_http_request_duration_seconds_bucket"
				     "{endpoint=\"upscale\",status=\"503\",le=\"+Inf\"} 1\n"));
	free(text);
}

/* The process families: this test process's own figures, sane. */
static void test_process_families(void **state)
{
	struct metrics m = { 0 };
	struct procstat p;
	char *text, *line;
	unsigned long long fds, rss;
	double start;
	int fd = dup(0); /* one more descriptor than before */

	(void)state;
	assert_int_equal(procstat_read(&p), 0);
	assert_true(p.open_fds >= 4);
	assert_true(p.resident_bytes > 100 * 1024);
	assert_true(p.virtual_bytes >= p.resident_bytes);
	assert_true(p.max_fds >= p.open_fds);
	assert_true(p.start_time_seconds > time(NULL) - 600.0);
	assert_true(p.start_time_seconds <= time(NULL) + 1.0);
	m.version = "9.8.7";
	m.frozen = true;
	m.pressure_level = 2;
	m.last_freeze_seconds = 0.0125;
	text = metrics_render(&m, &p);
	assert_non_null(text);
	assert_non_null(strstr(text, "\nvm_informant_build_info{version=\"9.8.7\"} 1\n"));
	assert_non_null(strstr(text, "\nvm_informant_frozen 1\n"));
	assert_non_null(strstr(text, "\nvm_informant_pressure_level 2\n"));
	assert_non_null(strstr(text, "\nvm_informant_last_freeze_seconds 0.0125\n"));
	assert_non_null(strstr(text, "# TYPE process_cpu_seconds_total counter\n"));
	line = strstr(text, "\nprocess_open_fds ");
	assert_non_null(line);
	assert_int_equal(sscanf(line, "\nprocess_open_fds %llu", &fds), 1);
	assert_int_equal(fds, p.open_fds);
	line = strstr(text, "\nprocess_resident_memory_bytes ");
	assert_int_equal(sscanf(line, "\nprocess_resident_memory_bytes %llu", &rss), 1);
	assert_int_equal(rss, p.resident_bytes);
	line = strstr(text, "\nprocess_start_time_seconds ");
	assert_int_equal(sscanf(line, "\nprocess_start_time_seconds %lf", &start), 1);
	assert_true(start == p.start_time_seconds);
	free(text);
	close(fd);
}

static void test_status_slots(void **state)
{
	(void)state;
	assert_int_equal(metrics_status_slot(101), 0); /* GET /monitor upgraded */
	assert_int_equal(metrics_status_slot(200), 1);
	assert_int_equal(metrics_status_slot(413), 8);
	assert_int_equal(metrics_status_slot(426), 9);
	assert_int_equal(metrics_status_slot(418), METRICS_STATUS_SLOTS - 1);
	assert_string_equal(metrics_endpoint_name(EP_HEALTH_CHECK), "health-check");
	assert_string_equal(metrics_endpoint_name(EP_MONITOR), "monitor");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_parses),
		cmocka_unit_test(test_status_slots),
		cmocka_unit_test(test_process_families),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
