/**
 * libbpf's SEC() conventions: how a program's ELF section name decides its program type, expected
 * attach type and flags (section_defs[] and sec_def_matches in libbpf.c). The table is kept in
 * libbpf's order because the first matching entry wins.
 *
 * Matching: an entry ending in '/' matches any name with that prefix; an entry ending in '+'
 * matches the bare name or the name followed by '/' and anything; other entries match exactly.
 */

/** Flags of a section definition (enum sec_def_flags). */
export const SEC = {
  NONE: 0,
  /** expected_attach_type is dropped on kernels that do not support it. */
  EXP_ATTACH_OPT: 1,
  ATTACHABLE: 2,
  /** The attach target is a BTF id (in the kernel or another program's BTF). */
  ATTACH_BTF: 4,
  SLEEPABLE: 8,
  XDP_FRAGS: 16,
  USDT: 32,
} as const;
const ATTACHABLE_OPT = SEC.ATTACHABLE | SEC.EXP_ATTACH_OPT;

/** Program and attach types by their enum names without the BPF_PROG_TYPE_ / BPF_ prefixes. */
export interface SectionDef {
  pattern: string;
  progType: string;
  /** Expected attach type, '' when none (0). */
  attachType: string;
  flags: number;
}

function def(pattern: string, progType: string, attachType: string, flags: number): SectionDef {
  return { pattern, progType, attachType, flags };
}

const { NONE, ATTACHABLE, ATTACH_BTF, SLEEPABLE, XDP_FRAGS, USDT } = SEC;

