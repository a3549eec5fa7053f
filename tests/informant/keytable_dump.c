/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keytable_dump.c — the config key table as tab-separated lines
 * "section name default reload allowed", for test_keytable.py, which holds
 * README.md, vm-informant.conf(5) and the example config to it.
 */
#include <stdio.h>

#include "config_internal.h"

int main(void)
{
	for (size_t i = 0; i < config_keys_count; i++) {
		const struct config_key *k = &config_keys[i];

		printf("%s\t%s\t%s\t%s\t%s\n", k->section, k->name, k->dflt,
		       k->reload == RELOAD_LIVE ? "live" : "restart", k->allowed);
	}
	return fflush(stdout) == 0 ? 0 : 1;
}
