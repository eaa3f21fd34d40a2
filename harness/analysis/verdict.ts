import type { RelocationRecord } from '../core/relocate.js';
import type { RawKconfig } from '../loader/kconfig.js';
import { rawKconfig } from '../loader/kconfig.js';
import { type ObjectPlan, type PlanKernel, planObject } from '../loader/loader.js';
import type { BpfObject } from '../object/object.js';
import type { PlannedProgram } from '../vm/plan.js';
import { type Feature, programFeatures } from './features.js';
import { classifyRelocations, type GuardReport, type GuardStatus, readOnlyValuesOf } from './guards.js';

/**
 * The static verdict: per program × kernel, without booting, whether the program loads, and why
 * not — from the loader's plan (what libbpf refuses before PROG_LOAD), the features the program
 * needs against the kernel's BTF and config (features.ts), and the guard analysis (guards.ts: CO-RE
 * relocations that failed on a reachable path, reachable calls to missing weak kfuncs).
 *
 * What the static tier cannot see is listed, per program, as `unknown`: the verifier itself
 * (complexity limits, bounds, the program's own logic), helpers a program type may not call,
 * typeless ksyms, kprobe targets not in BTF.
 */

export type StaticVerdict = 'loads' | 'rejected';

export interface Reason {
  /** Where the reason comes from. */
  source: 'object' | 'loader' | 'feature' | 'guard';
  message: string;
}

export interface RelocationClass {
  record: RelocationRecord;
  status: GuardStatus;
  /** For needs-guard: the fix in words. */
  fix?: string;
  /** For needs-guard: the final instruction. */
  insn?: number;
}

export interface GuardResult {
  relocations: RelocationClass[];
  /** Reachable calls to poisoned (missing weak) kfuncs: names or messages. */
  kfuncPoison: string[];
}

export interface ProgramStatic {
  object: string;
  program: string;
  section: string;
  kernel: string;
  verdict: StaticVerdict;
  reasons: Reason[];
  /** Causes the static tier cannot see, which might still reject the program. */
  unknown: string[];
  features: Feature[];
  /** The guard analysis' classification of this program's CO-RE relocations (absent without it). */
  relocations?: RelocationClass[];
  /** CO-RE relocations of this program that libbpf poisoned. */
  poisoned: number;
}

/** Always beyond the static tier: it does not run the verifier. */
export const VERIFIER_UNKNOWN =
  'verifier limits and checks on the program logic (the static tier does not run the verifier)';
export const HELPER_PROG_TYPE_UNKNOWN = 'helpers the kernel has but may not allow for this program type';
/** The guard analysis' report in the verdict's terms: classifications, and reachable calls to missing weak kfuncs. */
export function guardResult(
  report: GuardReport,
  externName: (index: number) => string | undefined,
): GuardResult {
  const relocations = report.relocations.map((c) => {
    const out: RelocationClass = { record: c.record, status: c.status };
    if (c.fix !== undefined) out.fix = c.fix;
    if (c.insn !== undefined) out.insn = c.insn;
    return out;
  });
  const kfuncPoison = report.reachablePoison
    .filter((p) => p.kind === 'kfunc')
    .map((p) => {
      const name = p.externIndex === undefined ? undefined : externName(p.externIndex);
      return `reachable call to weak kfunc ${name ?? '?'}, which the kernel lacks (insn ${p.insn})`;
    });
  return { relocations, kfuncPoison };
}

// ---------------------------------------------------------------------------------------------

/** Function names of a planned program from its func_info (the entry function first). */
function functionsOf(obj: BpfObject, prog: PlannedProgram): Set<string> {
  const names = new Set([prog.name]);
  const info = prog.funcInfo;
  if (obj.btf === undefined || info === undefined) return names;
  const v = new DataView(info.records.buffer, info.records.byteOffset, info.records.byteLength);
  for (let p = 0; p + 8 <= info.records.length; p += info.recordSize) {
    names.add(obj.btf.name(v.getUint32(p + 4, true)));
  }
  return names;
}

/** Every entry program planned, as the VM tier loads each on its own (SEC("?…") included). */
export function allAutoload(obj: BpfObject): BpfObject {
  if (obj.programs.every((p) => p.isSubprogram || p.autoload)) return obj;
  return Object.create(obj, {
    programs: { value: obj.programs.map((p) => (p.isSubprogram ? p : { ...p, autoload: true })) },
  }) as BpfObject;
}