export const SECTION_DEFS: readonly SectionDef[] = [
  def('socket', 'SOCKET_FILTER', '', NONE),
  def('sk_reuseport/migrate', 'SK_REUSEPORT', 'SK_REUSEPORT_SELECT_OR_MIGRATE', ATTACHABLE),
  def('sk_reuseport', 'SK_REUSEPORT', 'SK_REUSEPORT_SELECT', ATTACHABLE),
  def('kprobe+', 'KPROBE', '', NONE),
  def('uprobe+', 'KPROBE', '', NONE),
  def('uprobe.s+', 'KPROBE', '', SLEEPABLE),
  def('kretprobe+', 'KPROBE', '', NONE),
  def('uretprobe+', 'KPROBE', '', NONE),
  def('uretprobe.s+', 'KPROBE', '', SLEEPABLE),
  def('kprobe.multi+', 'KPROBE', 'TRACE_KPROBE_MULTI', NONE),
  def('kretprobe.multi+', 'KPROBE', 'TRACE_KPROBE_MULTI', NONE),
  def('kprobe.session+', 'KPROBE', 'TRACE_KPROBE_SESSION', NONE),
  def('uprobe.multi+', 'KPROBE', 'TRACE_UPROBE_MULTI', NONE),
  def('uretprobe.multi+', 'KPROBE', 'TRACE_UPROBE_MULTI', NONE),
  def('uprobe.session+', 'KPROBE', 'TRACE_UPROBE_SESSION', NONE),
  def('uprobe.multi.s+', 'KPROBE', 'TRACE_UPROBE_MULTI', SLEEPABLE),
  def('uretprobe.multi.s+', 'KPROBE', 'TRACE_UPROBE_MULTI', SLEEPABLE),
  def('uprobe.session.s+', 'KPROBE', 'TRACE_UPROBE_SESSION', SLEEPABLE),
  def('ksyscall+', 'KPROBE', '', NONE),
  def('kretsyscall+', 'KPROBE', '', NONE),
  def('usdt+', 'KPROBE', '', USDT),
  def('usdt.s+', 'KPROBE', '', USDT | SLEEPABLE),
  def('tc/ingress', 'SCHED_CLS', 'TCX_INGRESS', NONE),
  def('tc/egress', 'SCHED_CLS', 'TCX_EGRESS', NONE),
  def('tcx/ingress', 'SCHED_CLS', 'TCX_INGRESS', NONE),
  def('tcx/egress', 'SCHED_CLS', 'TCX_EGRESS', NONE),
  def('tc', 'SCHED_CLS', '', NONE),
  def('classifier', 'SCHED_CLS', '', NONE),
  def('action', 'SCHED_ACT', '', NONE),
  def('netkit/primary', 'SCHED_CLS', 'NETKIT_PRIMARY', NONE),
  def('netkit/peer', 'SCHED_CLS', 'NETKIT_PEER', NONE),
  def('tracepoint+', 'TRACEPOINT', '', NONE),
  def('tp+', 'TRACEPOINT', '', NONE),
  def('tracepoint.s+', 'TRACEPOINT', '', SLEEPABLE),
  def('tp.s+', 'TRACEPOINT', '', SLEEPABLE),
  def('raw_tracepoint+', 'RAW_TRACEPOINT', '', NONE),
  def('raw_tp+', 'RAW_TRACEPOINT', '', NONE),
  def('raw_tracepoint.s+', 'RAW_TRACEPOINT', '', SLEEPABLE),
  def('raw_tp.s+', 'RAW_TRACEPOINT', '', SLEEPABLE),
  def('raw_tracepoint.w+', 'RAW_TRACEPOINT_WRITABLE', '', NONE),
  def('raw_tp.w+', 'RAW_TRACEPOINT_WRITABLE', '', NONE),
  def('tp_btf+', 'TRACING', 'TRACE_RAW_TP', ATTACH_BTF),
  def('tp_btf.s+', 'TRACING', 'TRACE_RAW_TP', ATTACH_BTF | SLEEPABLE),
  def('fentry+', 'TRACING', 'TRACE_FENTRY', ATTACH_BTF),
  def('fmod_ret+', 'TRACING', 'MODIFY_RETURN', ATTACH_BTF),
  def('fexit+', 'TRACING', 'TRACE_FEXIT', ATTACH_BTF),
  def('fentry.s+', 'TRACING', 'TRACE_FENTRY', ATTACH_BTF | SLEEPABLE),
  def('fmod_ret.s+', 'TRACING', 'MODIFY_RETURN', ATTACH_BTF | SLEEPABLE),
  def('fexit.s+', 'TRACING', 'TRACE_FEXIT', ATTACH_BTF | SLEEPABLE),
  def('fsession+', 'TRACING', 'TRACE_FSESSION', ATTACH_BTF),
  def('fsession.s+', 'TRACING', 'TRACE_FSESSION', ATTACH_BTF | SLEEPABLE),
  def('fsession.multi+', 'TRACING', 'TRACE_FSESSION_MULTI', NONE),
  def('fsession.multi.s+', 'TRACING', 'TRACE_FSESSION_MULTI', SLEEPABLE),
  def('fentry.multi+', 'TRACING', 'TRACE_FENTRY_MULTI', NONE),
  def('fexit.multi+', 'TRACING', 'TRACE_FEXIT_MULTI', NONE),
  def('fentry.multi.s+', 'TRACING', 'TRACE_FENTRY_MULTI', SLEEPABLE),
  def('fexit.multi.s+', 'TRACING', 'TRACE_FEXIT_MULTI', SLEEPABLE),
  def('freplace+', 'EXT', '', ATTACH_BTF),
  def('lsm+', 'LSM', 'LSM_MAC', ATTACH_BTF),
  def('lsm.s+', 'LSM', 'LSM_MAC', ATTACH_BTF | SLEEPABLE),
  def('lsm_cgroup+', 'LSM', 'LSM_CGROUP', ATTACH_BTF),
  def('iter+', 'TRACING', 'TRACE_ITER', ATTACH_BTF),
  def('iter.s+', 'TRACING', 'TRACE_ITER', ATTACH_BTF | SLEEPABLE),
  def('syscall', 'SYSCALL', '', SLEEPABLE),
  def('xdp.frags/devmap', 'XDP', 'XDP_DEVMAP', XDP_FRAGS),
  def('xdp/devmap', 'XDP', 'XDP_DEVMAP', ATTACHABLE),
  def('xdp.frags/cpumap', 'XDP', 'XDP_CPUMAP', XDP_FRAGS),
  def('xdp/cpumap', 'XDP', 'XDP_CPUMAP', ATTACHABLE),
  def('xdp.frags', 'XDP', 'XDP', XDP_FRAGS),
  def('xdp', 'XDP', 'XDP', ATTACHABLE_OPT),
  def('perf_event', 'PERF_EVENT', '', NONE),
  def('lwt_in', 'LWT_IN', '', NONE),
  def('lwt_out', 'LWT_OUT', '', NONE),
  def('lwt_xmit', 'LWT_XMIT', '', NONE),
  def('lwt_seg6local', 'LWT_SEG6LOCAL', '', NONE),
  def('sockops', 'SOCK_OPS', 'CGROUP_SOCK_OPS', ATTACHABLE_OPT),
  def('sk_skb/stream_parser', 'SK_SKB', 'SK_SKB_STREAM_PARSER', ATTACHABLE_OPT),
  def('sk_skb/stream_verdict', 'SK_SKB', 'SK_SKB_STREAM_VERDICT', ATTACHABLE_OPT),
  def('sk_skb/verdict', 'SK_SKB', 'SK_SKB_VERDICT', ATTACHABLE_OPT),
  def('sk_skb', 'SK_SKB', '', NONE),
  def('sk_msg', 'SK_MSG', 'SK_MSG_VERDICT', ATTACHABLE_OPT),
  def('lirc_mode2', 'LIRC_MODE2', 'LIRC_MODE2', ATTACHABLE_OPT),
  def('flow_dissector', 'FLOW_DISSECTOR', 'FLOW_DISSECTOR', ATTACHABLE_OPT),
  def('cgroup_skb/ingress', 'CGROUP_SKB', 'CGROUP_INET_INGRESS', ATTACHABLE_OPT),
  def('cgroup_skb/egress', 'CGROUP_SKB', 'CGROUP_INET_EGRESS', ATTACHABLE_OPT),
  def('cgroup/skb', 'CGROUP_SKB', '', NONE),
  def('cgroup/sock_create', 'CGROUP_SOCK', 'CGROUP_INET_SOCK_CREATE', ATTACHABLE),
  def('cgroup/sock_release', 'CGROUP_SOCK', 'CGROUP_INET_SOCK_RELEASE', ATTACHABLE),
  def('cgroup/sock', 'CGROUP_SOCK', 'CGROUP_INET_SOCK_CREATE', ATTACHABLE_OPT),
  def('cgroup/post_bind4', 'CGROUP_SOCK', 'CGROUP_INET4_POST_BIND', ATTACHABLE),
  def('cgroup/post_bind6', 'CGROUP_SOCK', 'CGROUP_INET6_POST_BIND', ATTACHABLE),
  def('cgroup/bind4', 'CGROUP_SOCK_ADDR', 'CGROUP_INET4_BIND', ATTACHABLE),
  def('cgroup/bind6', 'CGROUP_SOCK_ADDR', 'CGROUP_INET6_BIND', ATTACHABLE),
  def('cgroup/connect4', 'CGROUP_SOCK_ADDR', 'CGROUP_INET4_CONNECT', ATTACHABLE),
  def('cgroup/connect6', 'CGROUP_SOCK_ADDR', 'CGROUP_INET6_CONNECT', ATTACHABLE),
  def('cgroup/connect_unix', 'CGROUP_SOCK_ADDR', 'CGROUP_UNIX_CONNECT', ATTACHABLE),
  def('cgroup/sendmsg4', 'CGROUP_SOCK_ADDR', 'CGROUP_UDP4_SENDMSG', ATTACHABLE),
  def('cgroup/sendmsg6', 'CGROUP_SOCK_ADDR', 'CGROUP_UDP6_SENDMSG', ATTACHABLE),
  def('cgroup/sendmsg_unix', 'CGROUP_SOCK_ADDR', 'CGROUP_UNIX_SENDMSG', ATTACHABLE),
  def('cgroup/recvmsg4', 'CGROUP_SOCK_ADDR', 'CGROUP_UDP4_RECVMSG', ATTACHABLE),
  def('cgroup/recvmsg6', 'CGROUP_SOCK_ADDR', 'CGROUP_UDP6_RECVMSG', ATTACHABLE),
  def('cgroup/recvmsg_unix', 'CGROUP_SOCK_ADDR', 'CGROUP_UNIX_RECVMSG', ATTACHABLE),
  def('cgroup/getpeername4', 'CGROUP_SOCK_ADDR', 'CGROUP_INET4_GETPEERNAME', ATTACHABLE),
  def('cgroup/getpeername6', 'CGROUP_SOCK_ADDR', 'CGROUP_INET6_GETPEERNAME', ATTACHABLE),
  def('cgroup/getpeername_unix', 'CGROUP_SOCK_ADDR', 'CGROUP_UNIX_GETPEERNAME', ATTACHABLE),
  def('cgroup/getsockname4', 'CGROUP_SOCK_ADDR', 'CGROUP_INET4_GETSOCKNAME', ATTACHABLE),
  def('cgroup/getsockname6', 'CGROUP_SOCK_ADDR', 'CGROUP_INET6_GETSOCKNAME', ATTACHABLE),
  def('cgroup/getsockname_unix', 'CGROUP_SOCK_ADDR', 'CGROUP_UNIX_GETSOCKNAME', ATTACHABLE),
  def('cgroup/sysctl', 'CGROUP_SYSCTL', 'CGROUP_SYSCTL', ATTACHABLE),
  def('cgroup/getsockopt', 'CGROUP_SOCKOPT', 'CGROUP_GETSOCKOPT', ATTACHABLE),
  def('cgroup/setsockopt', 'CGROUP_SOCKOPT', 'CGROUP_SETSOCKOPT', ATTACHABLE),
  def('cgroup/dev', 'CGROUP_DEVICE', 'CGROUP_DEVICE', ATTACHABLE_OPT),
  def('struct_ops+', 'STRUCT_OPS', '', NONE),
  def('struct_ops.s+', 'STRUCT_OPS', '', SLEEPABLE),
  def('sk_lookup', 'SK_LOOKUP', 'SK_LOOKUP', ATTACHABLE),
  def('netfilter', 'NETFILTER', 'NETFILTER', NONE),
];

