import type { Btf } from '../btf/btf.js';
import { type RawKconfig, rawKconfig } from '../loader/kconfig.js';
import type { PlanKernel, PlanProblem } from '../loader/loader.js';
import { ATTACH_TYPES, PROG_TYPES, uapiNumber } from '../loader/uapi.js';
import { MAP_TYPE_NAMES } from '../object/maps.js';
import type { BpfObject, BpfProgram } from '../object/object.js';
import type { PlannedObject, PlannedProgram } from '../vm/plan.js';

/**
 * Feature availability, statically, per program × kernel: what the program needs (helpers, its
 * program and expected attach type, the types of the maps it uses, attach targets, kfuncs and
 * ksyms, .kconfig values) against what the kernel's own BTF and config say it has.
 *
 * The kernel's BTF carries the uapi enums of the kernel that was built: `enum bpf_func_id`,
 * `enum bpf_prog_type`, `enum bpf_attach_type`, `enum bpf_map_type`. A number past the enum's last
 * enumerator is something the kernel predates (ringbuf before 5.8, arena before 6.9, …).
 *
 * What the loader already decides (BTF attach targets, strong kfuncs and ksyms, .kconfig values a
 * kernel cannot give) stays with the loader's problems: this module does not repeat those checks,
 * it reports them under the same heading so a reader sees every feature in one place.
 */

export type FeatureKind =
  | 'helper'
  | 'prog-type'
  | 'attach-type'
  | 'map-type'
  | 'attach-target'
  | 'kfunc'
  | 'ksym'
  | 'kconfig';

export interface Feature {
  kind: FeatureKind;
  /** What is needed: "bpf_ringbuf_output", "BPF_MAP_TYPE_RINGBUF", "kprobe do_unlinkat", … */
  name: string;
  /**
   * 'ok': the kernel has it; 'missing': it lacks it and the program is rejected for it; 'optional':
   * it lacks it but the program may do without (a weak extern, a defaulted .kconfig value);
   * 'unknown': the static tier cannot tell.
   */
  status: 'ok' | 'missing' | 'optional' | 'unknown';
  /** Why, when not 'ok'. */
  detail?: string;
}

/** The CO-RE poison call imm: not a helper (the guard analysis decides about it). */
const POISON_CALL_CORE = 0xbad2310;
const OP_CALL = 0x85;

/** value → enumerator name of a kernel enum (without its MAX sentinel), cached per BTF. */
const enumCache = new WeakMap<Btf, Map<string, Map<number, string> | undefined>>();

export function enumValues(btf: Btf, name: string): Map<number, string> | undefined {
  let perBtf = enumCache.get(btf);
  if (perBtf === undefined) {
    perBtf = new Map();
    enumCache.set(btf, perBtf);
  }
  if (perBtf.has(name)) return perBtf.get(name);
  const id = btf.findByNameKind(name, 'enum');
  const t = id === undefined ? undefined : btf.type(id);
  let out: Map<number, string> | undefined;
  if (t?.kind === 'enum') {
    out = new Map();
    for (const v of t.values) {
      // __BPF_FUNC_MAX_ID, __MAX_BPF_PROG_TYPE, __MAX_BPF_ATTACH_TYPE, __MAX_BPF_MAP_TYPE.
      if (v.name.startsWith('__')) continue;
      out.set(Number(v.value), v.name);
    }
  }
  perBtf.set(name, out);
  return out;
}

/** Helper ids called by final instructions (call with src_reg 0), in first-use order. */
export function helperCalls(insns: Uint8Array): number[] {
  const view = new DataView(insns.buffer, insns.byteOffset, insns.byteLength);
  const seen = new Set<number>();
  for (let p = 0; p + 8 <= insns.length; p += 8) {
    if (insns[p] !== OP_CALL) continue;
    if (insns[p + 1]! >> 4 !== 0) continue;
    const imm = view.getInt32(p + 4, true);
    if (imm === POISON_CALL_CORE) continue;
    seen.add(imm);
  }
  return [...seen];
}

export interface FeatureInput {
  obj: BpfObject;
  /** The entry program as the object declares it. */
  program: BpfProgram;
  /** Its final instructions as planned for this kernel (absent when the loader refused it). */
  planned: PlannedProgram | undefined;
  /** The object's plan for this kernel (its maps). */
  plan: PlannedObject | undefined;
  /** The loader's problems for this object and kernel (reused, not redone). */
  problems: readonly PlanProblem[];
  kernel: PlanKernel;
  /** The kernel config's raw values (pass it to share one parse across programs). */
  kconfig?: RawKconfig;
}

