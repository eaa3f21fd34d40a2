import type { Btf } from '../btf/btf.js';
import { skipModsAndTypedefs } from '../core/btf-walk.js';
import { typesAreCompatible } from '../core/compat.js';
import { CoreFailure } from '../core/errno.js';
import { type ObjectRelocation, relocateObject } from '../core/relocate.js';
import { BPF_F_MMAPABLE } from '../object/data.js';
import { MAP_TYPE } from '../object/maps.js';
import type { BpfObject, BpfProgram } from '../object/object.js';
import { SEC } from '../object/sections.js';
import type { PlannedMap, PlannedObject, PlannedProgram } from '../vm/plan.js';
import { Assembler, type ResolvedExtern } from './assemble.js';
import { btfForLoad } from './btf-load.js';
import { type KernelFeatures, kernelFeatures, kernelVersionCode } from './features.js';
import { computeKconfig, type KconfigInput } from './kconfig.js';
import { ATTACH_TYPES, BPF_F_SLEEPABLE, BPF_F_XDP_HAS_FRAGS, PROG_TYPES, uapiNumber } from './uapi.js';

/**
 * planObject: from a BPF object and a kernel to the object's LoadPlan entry, doing on the host what
 * libbpf's bpf_object__prepare and bpf_object_load_prog do before BPF_PROG_LOAD (CO-RE, extern
 * resolution, program assembly, BTF sanitization, map attributes, attach targets), so that the
 * in-VM agent only issues bpf() syscalls.
 *
 * Programs are planned as the VM tier loads them: each on its own (as libbpf does when only that
 * program is autoloaded). So a CO-RE failure or a missing attach target in one entry program
 * refuses that program only; what libbpf checks for the whole object whatever is loaded (open
 * errors, externs, CO-RE relocations of .text subprograms) refuses every program.
 */

export interface PlanKernel {
  /** The kernel's vmlinux BTF. */
  btf: Btf;
  /** Module BTFs (split on `btf`), when known: kfuncs, ksyms and attach targets are looked up there too. */
  modules?: readonly { name: string; btf: Btf }[];
  /** Its build config: raw values, a parsed config, or the file's text/bytes. */
  config: KconfigInput;
  /** `uname -r`, e.g. "6.1.0-50-cloud-amd64". */
  release: string;
  /**
   * The upstream version when the release does not carry it (Debian: "6.1.176" for
   * "6.1.0-50-cloud-amd64"): LINUX_KERNEL_VERSION and kern_version come from it.
   */
  version?: string;
  /** Symbol addresses (System.map or /proc/kallsyms) for typeless ksyms; without it they are undecided. */
  kallsyms?: ReadonlyMap<string, bigint>;
}

export interface PlanOptions {
  /** The object's name in reports (its path as given); defaults to its libbpf object name. */
  name?: string;
}

export interface PlanProblem {
  /** The program concerned; absent when it concerns the whole object (then every program is refused). */
  program?: string;
  /**
   * 'refused': libbpf would fail before PROG_LOAD (the program is not in the plan);
   * 'undecided': the static tier cannot tell (e.g. a typeless ksym without kallsyms): planned with
   * libbpf's fallback value, the real answer may differ;
   * 'unsupported': something corematrix does not plan yet (the program is planned without it).
   */
  severity: 'refused' | 'undecided' | 'unsupported';
  stage: 'open' | 'core' | 'externs' | 'relocate' | 'btf' | 'prog';
  message: string;
}

export interface ObjectPlan {
  /** Undefined when libbpf would refuse the whole object. */
  plan: PlannedObject | undefined;
  /** Per program (and per object) problems, in libbpf's order. */
  problems: PlanProblem[];
  /** The feature decisions made for this kernel (see features.ts). */
  features: KernelFeatures;
  /** What the BTF sanitization changed ("2 DECL_TAG → INT", …). */
  sanitized: string[];
  /** The CO-RE relocation of the programs that were planned (for reports). */
  relocation: ObjectRelocation | undefined;
}

