/* SPDX-License-Identifier: Apache-2.0 */
/* placeholder: replaced by the platform work (CLI, config, supervisor) */
int main(void)
{
	return 0;
}
