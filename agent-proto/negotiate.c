/* SPDX-License-Identifier: Apache-2.0 */
/*
 * negotiate.c — protocol version negotiation and version names (docs/informant-protocol.md §3).
 */
#include <errno.h>
#include <stdio.h>

#include "agent_proto.h"

void ap_version_name(uint32_t v, char *out, size_t outlen)
{
	static const char *const names[] = {
		[AP_PROTO_V1_0] = "v1.0",
		[AP_PROTO_V1_1] = "v1.1",
		[AP_PROTO_V1_2] = "v1.2",
		[AP_PROTO_V2_0] = "v2.0",
	};

	if (v == AP_PROTO_INVALID)
		snprintf(out, outlen, "<invalid: zero>");
	else if (v <= AP_PROTO_V2_0)
		snprintf(out, outlen, "%s", names[v]);
	else
		snprintf(out, outlen, "<unknown = v2.0 + %u>", (unsigned)(v - AP_PROTO_V2_0));
}

/* "v1.0" when min == max, "v1.0 to v1.2" otherwise. */
static void range_name(uint32_t min, uint32_t max, char *out, size_t outlen)
{
	char lo[32], hi[32];

	ap_version_name(min, lo, sizeof(lo));
	if (min == max) {
		snprintf(out, outlen, "%s", lo);
		return;
	}
	ap_version_name(max, hi, sizeof(hi));
	snprintf(out, outlen, "%s to %s", lo, hi);
}

int ap_negotiate(uint32_t agent_min, uint32_t agent_max, uint32_t informant_min,
		 uint32_t informant_max, uint32_t *chosen, char *err, size_t errlen)
{
	uint32_t hi = agent_max < informant_max ? agent_max : informant_max;
	uint32_t lo = agent_min > informant_min ? agent_min : informant_min;
	char need[80], got[80];

	/* Deliberately no other validation, as in the reference: zero is not
	 * rejected on its own, and min > max simply cannot overlap. */
	if (hi >= lo) {
		*chosen = hi;
		return 0;
	}
	range_name(informant_min, informant_max, need, sizeof(need));
	range_name(agent_min, agent_max, got, sizeof(got));
	snprintf(err, errlen, "Protocol version mismatch: Need %s but got %s", need, got);
	return -EPROTO;
}