export interface StaticInput {
  /** The object's name in reports. */
  name: string;
  obj: BpfObject;
  kernelName: string;
  kernel: PlanKernel;
  /** The kernel config's raw values, parsed once per kernel by the caller. */
  kconfig?: RawKconfig;
  /** A plan already made for this kernel (else planned here). */
  plan?: ObjectPlan;
}

/** Static verdicts of every entry program of one object on one kernel. */
export function staticVerdicts(input: StaticInput): ProgramStatic[] {
  const obj = allAutoload(input.obj);
  const planned = input.plan ?? planObject(obj, input.kernel, { name: input.name });
  const kconfig = input.kconfig ?? rawKconfig(input.kernel.config);
  const records = planned.relocation?.records ?? [];
  const objectProblems = planned.problems.filter((p) => p.program === undefined);
  const out: ProgramStatic[] = [];
  for (const prog of obj.programs) {
    if (prog.isSubprogram) continue;
    const plannedProg = planned.plan?.programs.find((p) => p.name === prog.name);
    const mine = planned.problems.filter((p) => p.program === prog.name);
    const reasons: Reason[] = [];
    const unknown: string[] = [VERIFIER_UNKNOWN];
    for (const p of [...objectProblems, ...mine]) {
      if (p.severity === 'refused') reasons.push({ source: 'loader', message: p.message });
      else if (p.severity === 'undecided') unknown.push(p.message);
      else unknown.push(`not planned by corematrix: ${p.message}`);
    }
    const features = programFeatures({
      obj,
      program: prog,
      planned: plannedProg,
      plan: planned.plan,
      problems: planned.problems,
      kernel: input.kernel,
      kconfig,
    });
    for (const f of features) {
      if (f.status === 'missing') {
        // The loader's own refusals (attach targets, externs) are already reasons.
        const detail = f.detail ?? `${f.name} missing`;
        if (!reasons.some((r) => r.message === detail)) reasons.push({ source: 'feature', message: detail });
      } else if (f.status === 'unknown') unknown.push(f.detail ?? `${f.name}: unknown statically`);
    }
    if (features.some((f) => f.kind === 'helper' && f.status === 'ok'))
      unknown.push(HELPER_PROG_TYPE_UNKNOWN);

    let relocations: RelocationClass[] | undefined;
    let poisoned = 0;
    if (plannedProg !== undefined) {
      const fns = functionsOf(obj, plannedProg);
      const mineRecords = records.filter((r) => fns.has(r.function));
      poisoned = mineRecords.filter((r) => r.result === 'poisoned').length;
      const g = guardResult(
        classifyRelocations({
          program: plannedProg,
          records,
          ...(planned.plan === undefined ? {} : { readOnlyValues: readOnlyValuesOf(planned.plan) }),
          ...(obj.btf === undefined ? {} : { btf: obj.btf }),
        }),
        (i) => obj.externs[i]?.name,
      );
      relocations = g.relocations.filter((c) => fns.has(c.record.function));
      for (const c of relocations) {
        if (c.status === 'needs-guard') {
          reasons.push({
            source: 'guard',
            message: `CO-RE relocation ${c.record.access} (${c.record.kind}, ${c.record.function} insn ${c.record.insn}) failed on a reachable path${c.fix === undefined ? '' : `; fix: ${c.fix}`}`,
          });
        } else if (c.status === 'error') {
          reasons.push({
            source: 'guard',
            message: `CO-RE relocation ${c.record.access}: ${c.record.message ?? 'libbpf refuses it'}`,
          });
        }
      }
      for (const k of g.kfuncPoison) reasons.push({ source: 'guard', message: k });
    } else if (mine.length === 0 && objectProblems.length === 0 && reasons.length === 0) {
      reasons.push({ source: 'loader', message: 'not planned' });
    }
    const v: ProgramStatic = {
      object: input.name,
      program: prog.name,
      section: prog.section,
      kernel: input.kernelName,
      verdict: reasons.length === 0 ? 'loads' : 'rejected',
      reasons,
      unknown: [...new Set(unknown)],
      features,
      poisoned,
    };
    if (relocations !== undefined) v.relocations = relocations;
    out.push(v);
  }
  return out;
}
