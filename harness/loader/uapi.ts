import type { Btf } from '../btf/btf.js';

/**
 * Numbers of the uapi enums the loader needs (include/uapi/linux/bpf.h). Program and attach types
 * are looked up by name in the kernel's own BTF first (enum bpf_prog_type / enum bpf_attach_type):
 * a kernel that does not know a name does not have that type. These tables are the fallback for a
 * kernel BTF without those enums, and list the names in uapi order (the numbers are positions).
 */

export const PROG_TYPES: readonly string[] = [
  'UNSPEC',
  'SOCKET_FILTER',
  'KPROBE',
  'SCHED_CLS',
  'SCHED_ACT',
  'TRACEPOINT',
  'XDP',
  'PERF_EVENT',
  'CGROUP_SKB',
  'CGROUP_SOCK',
  'LWT_IN',
  'LWT_OUT',
  'LWT_XMIT',
  'SOCK_OPS',
  'SK_SKB',
  'CGROUP_DEVICE',
  'SK_MSG',
  'RAW_TRACEPOINT',
  'CGROUP_SOCK_ADDR',
  'LWT_SEG6LOCAL',
  'LIRC_MODE2',
  'SK_REUSEPORT',
  'FLOW_DISSECTOR',
  'CGROUP_SYSCTL',
  'RAW_TRACEPOINT_WRITABLE',
  'CGROUP_SOCKOPT',
  'TRACING',
  'STRUCT_OPS',
  'EXT',
  'LSM',
  'SK_LOOKUP',
  'SYSCALL',
  'NETFILTER',
];

export const ATTACH_TYPES: readonly string[] = [
  'CGROUP_INET_INGRESS',
  'CGROUP_INET_EGRESS',
  'CGROUP_INET_SOCK_CREATE',
  'CGROUP_SOCK_OPS',
  'SK_SKB_STREAM_PARSER',
  'SK_SKB_STREAM_VERDICT',
  'CGROUP_DEVICE',
  'SK_MSG_VERDICT',
  'CGROUP_INET4_BIND',
  'CGROUP_INET6_BIND',
  'CGROUP_INET4_CONNECT',
  'CGROUP_INET6_CONNECT',
  'CGROUP_INET4_POST_BIND',
  'CGROUP_INET6_POST_BIND',
  'CGROUP_UDP4_SENDMSG',
  'CGROUP_UDP6_SENDMSG',
  'LIRC_MODE2',
  'FLOW_DISSECTOR',
  'CGROUP_SYSCTL',
  'CGROUP_UDP4_RECVMSG',
  'CGROUP_UDP6_RECVMSG',
  'CGROUP_GETSOCKOPT',
  'CGROUP_SETSOCKOPT',
  'TRACE_RAW_TP',
  'TRACE_FENTRY',
  'TRACE_FEXIT',
  'MODIFY_RETURN',
  'LSM_MAC',
  'TRACE_ITER',
  'CGROUP_INET4_GETPEERNAME',
  'CGROUP_INET6_GETPEERNAME',
  'CGROUP_INET4_GETSOCKNAME',
  'CGROUP_INET6_GETSOCKNAME',
  'XDP_DEVMAP',
  'CGROUP_INET_SOCK_RELEASE',
  'XDP_CPUMAP',
  'SK_LOOKUP',
  'XDP',
  'SK_SKB_VERDICT',
  'SK_REUSEPORT_SELECT',
  'SK_REUSEPORT_SELECT_OR_MIGRATE',
  'PERF_EVENT',
  'TRACE_KPROBE_MULTI',
  'LSM_CGROUP',
  'STRUCT_OPS',
  'NETFILTER',
  'TCX_INGRESS',
  'TCX_EGRESS',
  'TRACE_UPROBE_MULTI',
  'CGROUP_UNIX_CONNECT',
  'CGROUP_UNIX_SENDMSG',
  'CGROUP_UNIX_RECVMSG',
  'CGROUP_UNIX_GETPEERNAME',
  'CGROUP_UNIX_GETSOCKNAME',
  'NETKIT_PRIMARY',
  'NETKIT_PEER',
  'TRACE_KPROBE_SESSION',
  'TRACE_UPROBE_SESSION',
  'TRACE_FSESSION',
  'TRACE_FENTRY_MULTI',
  'TRACE_FEXIT_MULTI',
  'TRACE_FSESSION_MULTI',
];

/** BPF_PSEUDO_* src_reg values and flags. */
export const BPF_PSEUDO_MAP_FD = 1;
export const BPF_PSEUDO_MAP_VALUE = 2;
export const BPF_PSEUDO_BTF_ID = 3;
export const BPF_PSEUDO_FUNC = 4;
export const BPF_PSEUDO_CALL = 1;
export const BPF_PSEUDO_KFUNC_CALL = 2;
export const BPF_F_SLEEPABLE = 1 << 4;
export const BPF_F_XDP_HAS_FRAGS = 1 << 5;
export const BPF_F_MMAPABLE = 1 << 10;

/** Helper ids bpf_object__sanitize_prog rewrites on kernels without bpf_probe_read_{kernel,user}. */
export const BPF_FUNC = {
  probe_read: 4,
  probe_read_str: 45,
  probe_read_user: 112,
  probe_read_kernel: 113,
  probe_read_user_str: 114,
  probe_read_kernel_str: 115,
} as const;

/**
 * The number of `prefix + name`: the kernel's own (its enum `enumName` in its BTF) when it has it,
 * else uapi's (position in `fallback`). `inKernel` is false when the kernel's BTF has the enum but
 * not the name: that kernel predates the type and will refuse it. undefined when nobody knows it.
 */
export function uapiNumber(
  kernel: Btf,
  enumName: string,
  prefix: string,
  name: string,
  fallback: readonly string[],
): { value: number; inKernel: boolean | undefined } | undefined {
  const i = fallback.indexOf(name);
  const id = kernel.findByNameKind(enumName, 'enum');
  const t = id === undefined ? undefined : kernel.type(id);
  if (t?.kind === 'enum') {
    const v = t.values.find((e) => e.name === `${prefix}${name}`);
    if (v !== undefined) return { value: Number(v.value), inKernel: true };
    return i < 0 ? undefined : { value: i, inKernel: false };
  }
  return i < 0 ? undefined : { value: i, inKernel: undefined };
}