/** Map types libbpf creates without BTF key/value ids (bpf_object__create_map). */
const NO_BTF_MAP_TYPES = new Set([4, 8, 7, 12, 13, 14, 25, 16, 17, 15, 18, 22, 23, 33]);

export function planObject(obj: BpfObject, kernel: PlanKernel, options: PlanOptions = {}): ObjectPlan {
  const features = kernelFeatures(kernel);
  const problems: PlanProblem[] = [];
  const result: ObjectPlan = { plan: undefined, problems, features, sanitized: [], relocation: undefined };
  const entries = obj.programs.filter((p) => !p.isSubprogram && p.autoload);
  const refuseAll = (stage: PlanProblem['stage'], message: string): ObjectPlan => {
    for (const p of entries) problems.push({ program: p.name, severity: 'refused', stage, message });
    if (entries.length === 0) problems.push({ severity: 'refused', stage, message });
    return result;
  };

  const openError = obj.openErrors[0];
  if (openError !== undefined) return refuseAll('open', openError.message);
  if (!obj.littleEndian) {
    return refuseAll('open', `object '${obj.objectName}': loading non-native endianness is unsupported`);
  }
  const versionCode = kernelVersionCode(kernel.release, kernel.version);

  // bpf_object__resolve_externs: every extern, whatever program uses it.
  const ext = resolveExterns(obj, kernel, features, versionCode, problems);
  if (ext.error !== undefined) return refuseAll('externs', ext.error);

  // CO-RE, each program on its own: drop the entry programs whose relocation fails and redo.
  let planned = entries;
  let relocation: ObjectRelocation | undefined;
  const targets = {
    vmlinux: kernel.btf,
    modules: kernel.modules ?? [],
    vmlinuxOverride: kernel.modules === undefined,
  };
  for (;;) {
    const keep = new Set(planned);
    const view = Object.create(obj, {
      programs: { value: obj.programs.map((p) => (p.isSubprogram ? p : { ...p, autoload: keep.has(p) })) },
    }) as BpfObject;
    relocation = relocateObject(view, targets);
    const failed = relocation.failed;
    if (failed === undefined) break;
    const message = `prog '${failed.function}': relo #${failed.index}: ${failed.message ?? 'failed'} (${failed.access})`;
    const culprit = planned.find((p) => p.name === failed.function && p.section === failed.section);
    if (culprit === undefined) return refuseAll('core', message);
    problems.push({ program: culprit.name, severity: 'refused', stage: 'core', message });
    planned = planned.filter((p) => p !== culprit);
  }
  result.relocation = relocation;

  const btf = btfForLoad(obj, features);
  result.sanitized = btf?.sanitized ?? [];
  if (obj.btf !== undefined && !features.argCtxTag && obj.btf.findByName('arg:ctx').length > 0) {
    problems.push({
      severity: 'unsupported',
      stage: 'btf',
      message:
        'arg:ctx decl tags on a kernel before 6.8: libbpf rewrites global subprogram prototypes (bpf_program_fixup_func_info); corematrix does not yet',
    });
  }

  const kconfigMap = obj.maps.findIndex((m) => m.kind === 'kconfig');
  const maps = planMaps(obj, features, btf !== undefined, kconfigMap >= 0 ? ext.kconfig : undefined);

  const assembler = new Assembler({
    obj,
    sections: relocation.sections,
    externs: ext.resolved,
    kconfigMap,
    btfExtInfo: btf !== undefined && features.btfFunc && obj.btfExt !== undefined,
    probeReadKern: features.probeReadKern,
  });
  const programs: PlannedProgram[] = [];
  for (const prog of planned) {
    const refuse = (stage: PlanProblem['stage'], message: string) =>
      problems.push({ program: prog.name, severity: 'refused', stage, message });
    const types = programTypes(prog, kernel, features);
    if ('error' in types) {
      refuse('prog', types.error);
      continue;
    }
    const asm = assembler.assemble(prog);
    if (asm.error !== undefined) {
      refuse('relocate', asm.error);
      continue;
    }
    for (const u of asm.unsupported) {
      problems.push({ program: prog.name, severity: 'unsupported', stage: 'relocate', message: u });
    }
    const planned: PlannedProgram = {
      name: prog.name,
      section: prog.section,
      type: types.type,
      expectedAttachType: types.expectedAttachType,
      attachBtfId: types.attachBtfId,
      flags: types.flags,
      license: obj.license ?? '',
      kernVersion: obj.kernelVersion ?? versionCode,
      insns: asm.insns,
      mapReferences: asm.mapReferences,
      maps: [...new Set(asm.mapReferences.map((r) => r.map))].sort((a, b) => a - b),
    };
    if (btf !== undefined && features.btfFunc) {
      if (asm.funcInfo !== undefined) planned.funcInfo = asm.funcInfo;
      if (asm.lineInfo !== undefined) planned.lineInfo = asm.lineInfo;
    }
    programs.push(planned);
  }

  // .values of prog arrays name programs: indexes among the planned ones.
  for (const [i, m] of obj.maps.entries()) {
    const slots = m.initialSlots;
    if (slots === undefined) continue;
    const out: NonNullable<PlannedMap['initialSlots']> = [];
    for (const s of slots) {
      if (s.kind === 'prog') {
        const p = programs.findIndex((q) => q.name === s.name);
        if (p >= 0) out.push({ key: s.slot, program: p });
      } else {
        const target = obj.maps.findIndex((q) => q.name === s.name || q.realName === s.name);
        if (target >= 0) out.push({ key: s.slot, map: target });
      }
    }
    if (out.length > 0) maps[i]!.initialSlots = out;
  }

  const plan: PlannedObject = { name: options.name ?? obj.objectName, maps, programs };
  if (btf !== undefined) plan.btf = btf.bytes;
  result.plan = plan;
  return result;
}

