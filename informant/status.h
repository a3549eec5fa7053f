/* SPDX-License-Identifier: Apache-2.0 */
/*
 * status.h — GET /status: one indented JSON object for people: the current
 * agent, all known agents, the protocol version, configured limits and the
 * memory policy's view (limits, last sample, file cache, pending upscale).
 */
#ifndef VMI_STATUS_H
#define VMI_STATUS_H

#include <stdint.h>

#include "agents.h"
#include "config.h"
#include "memory.h"

/* memory may be NULL.  Returns a malloc'd string or NULL. */
char *status_render(const struct config *cfg, const struct agents *agents,
		    const struct memory *memory, uint64_t started_ms);

#endif