export function programFeatures(input: FeatureInput): Feature[] {
  const { obj, program, planned, kernel } = input;
  const btf = kernel.btf;
  const out: Feature[] = [];

  // Program type and expected attach type.
  if (program.progType !== '') {
    const t = uapiNumber(btf, 'bpf_prog_type', 'BPF_PROG_TYPE_', program.progType, PROG_TYPES);
    const name = `BPF_PROG_TYPE_${program.progType}`;
    out.push(
      t?.inKernel === false
        ? {
            kind: 'prog-type',
            name,
            status: 'missing',
            detail: `the kernel's enum bpf_prog_type has no ${name}`,
          }
        : t?.inKernel === undefined
          ? { kind: 'prog-type', name, status: 'unknown', detail: 'the kernel BTF has no enum bpf_prog_type' }
          : { kind: 'prog-type', name, status: 'ok' },
    );
  }
  if (program.expectedAttachType !== '') {
    const t = uapiNumber(btf, 'bpf_attach_type', 'BPF_', program.expectedAttachType, ATTACH_TYPES);
    const name = `BPF_${program.expectedAttachType}`;
    out.push(
      t?.inKernel === false
        ? {
            kind: 'attach-type',
            name,
            status: 'missing',
            detail: `the kernel's enum bpf_attach_type has no ${name}`,
          }
        : t?.inKernel === undefined
          ? {
              kind: 'attach-type',
              name,
              status: 'unknown',
              detail: 'the kernel BTF has no enum bpf_attach_type',
            }
          : { kind: 'attach-type', name, status: 'ok' },
    );
  }

  // Helpers, from the final instructions (after libbpf's probe_read fallbacks).
  if (planned !== undefined) {
    const kernelHelpers = enumValues(btf, 'bpf_func_id');
    const objectHelpers = obj.btf === undefined ? undefined : enumValues(obj.btf, 'bpf_func_id');
    for (const id of helperCalls(planned.insns)) {
      const own = objectHelpers?.get(id)?.replace(/^BPF_FUNC_/, 'bpf_');
      if (kernelHelpers === undefined) {
        out.push({
          kind: 'helper',
          name: own ?? `helper #${id}`,
          status: 'unknown',
          detail: 'the kernel BTF has no enum bpf_func_id',
        });
        continue;
      }
      const k = kernelHelpers.get(id);
      if (k !== undefined) out.push({ kind: 'helper', name: k.replace(/^BPF_FUNC_/, 'bpf_'), status: 'ok' });
      else
        out.push({
          kind: 'helper',
          name: own ?? `helper #${id}`,
          status: 'missing',
          detail: `unknown func ${own ?? 'bpf_unknown'}#${id}: past the kernel's last helper`,
        });
    }
  }

  // Map types of the maps the program uses (and their inner map templates).
  if (planned !== undefined && input.plan !== undefined) {
    const kernelMaps = enumValues(btf, 'bpf_map_type');
    const used = new Set<number>();
    for (const i of planned.maps) {
      used.add(i);
      const inner = input.plan.maps[i]?.innerMap;
      if (inner !== undefined) used.add(inner);
    }
    const types = new Map<number, string[]>();
    for (const i of [...used].sort((a, b) => a - b)) {
      const m = input.plan.maps[i];
      if (m === undefined) continue;
      types.set(m.type, [...(types.get(m.type) ?? []), m.name]);
    }
    for (const [type, names] of types) {
      const name = `BPF_MAP_TYPE_${MAP_TYPE_NAMES[type] ?? type}`;
      const maps = names.filter((n) => n !== '').join(', ');
      if (kernelMaps === undefined)
        out.push({
          kind: 'map-type',
          name,
          status: 'unknown',
          detail: 'the kernel BTF has no enum bpf_map_type',
        });
      else if (kernelMaps.has(type)) out.push({ kind: 'map-type', name, status: 'ok' });
      else
        out.push({
          kind: 'map-type',
          name,
          status: 'missing',
          detail: `the kernel's enum bpf_map_type has no ${name}${maps === '' ? '' : ` (map ${maps})`}`,
        });
    }
  }

  // Attach targets.
  const target = program.attachTarget;
  if (target.kind === 'btf') {
    const problem = input.problems.find(
      (p) => p.program === program.name && p.stage === 'prog' && p.message.startsWith('attach target'),
    );
    out.push(
      problem === undefined
        ? { kind: 'attach-target', name: target.name, status: 'ok' }
        : { kind: 'attach-target', name: target.name, status: 'missing', detail: problem.message },
    );
  } else if (target.kind === 'kprobe' || target.kind === 'ksyscall') {
    const fn = target.kind === 'kprobe' ? target.function.replace(/\+.*$/, '') : target.syscall;
    const candidates = target.kind === 'kprobe' ? [fn] : [`__x64_sys_${fn}`, `__se_sys_${fn}`, `sys_${fn}`];
    const found = candidates.find((c) => btf.findByNameKind(c, 'func') !== undefined);
    out.push(
      found !== undefined
        ? { kind: 'attach-target', name: `kprobe ${found}`, status: 'ok' }
        : {
            kind: 'attach-target',
            name: `kprobe ${fn}`,
            status: 'unknown',
            detail: `kprobe target ${fn} not in BTF (it may still be in kallsyms); checked at attach, not at load`,
          },
    );
  } else if (target.kind === 'tracepoint') {
    const struct = `trace_event_raw_${target.name}`;
    const found = btf.findByNameKind(struct, 'struct') !== undefined;
    const name = `tracepoint ${target.category}/${target.name}`;
    out.push(
      found
        ? { kind: 'attach-target', name, status: 'ok' }
        : {
            kind: 'attach-target',
            name,
            status: 'unknown',
            detail: `no struct ${struct} in BTF (the event may use a class's struct); checked at attach, not at load`,
          },
    );
  } else if (target.kind === 'raw_tracepoint') {
    const found = btf.findByNameKind(`btf_trace_${target.name}`, 'typedef') !== undefined;
    const name = `raw_tracepoint ${target.name}`;
    out.push(
      found
        ? { kind: 'attach-target', name, status: 'ok' }
        : { kind: 'attach-target', name, status: 'unknown', detail: `no btf_trace_${target.name} in BTF` },
    );
  }

  // Externs: libbpf resolves every extern of the object whatever the program uses.
  const externError = input.problems.find((p) => p.stage === 'externs' && p.severity === 'refused');
  let kconfig = input.kconfig;
  for (const e of obj.externs) {
    if (e.type === 'ksym' && e.ksym !== undefined) {
      const kind: FeatureKind = e.ksym.kfunc ? 'kfunc' : 'ksym';
      if (e.ksym.typeless) {
        out.push({
          kind,
          name: e.name,
          status: 'unknown',
          detail: `typeless ksym ${e.name}: its address comes from kallsyms, not BTF`,
        });
        continue;
      }
      const has =
        btf.findByNameKind(e.essentialName, e.ksym.kfunc ? 'func' : 'var') !== undefined ||
        (kernel.modules ?? []).some((m) => m.btf.findByName(e.essentialName).length > 0);
      const failed = externError?.message.includes(`'${e.name}'`) === true;
      if (has && !failed) out.push({ kind, name: e.name, status: 'ok' });
      else if (e.weak && !failed)
        out.push({
          kind,
          name: e.name,
          status: 'optional',
          detail: `weak ${kind} ${e.name} is not in the kernel's BTF (${e.ksym.kfunc ? 'calls to it are poisoned' : 'its address is 0'})`,
        });
      else
        out.push({
          kind,
          name: e.name,
          status: 'missing',
          detail: failed ? externError!.message : `strong ${kind} ${e.name} is not in the kernel's BTF`,
        });
    } else if (e.type === 'kconfig' && e.kconfig !== undefined) {
      const failed = externError?.message.includes(`'${e.name}'`) === true;
      if (failed) {
        out.push({ kind: 'kconfig', name: e.name, status: 'missing', detail: externError!.message });
        continue;
      }
      if (e.kconfig.source !== 'config') {
        out.push(
          e.kconfig.source === 'weak-zero'
            ? { kind: 'kconfig', name: e.name, status: 'optional', detail: `${e.name} is left 0 by libbpf` }
            : { kind: 'kconfig', name: e.name, status: 'ok' },
        );
        continue;
      }
      kconfig ??= rawKconfig(kernel.config);
      if (kconfig.has(e.name)) out.push({ kind: 'kconfig', name: e.name, status: 'ok' });
      else
        out.push({
          kind: 'kconfig',
          name: e.name,
          status: e.weak ? 'optional' : 'missing',
          detail: e.weak
            ? `${e.name} is not in the kernel config: defaulted to 0 (weak)`
            : `${e.name} is not in the kernel config`,
        });
    }
  }
  return out;
}