interface ExternResolution {
  resolved: ResolvedExtern[];
  kconfig: Uint8Array | undefined;
  error?: string;
}

function resolveExterns(
  obj: BpfObject,
  kernel: PlanKernel,
  features: KernelFeatures,
  versionCode: number,
  problems: PlanProblem[],
): ExternResolution {
  const resolved: ResolvedExtern[] = obj.externs.map(() => ({ set: false }));
  const errors: string[] = [];
  const kconfigMap = obj.maps.find((m) => m.kind === 'kconfig');
  let kconfig: Uint8Array | undefined;
  if (obj.externs.some((e) => e.type === 'kconfig')) {
    const k = computeKconfig({
      externs: obj.externs,
      size: kconfigMap?.valueSize ?? 0,
      littleEndian: obj.littleEndian,
      config: kernel.config,
      features,
      versionCode,
    });
    errors.push(...k.errors);
    kconfig = k.data;
    obj.externs.forEach((e, i) => {
      if (e.type === 'kconfig' && !k.unset.includes(e)) resolved[i]!.set = true;
    });
  }
  const localBtf = obj.btf;
  const find = (name: string, kind: 'var' | 'func'): { btf: Btf; id: number } | undefined => {
    const id = kernel.btf.findByNameKind(name, kind);
    if (id !== undefined && id > 0) return { btf: kernel.btf, id };
    for (const m of kernel.modules ?? []) {
      for (const mid of m.btf.findByName(name)) {
        if (mid >= m.btf.firstId && m.btf.kind(mid) === kind) return { btf: m.btf, id: mid };
      }
    }
    return undefined;
  };
  const compatible = (localId: number, targ: Btf, targId: number): boolean => {
    try {
      return localBtf !== undefined && typesAreCompatible(localBtf, localId, targ, targId);
    } catch (e) {
      if (e instanceof CoreFailure) return false;
      throw e;
    }
  };
  obj.externs.forEach((e, i) => {
    if (e.type !== 'ksym' || e.ksym === undefined) return;
    const r = resolved[i]!;
    if (e.ksym.typeless) {
      if (kernel.kallsyms === undefined) {
        problems.push({
          severity: 'undecided',
          stage: 'externs',
          message: `extern (ksym) '${e.name}' has no type: libbpf takes its address from /proc/kallsyms, which the static tier does not have (give System.map); planned as unresolved (address 0)`,
        });
        r.set = true; // not counted as a strong failure: undecided instead
        r.addr = 0n;
        return;
      }
      const addr = kernel.kallsyms.get(e.name);
      if (addr !== undefined) {
        r.set = true;
        r.addr = addr;
      }
      return;
    }
    if (e.ksym.kfunc) {
      const found = find(e.essentialName, 'func');
      if (found === undefined) {
        if (!e.weak) errors.push(`extern (func ksym) '${e.name}': not found in kernel or module BTFs`);
        return;
      }
      const kfunc = found.btf.type(found.id);
      const proto = kfunc.kind === 'func' ? kfunc.type : 0;
      if (!compatible(e.ksym.typeId, found.btf, proto)) {
        if (!e.weak) {
          errors.push(
            `extern (func ksym) '${e.name}': func_proto [${e.ksym.typeId}] incompatible with vmlinux [${proto}]`,
          );
        }
        return;
      }
      if (found.btf !== kernel.btf) {
        problems.push({
          severity: 'unsupported',
          stage: 'externs',
          message: `kfunc '${e.name}' is in a module's BTF: module BTF fds (fd_array) are not planned yet`,
        });
      }
      r.set = true;
      r.btfId = found.id;
      return;
    }
    const found = find(e.name, 'var');
    if (found === undefined) {
      if (!e.weak) errors.push(`extern (var ksym) '${e.name}': not found in kernel BTF`);
      return;
    }
    const v = found.btf.type(found.id);
    let targType = 0;
    try {
      targType = v.kind === 'var' ? skipModsAndTypedefs(found.btf, v.type).id : 0;
    } catch (err) {
      if (!(err instanceof CoreFailure)) throw err;
    }
    if (!compatible(e.ksym.typeId, found.btf, targType)) {
      errors.push(`extern (var ksym) '${e.name}': incompatible types with kernel [${targType}]`);
      return;
    }
    r.set = true;
    r.btfId = found.id;
  });
  obj.externs.forEach((e, i) => {
    if (!resolved[i]!.set && !e.weak) errors.push(`extern '${e.name}' (strong): not resolved`);
  });
  const out: ExternResolution = { resolved, kconfig };
  if (errors[0] !== undefined) out.error = errors[0];
  return out;
}