/** sec_def_matches. */
export function sectionMatches(pattern: string, section: string): boolean {
  const last = pattern[pattern.length - 1];
  if (last === '/') return section.startsWith(pattern);
  if (last === '+') {
    const stem = pattern.slice(0, -1);
    if (!section.startsWith(stem)) return false;
    return section.length === stem.length || section[stem.length] === '/';
  }
  return section === pattern;
}

/**
 * SECTION_DEFS by the first character of their pattern, in table order. A section matches only
 * patterns that start with its own first character (no pattern's stem is empty), so looking in one
 * bucket finds what a search of the whole table finds, in a tenth of the comparisons.
 */
const DEFS_BY_FIRST_CHAR = new Map<string, SectionDef[]>();
for (const d of SECTION_DEFS) {
  const bucket = DEFS_BY_FIRST_CHAR.get(d.pattern[0]!);
  if (bucket === undefined) DEFS_BY_FIRST_CHAR.set(d.pattern[0]!, [d]);
  else bucket.push(d);
}

/** find_sec_def: the first definition matching the section name, if any. */
export function findSectionDef(section: string): SectionDef | undefined {
  return DEFS_BY_FIRST_CHAR.get(section.charAt(0))?.find((d) => sectionMatches(d.pattern, section));
}

/**
 * What the section name says about where the program attaches, as libbpf derives it at load or
 * attach time: the BTF name to look up for BTF-attached programs (fentry/fexit/fmod_ret/tp_btf/
 * lsm/iter), or the kernel function / tracepoint / syscall for the others.
 */
