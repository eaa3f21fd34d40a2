/**
 * buildReport: a pure mapping from what the stages produce (static verdicts, VM cells, CO-RE
 * records, resolved kernels, objects) into report.json (schema.ts). No I/O, no clock unless the
 * caller leaves `generatedAt` out.
 *
 * A cell's status, first match wins (docs/report.md):
 *   1. `error`       libbpf refuses the object on this kernel (a CO-RE relocation libbpf errors on,
 *                    an object the VM tier could not even plan, or an error the caller gives);
 *   2. `infra_error` the VM tier ran and faulted (its programs' truth is unknown: never a regression);
 *   3. `failing`     a program fails for a reason other than an unguarded CO-RE access;
 *   4. `needs-guard` a program fails, and every failing program fails only because of CO-RE
 *                    relocations that fail on a reachable path (classified needs-guard, each with a
 *                    fix): the object is one guard away from loading here;
 *   5. `ok`          every program loads.
 * A program "fails" when the VM rejected or refused it, or, when the VM did not give a verdict,
 * when the static tier predicted it rejected.
 */

import type { ProgramStatic, RelocationClass } from '../analysis/verdict.js';
import type { RelocationRecord } from '../core/relocate.js';
import type { ResolvedKernel } from '../matrix/kernels.js';
import type { CellResult, ProgramVerdict } from '../vm/cell.js';
import {
  REPORT_SCHEMA_VERSION,
  type Report,
  type ReportCell,
  type ReportCellStatus,
  type ReportKernel,
  type ReportObject,
  type ReportProgram,
  type ReportRelocation,
} from './schema.js';

/** One cell's inputs: whatever tiers ran for this kernel × object. */
export interface CellInput {
  kernel: string;
  object: string;
  /** staticVerdicts() of this object on this kernel. */
  static?: ProgramStatic[];
  /** loadOnKernel() of a set of objects on this kernel (its programs of other objects are ignored). */
  vm?: CellResult;
  /**
   * The object's CO-RE records on this kernel, when no static verdict classified them: each goes
   * to the program whose entry function holds it, classified from its result and the VM's verdict.
   */
  records?: RelocationRecord[];
  /** libbpf refuses the object (the caller knows why). */
  error?: string;
  staticMs?: number;
}

export interface BuildInput {
  corematrixVersion: string;
  /** ISO time; now by default. */
  generatedAt?: string;
  tiers: ('static' | 'vm')[];
  matrix?: string;
  shard?: { index: number; count: number };
  durationMs: number;
  kernels: ReportKernel[];
  objects: ReportObject[];
  cells: CellInput[];
}

/** A resolved kernel in the report's terms (arch: the matrix's; x86_64 unless said). */
export function reportKernel(
  k: ResolvedKernel,
  extra: { arch?: string; btfSha256?: string } = {},
): ReportKernel {
  const out: ReportKernel = { name: k.name, source: k.source, arch: extra.arch ?? 'x86_64' };
  if (k.release !== undefined) out.release = k.release;
  if (k.package !== undefined) out.package = k.package;
  if (k.version !== undefined) out.version = k.version;
  if (extra.btfSha256 !== undefined) out.btfSha256 = extra.btfSha256;
  return out;
}

/** A relocation record and its classification in the report's terms. */
export function reportRelocation(
  r: RelocationRecord,
  classification: ReportRelocation['classification'],
  fix?: string,
): ReportRelocation {
  const out: ReportRelocation = {
    section: r.section,
    index: r.index,
    function: r.function,
    insn: r.insn,
    kind: r.kind,
    access: r.access,
    spec: r.spec,
    result: r.result,
    classification,
  };
  if (r.old !== undefined) out.old = r.old.toString();
  if (r.new !== undefined) out.new = r.new.toString();
  if (r.message !== undefined) out.message = r.message;
  if (r.localSpec !== undefined) out.localSpec = r.localSpec;
  if (r.targetSpec !== undefined) out.targetSpec = r.targetSpec;
  if (fix !== undefined) out.fix = fix;
  return out;
}