function planMaps(
  obj: BpfObject,
  features: KernelFeatures,
  withBtf: boolean,
  kconfig: Uint8Array | undefined,
): PlannedMap[] {
  const maps: PlannedMap[] = [];
  const inner: PlannedMap[] = [];
  const base = (
    m: {
      type: number;
      keySize: number;
      valueSize: number;
      createMaxEntries: number;
      mapFlags: number;
      numaNode: number;
      mapExtra: bigint;
      keyTypeId: number;
      valueTypeId: number;
    },
    name: string,
  ): PlannedMap => {
    const btfIds = withBtf && !NO_BTF_MAP_TYPES.has(m.type);
    const p: PlannedMap = {
      name: features.progName ? name : '',
      type: m.type,
      keySize: m.keySize,
      valueSize: m.valueSize,
      maxEntries: m.createMaxEntries,
      flags: m.mapFlags,
      btfKeyTypeId: btfIds ? m.keyTypeId : 0,
      btfValueTypeId: btfIds ? m.valueTypeId : 0,
      freeze: false,
    };
    if (m.numaNode !== 0) p.numaNode = m.numaNode;
    if (m.mapExtra !== 0n) p.mapExtra = m.mapExtra;
    return p;
  };
  for (const m of obj.maps) {
    const p = base(m, m.kernelName);
    if (m.data !== undefined) {
      // bpf_object__sanitize_maps: no BPF_F_MMAPABLE before 5.5.
      if (!features.arrayMmap) p.flags &= ~BPF_F_MMAPABLE;
      p.freeze = m.data.frozen;
      if (m.kind === 'kconfig') {
        if (kconfig !== undefined) p.initialValue = kconfig;
        else p.initialValue = new Uint8Array(m.valueSize);
      } else if (m.data.initialBytes !== undefined) {
        p.initialValue = Uint8Array.from(m.data.initialBytes);
      }
    }
    if (m.inner !== undefined && (m.type === MAP_TYPE.ARRAY_OF_MAPS || m.type === MAP_TYPE.HASH_OF_MAPS)) {
      // The inner map template is created (and closed) by libbpf just to make the outer map; it
      // is not one of the object's maps, so it goes after them.
      inner.push(base(m.inner, m.inner.name.slice(0, 15)));
      p.innerMap = obj.maps.length + inner.length - 1;
    }
    maps.push(p);
  }
  return [...maps, ...inner];
}

