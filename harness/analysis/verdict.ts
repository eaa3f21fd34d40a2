import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Btf } from '../btf/btf.js';
import type { RelocationRecord } from '../core/relocate.js';
import type { RawKconfig } from '../loader/kconfig.js';
import { rawKconfig } from '../loader/kconfig.js';
import { type ObjectPlan, type PlanKernel, planObject } from '../loader/loader.js';
import type { BpfObject } from '../object/object.js';
import type { PlannedObject, PlannedProgram } from '../vm/plan.js';
import { type Feature, programFeatures } from './features.js';

/**
 * The static verdict: per program × kernel, without booting, whether the program loads, and why
 * not — from the loader's plan (what libbpf refuses before PROG_LOAD), the features the program
 * needs against the kernel's BTF and config (features.ts), and the guard analysis (guards.ts: CO-RE
 * relocations that failed on a reachable path, reachable calls to missing weak kfuncs).
 *
 * What the static tier cannot see is listed, per program, as `unknown`: the verifier itself
 * (complexity limits, bounds, the program's own logic), helpers a program type may not call,
 * typeless ksyms, kprobe targets not in BTF, and the guard analysis itself when it is not there.
 */

export type StaticVerdict = 'loads' | 'rejected';

export interface Reason {
  /** Where the reason comes from. */
  source: 'object' | 'loader' | 'feature' | 'guard';
  message: string;
}

export interface RelocationClass {
  record: RelocationRecord;
  status: 'resolved' | 'guarded' | 'needs-guard' | 'error';
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
export const GUARDS_UNAVAILABLE =
  'guard analysis unavailable: whether poisoned CO-RE relocations are reachable';

// ---------------------------------------------------------------------------------------------
// The guard analysis, when it is there (harness/analysis/guards.ts).

type Classify = (input: {
  program: PlannedProgram;
  records: readonly RelocationRecord[];
  readOnlyValues?: ReadonlyMap<number, Uint8Array>;
  btf?: Btf;
}) => unknown;

const BPF_F_RDONLY_PROG = 0x80;

/** The values of the frozen read-only maps of a planned object (.rodata, .kconfig), by map index. */
export function readOnlyValues(obj: PlannedObject): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  for (const [i, m] of obj.maps.entries()) {
    if (m.freeze && (m.flags & BPF_F_RDONLY_PROG) !== 0 && m.initialValue !== undefined)
      out.set(i, m.initialValue);
  }
  return out;
}

let guards: Promise<Classify | undefined> | undefined;

/** guards.ts' classifyRelocations, or undefined when that module is not (yet) there. */
export function loadGuards(): Promise<Classify | undefined> {
  guards ??= (async () => {
    const here = path.dirname(fileURLToPath(import.meta.url));
    const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
    try {
      const mod = (await import(pathToFileURL(path.join(here, `guards${ext}`)).href)) as {
        classifyRelocations?: Classify;
      };
      return typeof mod.classifyRelocations === 'function' ? mod.classifyRelocations : undefined;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ERR_MODULE_NOT_FOUND' || code === 'ENOENT') return undefined;
      throw e;
    }
  })();
  return guards;
}

/** Reads the guard module's answer, whatever its exact shape (an array or { relocations, kfuncs }). */
export function readGuardResult(
  raw: unknown,
  records: readonly RelocationRecord[],
  externName: (index: number) => string | undefined = () => undefined,
): GuardResult {
  const r = raw as Record<string, unknown> | unknown[] | undefined;
  const list = (
    Array.isArray(r) ? r : ((r?.relocations ?? r?.records ?? r?.classes ?? []) as unknown[])
  ) as Record<string, unknown>[];
  const relocations: RelocationClass[] = [];
  list.forEach((c, i) => {
    const status = (c.status ?? c.class ?? c.classification) as RelocationClass['status'];
    const record = (c.record as RelocationRecord | undefined) ?? records[i];
    if (record === undefined || typeof status !== 'string') return;
    const out: RelocationClass = { record, status };
    const fix = c.fix ?? c.suggestion;
    if (typeof fix === 'string') out.fix = fix;
    const insn = c.insn ?? c.finalInsn;
    if (typeof insn === 'number') out.insn = insn;
    relocations.push(out);
  });
  const kf = (
    Array.isArray(r)
      ? []
      : Array.isArray(r?.reachablePoison)
        ? (r.reachablePoison as Record<string, unknown>[])
            .filter((c) => c.kind === 'kfunc')
            .map((c) => ({
              name: typeof c.externIndex === 'number' ? externName(c.externIndex) : undefined,
              insn: c.insn,
            }))
        : (r?.kfuncPoison ?? r?.kfuncPoisonCalls ?? r?.kfuncs ?? [])
  ) as unknown[];
  const kfuncPoison = kf.map((k) => {
    if (typeof k === 'string') return k;
    const o = k as Record<string, unknown>;
    const name = o.name ?? o.kfunc ?? o.extern;
    const insn = o.insn;
    return `reachable call to weak kfunc ${typeof name === 'string' ? name : '?'}, which the kernel lacks${typeof insn === 'number' ? ` (insn ${insn})` : ''}`;
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
  /** The guard analysis (loadGuards()); undefined: that part of the verdict is unknown. */
  classify?: Classify | undefined;
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
      const weakKfuncMissing = features.some((f) => f.kind === 'kfunc' && f.status === 'optional');
      if (input.classify !== undefined) {
        const ro = planned.plan === undefined ? undefined : readOnlyValues(planned.plan);
        let g: GuardResult | undefined;
        try {
          g = readGuardResult(
            input.classify({
              program: plannedProg,
              records,
              ...(ro === undefined ? {} : { readOnlyValues: ro }),
              ...(obj.btf === undefined ? {} : { btf: obj.btf }),
            }),
            mineRecords,
            (i) => obj.externs[i]?.name,
          );
        } catch (e) {
          unknown.push(`guard analysis failed: ${e instanceof Error ? e.message : String(e)}`);
        }
        if (g !== undefined) relocations = g.relocations;
        for (const c of g?.relocations ?? []) {
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
        for (const k of g?.kfuncPoison ?? []) reasons.push({ source: 'guard', message: k });
      } else if (poisoned > 0 || weakKfuncMissing) {
        unknown.push(GUARDS_UNAVAILABLE);
      }
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
