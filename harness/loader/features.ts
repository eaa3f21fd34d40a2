import type { Btf } from '../btf/btf.js';
import { KIND } from '../btf/wire.js';

/**
 * What the kernel under test supports, for the decisions libbpf makes from its feature probes
 * (kernel_supports(obj, FEAT_*)). libbpf probes by loading tiny BTF blobs and programs into the
 * running kernel; corematrix decides statically, with this rule:
 *
 * 1. A feature is supported when the kernel's release (major.minor of `uname -r`) is at least the
 *    upstream release that added it (table below).
 * 2. A BTF kind is also supported when the kernel's own vmlinux BTF uses it: the kernel validated
 *    that BTF itself, so it knows the kind (this covers distribution backports, e.g. RHEL 8's 4.18
 *    with BTF kinds of 5.x).
 *
 * The BTF kinds are what bpf_object__sanitize_btf needs; the others drive func/line info, the
 * .kconfig virtual values, helper fallbacks and map flags.
 */
export interface KernelFeatures {
  /** BPF_BTF_LOAD at all (4.18). */
  btf: boolean;
  /** FUNC / FUNC_PROTO kinds, func_info and line_info (5.0). */
  btfFunc: boolean;
  /** VAR / DATASEC kinds (5.2). */
  btfDatasec: boolean;
  /** BTF_FUNC_GLOBAL linkage (5.6). */
  btfGlobalFunc: boolean;
  /** FLOAT (5.13). */
  btfFloat: boolean;
  /** DECL_TAG (5.16). */
  btfDeclTag: boolean;
  /** TYPE_TAG (5.17). */
  btfTypeTag: boolean;
  /** ENUM64 and signed ENUM (kind_flag) (6.0). */
  btfEnum64: boolean;
  /** '?' in DATASEC names (6.10). */
  btfQmarkDatasec: boolean;
  /** BPF_F_MMAPABLE array maps (5.5). */
  arrayMmap: boolean;
  /** expected_attach_type in PROG_LOAD (4.17). */
  expAttachType: boolean;
  /** bpf_probe_read_{kernel,user}[_str] helpers (5.5). */
  probeReadKern: boolean;
  /** __arg_ctx decl tags understood by the verifier (6.8). */
  argCtxTag: boolean;
  /** bpf_get_attach_cookie (5.15): LINUX_HAS_BPF_COOKIE. */
  bpfCookie: boolean;
  /** Syscalls entered through arch wrappers (x86-64: 4.17): LINUX_HAS_SYSCALL_WRAPPER. */
  syscallWrapper: boolean;
  /** Object names in PROG_LOAD / MAP_CREATE (4.15). */
  progName: boolean;
  /** uprobe_multi links (6.6): usdt programs get expected attach type TRACE_UPROBE_MULTI. */
  uprobeMultiLink: boolean;
  /** The release the decision was made from, [major, minor]. */
  version: [number, number];
}

/** Upstream release that added each feature. */
const ADDED_IN: Record<Exclude<keyof KernelFeatures, 'version'>, [number, number]> = {
  btf: [4, 18],
  btfFunc: [5, 0],
  btfDatasec: [5, 2],
  btfGlobalFunc: [5, 6],
  btfFloat: [5, 13],
  btfDeclTag: [5, 16],
  btfTypeTag: [5, 17],
  btfEnum64: [6, 0],
  btfQmarkDatasec: [6, 10],
  arrayMmap: [5, 5],
  expAttachType: [4, 17],
  probeReadKern: [5, 5],
  argCtxTag: [6, 8],
  bpfCookie: [5, 15],
  syscallWrapper: [4, 17],
  progName: [4, 15],
  uprobeMultiLink: [6, 6],
};

/** Kinds whose presence in vmlinux BTF proves support (rule 2). */
const KIND_EVIDENCE: Partial<Record<keyof KernelFeatures, number[]>> = {
  btfFunc: [KIND.FUNC, KIND.FUNC_PROTO],
  btfDatasec: [KIND.VAR, KIND.DATASEC],
  btfFloat: [KIND.FLOAT],
  btfDeclTag: [KIND.DECL_TAG],
  btfTypeTag: [KIND.TYPE_TAG],
  btfEnum64: [KIND.ENUM64],
};

/** "6.1.0-50-cloud-amd64" → [6, 1]; undefined when it does not start with major.minor. */
export function releaseVersion(release: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m === null ? undefined : [Number(m[1]), Number(m[2])];
}

/**
 * LINUX_VERSION_CODE as libbpf's get_kernel_version computes it: KERNEL_VERSION(a, b, c) with c
 * capped at 255. `version` is the upstream version when the release string does not carry it
 * (Debian: "6.1.0-50-cloud-amd64" runs 6.1.176, which libbpf reads from utsname's version,
 * "#1 SMP Debian 6.1.176-1"); else the release's own a.b.c. 0 when neither parses.
 */
export function kernelVersionCode(release: string, version?: string): number {
  for (const text of [version, release]) {
    if (text === undefined) continue;
    const m = /(?:Debian )?(\d+)\.(\d+)\.(\d+)/.exec(text);
    if (m !== null) return (Number(m[1]) << 16) + (Number(m[2]) << 8) + Math.min(Number(m[3]), 255);
  }
  return 0;
}

const kindsUsed = new WeakMap<Btf, Set<number>>();

/** The BTF kinds a (kernel) BTF uses. */
export function btfKindsUsed(btf: Btf): Set<number> {
  let kinds = kindsUsed.get(btf);
  if (kinds !== undefined) return kinds;
  kinds = new Set();
  for (let id = 1; id < btf.typeCount; id++) kinds.add(btf.kindNumber(id));
  kindsUsed.set(btf, kinds);
  return kinds;
}

export function kernelFeatures(kernel: { btf: Btf; release: string }): KernelFeatures {
  // A release that does not parse: assume a current kernel (everything supported).
  const version = releaseVersion(kernel.release) ?? [99, 0];
  const kinds = btfKindsUsed(kernel.btf);
  const at = (v: [number, number]) => version[0] > v[0] || (version[0] === v[0] && version[1] >= v[1]);
  const features = { version } as KernelFeatures;
  for (const [name, added] of Object.entries(ADDED_IN) as [
    Exclude<keyof KernelFeatures, 'version'>,
    [number, number],
  ][]) {
    const evidence = KIND_EVIDENCE[name];
    features[name] = at(added) || (evidence?.some((k) => kinds.has(k)) ?? false);
  }
  // The kernel's BTF itself proves BTF_LOAD support.
  features.btf ||= kernel.btf.typeCount > 1;
  return features;
}