function programTypes(
  prog: BpfProgram,
  kernel: PlanKernel,
  features: KernelFeatures,
): { type: number; expectedAttachType: number; attachBtfId: number; flags: number } | { error: string } {
  const def = prog.sectionDef;
  if (def === undefined || prog.progType === '') {
    return { error: `prog '${prog.name}': missing BPF prog type, check ELF section name '${prog.section}'` };
  }
  const type = uapiNumber(kernel.btf, 'bpf_prog_type', 'BPF_PROG_TYPE_', prog.progType, PROG_TYPES);
  if (type === undefined) return { error: `prog '${prog.name}': program type ${prog.progType} is unknown` };
  let attachName = prog.expectedAttachType;
  if ((def.flags & SEC.USDT) !== 0 && features.uprobeMultiLink) attachName = 'TRACE_UPROBE_MULTI';
  let expectedAttachType = 0;
  if (attachName !== '') {
    const n = uapiNumber(kernel.btf, 'bpf_attach_type', 'BPF_', attachName, ATTACH_TYPES);
    if (n === undefined) return { error: `prog '${prog.name}': attach type ${attachName} is unknown` };
    expectedAttachType = n.value;
  }
  if ((def.flags & SEC.EXP_ATTACH_OPT) !== 0 && !features.expAttachType) expectedAttachType = 0;
  let flags = 0;
  if ((def.flags & SEC.SLEEPABLE) !== 0) flags |= BPF_F_SLEEPABLE;
  if (prog.progType === 'XDP' && (def.flags & SEC.XDP_FRAGS) !== 0) flags |= BPF_F_XDP_HAS_FRAGS;
  if (prog.progType === 'STRUCT_OPS') {
    return {
      error: `prog '${prog.name}': SEC("struct_ops") program isn't referenced anywhere, did you forget to use it?`,
    };
  }

  let attachBtfId = 0;
  if ((def.flags & SEC.ATTACH_BTF) !== 0) {
    const sec = prog.section.startsWith('?') ? prog.section.slice(1) : prog.section;
    const slash = sec.indexOf('/');
    if (slash < 0) {
      return {
        error: `prog '${prog.name}': no BTF-based attach target is specified, use bpf_program__set_attach_target()`,
      };
    }
    let target = sec.slice(slash + 1);
    if (prog.progType === 'EXT') return { error: `prog '${prog.name}': attach program FD is not set` };
    const colon = target.indexOf(':');
    let module: string | undefined;
    if (colon >= 0) {
      module = target.slice(0, colon);
      target = target.slice(colon + 1);
    }
    const [prefix, kind] =
      attachName === 'TRACE_RAW_TP'
        ? ['btf_trace_', 'typedef' as const]
        : attachName === 'LSM_MAC' || attachName === 'LSM_CGROUP'
          ? ['bpf_lsm_', 'func' as const]
          : attachName === 'TRACE_ITER'
            ? ['bpf_iter_', 'func' as const]
            : ['', 'func' as const];
    const id =
      module === undefined || module === 'vmlinux'
        ? kernel.btf.findByNameKind(prefix + target, kind)
        : undefined;
    if (id === undefined) {
      const where = module === undefined || module === 'vmlinux' ? 'kernel BTF' : `module ${module}'s BTF`;
      return { error: `attach target ${target} not found in ${where} (no ${kind} ${prefix}${target})` };
    }
    attachBtfId = id;
  }
  return { type: type.value, expectedAttachType, attachBtfId, flags };
}