function fromClass(c: RelocationClass): ReportRelocation {
  return reportRelocation(c.record, c.status, c.fix);
}

/** Without the guard analysis: patched → resolved, error → error, poisoned → guarded if the VM loaded it. */
function fromRecord(r: RelocationRecord, vm: ProgramVerdict | undefined): ReportRelocation {
  if (r.result === 'patched') return reportRelocation(r, 'resolved');
  if (r.result === 'error') return reportRelocation(r, 'error');
  return reportRelocation(r, vm?.verdict === 'loaded' ? 'guarded' : 'needs-guard');
}

const CORE_POISON_CAUSE = /failed (a )?CO-RE relocation/;

function vmTier(v: ProgramVerdict): NonNullable<ReportProgram['vm']> {
  const out: NonNullable<ReportProgram['vm']> = { verdict: v.verdict };
  if (v.errno !== undefined) out.errno = v.errno;
  if (v.errnoName !== undefined) out.errnoName = v.errnoName;
  if (v.logHead !== '') out.logExcerpt = v.logHead;
  if (v.cause !== '') out.cause = v.cause;
  if (v.insnsProcessed !== undefined) out.insnsProcessed = v.insnsProcessed;
  return out;
}

/** Whether the program loads: the VM's verdict when it gave one, else the static prediction. */
export function programOutcome(p: ReportProgram): 'loads' | 'fails' | 'unknown' {
  if (p.vm !== undefined && p.vm.verdict !== 'infra_error')
    return p.vm.verdict === 'loaded' ? 'loads' : 'fails';
  if (p.static !== undefined) return p.static.verdict === 'loads' ? 'loads' : 'fails';
  return 'unknown';
}

/** The program fails only because of CO-RE relocations that need a guard. */
export function failsOnlyForGuards(p: ReportProgram): boolean {
  if (!p.relocations.some((r) => r.classification === 'needs-guard')) return false;
  if (p.relocations.some((r) => r.classification === 'error')) return false;
  if (p.vm !== undefined && p.vm.verdict !== 'infra_error') {
    return p.vm.verdict === 'rejected' && CORE_POISON_CAUSE.test(p.vm.cause ?? '');
  }
  return (
    p.static?.reasons.every((r) => r.source === 'guard' && r.message.startsWith('CO-RE relocation ')) === true
  );
}

function disagreement(p: ReportProgram): string | undefined {
  const s = p.static;
  const v = p.vm;
  if (s === undefined || v === undefined || v.verdict === 'infra_error') return undefined;
  const vmLoads = v.verdict === 'loaded';
  if ((s.verdict === 'loads') === vmLoads) return undefined;
  if (vmLoads) return `static predicted rejected (${s.reasons[0]?.message ?? 'no reason'}), the VM loaded it`;
  return `static predicted it loads, the VM ${v.verdict === 'rejected' ? 'rejected' : 'refused'} it: ${v.cause ?? 'no cause'}${s.unknown.length === 0 ? '' : ` (beyond the static tier: ${s.unknown.join('; ')})`}`;
}

