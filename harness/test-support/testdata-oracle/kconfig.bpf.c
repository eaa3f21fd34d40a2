// SPDX-License-Identifier: Apache-2.0
// A strong .kconfig extern no kernel config defines: prepare fails (not a CO-RE failure) unless the
// oracle gets a config file that sets it.
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

extern int CONFIG_COREMATRIX_ORACLE_TEST __kconfig;

int out;

SEC("raw_tp/sys_enter")
int kcfg(void *ctx)
{
	out = CONFIG_COREMATRIX_ORACLE_TEST;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