export type AttachTarget =
  | { kind: 'btf'; name: string; btfKind: 'func' | 'typedef' }
  | { kind: 'kprobe'; function: string }
  | { kind: 'ksyscall'; syscall: string }
  | { kind: 'tracepoint'; category: string; name: string }
  | { kind: 'raw_tracepoint'; name: string }
  | { kind: 'none' };

/** The part of the section name after the definition's stem and its '/' ('' when bare). */
function suffix(def: SectionDef, section: string): string {
  const stem = def.pattern.replace(/[+/]$/, '');
  return section.length > stem.length + 1 ? section.slice(stem.length + 1) : '';
}

export function attachTargetOf(def: SectionDef, section: string): AttachTarget {
  const rest = suffix(def, section);
  if (rest === '') return { kind: 'none' };
  if ((def.flags & SEC.ATTACH_BTF) !== 0) {
    switch (def.attachType) {
      // libbpf's btf_attach prefixes: tp_btf targets are "btf_trace_<tp>" typedefs, lsm hooks are
      // "bpf_lsm_<hook>" functions, iterators "bpf_iter_<name>" functions.
      case 'TRACE_RAW_TP':
        return { kind: 'btf', name: `btf_trace_${rest}`, btfKind: 'typedef' };
      case 'LSM_MAC':
      case 'LSM_CGROUP':
        return { kind: 'btf', name: `bpf_lsm_${rest}`, btfKind: 'func' };
      case 'TRACE_ITER':
        return { kind: 'btf', name: `bpf_iter_${rest}`, btfKind: 'func' };
      default:
        if (def.progType === 'EXT') return { kind: 'none' };
        return { kind: 'btf', name: rest, btfKind: 'func' };
    }
  }
  if (def.progType === 'KPROBE' && def.attachType === '' && (def.flags & SEC.USDT) === 0) {
    if (def.pattern.startsWith('ksyscall') || def.pattern.startsWith('kretsyscall')) {
      return { kind: 'ksyscall', syscall: rest };
    }
    if (def.pattern.startsWith('kprobe') || def.pattern.startsWith('kretprobe')) {
      // "kprobe/func+0x10": the function name is what must exist.
      return { kind: 'kprobe', function: rest.replace(/\+.*$/, '') };
    }
    return { kind: 'none' };
  }
  if (def.progType === 'TRACEPOINT') {
    const slash = rest.indexOf('/');
    if (slash > 0) return { kind: 'tracepoint', category: rest.slice(0, slash), name: rest.slice(slash + 1) };
    return { kind: 'none' };
  }
  if (def.progType === 'RAW_TRACEPOINT' || def.progType === 'RAW_TRACEPOINT_WRITABLE') {
    return { kind: 'raw_tracepoint', name: rest };
  }
  return { kind: 'none' };
}
