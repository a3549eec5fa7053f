/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>

#include "kinds.h"

int kind_decode(enum kind kind, const char *body, size_t len, union msg *m, char *err,
		size_t errlen)
{
	switch (kind) {
	case K_EMPTY:
		return ap_decode_empty(body, len, err, errlen);
	case K_AGENT_DESC:
		return ap_decode_agent_desc(body, len, &m->desc, err, errlen);
	case K_AGENT_IDENT:
		return ap_decode_agent_ident(body, len, &m->id, err, errlen);
	case K_AGENT_IDENT_MSG:
		return ap_decode_agent_ident_msg(body, len, &m->ident, err, errlen);
	case K_RESOURCE_MSG:
		return ap_decode_resource_msg(body, len, &m->res, err, errlen);
	case K_INFORMANT_DESC:
		return ap_decode_informant_desc(body, len, &m->inf, err, errlen);
	case K_DOWNSCALE_RESULT:
		return ap_decode_downscale_result(body, len, &m->down, err, errlen);
	case K_UNREGISTER_RESULT:
		return ap_decode_unregister_result(body, len, &m->was_active, err, errlen);
	case K_EXPECTED_ID:
		return ap_decode_expected_id(body, len, &m->id, err, errlen);
	case K_MORE_RESOURCES:
		return ap_decode_more_resources(body, len, &m->more.cpu, &m->more.memory,
						&m->more.expected, err, errlen);
	}
	return -EINVAL;
}

char *kind_encode(enum kind kind, const union msg *m)
{
	switch (kind) {
	case K_EMPTY:
		return ap_encode_empty();
	case K_AGENT_DESC:
		return ap_encode_agent_desc(&m->desc);
	case K_AGENT_IDENT:
		return ap_encode_agent_ident(&m->id);
	case K_AGENT_IDENT_MSG:
		return ap_encode_agent_ident_msg(&m->ident);
	case K_RESOURCE_MSG:
		return ap_encode_resource_msg(&m->res);
	case K_INFORMANT_DESC:
		return ap_encode_informant_desc(&m->inf);
	case K_DOWNSCALE_RESULT:
		return ap_encode_downscale_result(&m->down);
	case K_UNREGISTER_RESULT:
		return ap_encode_unregister_result(m->was_active);
	case K_EXPECTED_ID:
		return ap_encode_expected_id(&m->id);
	case K_MORE_RESOURCES:
		return ap_encode_more_resources(m->more.cpu, m->more.memory, &m->more.expected);
	}
	return NULL;
}