function buildCell(c: CellInput, durationBoot: { bootMs?: number; loadMs?: number }): ReportCell {
  const programs = new Map<string, ReportProgram>();
  const get = (name: string, section: string) => {
    let p = programs.get(name);
    if (p === undefined) {
      p = { name, section, relocations: [] };
      programs.set(name, p);
    }
    return p;
  };
  for (const s of c.static ?? []) {
    const p = get(s.program, s.section);
    p.static = {
      verdict: s.verdict,
      reasons: s.reasons.map((r) => ({ source: r.source, message: r.message })),
      unknown: [...s.unknown],
    };
    if (s.relocations !== undefined) p.relocations = s.relocations.map(fromClass);
  }
  const vmPrograms = (c.vm?.programs ?? []).filter((v) => v.object === c.object);
  const objectRefusals: string[] = [];
  for (const v of vmPrograms) {
    if (v.program === '*') {
      objectRefusals.push(v.cause);
      continue;
    }
    get(v.program, v.section ?? programs.get(v.program)?.section ?? '').vm = vmTier(v);
  }
  if (c.records !== undefined) {
    for (const p of programs.values()) {
      // Classified by the static tier already; else the records of the program's entry function.
      if (c.static?.some((s) => s.program === p.name && s.relocations !== undefined)) continue;
      const vm = vmPrograms.find((v) => v.program === p.name);
      p.relocations = c.records.filter((r) => r.function === p.name).map((r) => fromRecord(r, vm));
    }
  }
  for (const p of programs.values()) {
    const d = disagreement(p);
    if (d !== undefined) p.disagreement = d;
  }

  const list = [...programs.values()];
  const errors = [
    ...(c.error === undefined ? [] : [c.error]),
    ...objectRefusals,
    ...list.flatMap((p) =>
      p.relocations
        .filter((r) => r.classification === 'error')
        .map((r) => `CO-RE relocation ${r.access} (${r.kind}): ${r.message ?? 'libbpf refuses it'}`),
    ),
  ];
  const error = errors[0];
  let status: ReportCellStatus;
  if (error !== undefined) status = 'error';
  else if (c.vm?.status === 'infra_error') status = 'infra_error';
  else {
    const failing = list.filter((p) => programOutcome(p) === 'fails');
    if (failing.length === 0) status = 'ok';
    else status = failing.every(failsOnlyForGuards) ? 'needs-guard' : 'failing';
  }
  const cell: ReportCell = { kernel: c.kernel, object: c.object, status, programs: list };
  if (error !== undefined) cell.error = error;
  if (c.vm?.infra !== undefined)
    cell.infra = { reason: c.vm.infra.reason, consoleTail: c.vm.infra.consoleTail };
  const timings: NonNullable<ReportCell['timings']> = {};
  if (c.staticMs !== undefined) timings.staticMs = c.staticMs;
  if (durationBoot.bootMs !== undefined) timings.bootMs = durationBoot.bootMs;
  if (durationBoot.loadMs !== undefined) timings.loadMs = durationBoot.loadMs;
  if (Object.keys(timings).length > 0) cell.timings = timings;
  return cell;
}

/** Cells in the report's order: by kernel, then object, as the report lists them. */
export function sortCells<T extends { kernel: string; object: string }>(
  cells: readonly T[],
  kernels: readonly { name: string }[],
  objects: readonly { name: string }[],
): T[] {
  const ki = new Map(kernels.map((k, i) => [k.name, i]));
  const oi = new Map(objects.map((o, i) => [o.name, i]));
  const rank = (m: Map<string, number>, n: string) => m.get(n) ?? Number.MAX_SAFE_INTEGER;
  return [...cells].sort(
    (a, b) =>
      rank(ki, a.kernel) - rank(ki, b.kernel) ||
      rank(oi, a.object) - rank(oi, b.object) ||
      (a.kernel < b.kernel ? -1 : a.kernel > b.kernel ? 1 : 0) ||
      (a.object < b.object ? -1 : a.object > b.object ? 1 : 0),
  );
}

export function buildReport(input: BuildInput): Report {
  const cells = input.cells.map((c) =>
    buildCell(c, {
      ...(c.vm?.phases.boot === undefined ? {} : { bootMs: c.vm.phases.boot }),
      ...(c.vm?.phases.load === undefined ? {} : { loadMs: c.vm.phases.load }),
    }),
  );
  const run: Report['run'] = { tiers: [...input.tiers], durationMs: input.durationMs };
  if (input.matrix !== undefined) run.matrix = input.matrix;
  if (input.shard !== undefined) run.shard = { ...input.shard };
  return {
    schemaVersion: REPORT_SCHEMA_VERSION,
    generatedAt: input.generatedAt ?? new Date().toISOString(),
    corematrix: { version: input.corematrixVersion },
    run,
    kernels: input.kernels.map((k) => ({ ...k })),
    objects: input.objects.map((o) => ({ ...o })),
    cells: sortCells(cells, input.kernels, input.objects),
  };
}
