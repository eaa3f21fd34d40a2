/**
 * diffReports(old, new): what changed between a baseline report and this one, per program.
 *
 * - regression: the program loaded (VM: loaded; else static: loads) and now fails (VM rejected or
 *   refused it; else static predicts rejected), or its object is now refused by libbpf (`error`);
 * - fix: the reverse;
 * - new needs-guard fields: (kernel, object, access) classified needs-guard now and not before;
 * - kernels (and objects) added and removed;
 * - newly failing expectations: failed now, and not before (passed, skipped, or not declared).
 *
 * An infra error has no verdict, so it is never a regression nor a fix: neither side counts.
 */

import { programOutcome } from './build.js';
import type { Report, ReportCell, ReportCellStatus, ReportExpectation } from './schema.js';

export interface ProgramChange {
  kernel: string;
  object: string;
  /** `(object)` when the change is the whole object's (libbpf refuses it, or no longer does). */
  program: string;
  was: ReportCellStatus | 'loads';
  now: ReportCellStatus | 'loads';
  /** Why it fails now (regressions) or why it failed before (fixes). */
  cause: string;
}

export interface NeedsGuardField {
  kernel: string;
  object: string;
  program: string;
  access: string;
  fix?: string;
}

export interface ReportDiff {
  regressions: ProgramChange[];
  fixes: ProgramChange[];
  newNeedsGuard: NeedsGuardField[];
  kernelsAdded: string[];
  kernelsRemoved: string[];
  objectsAdded: string[];
  objectsRemoved: string[];
  /** Expectations that fail now and did not before, matched by where they are declared and name. */
  newlyFailingExpectations: ReportExpectation[];
}

const key = (...parts: string[]) => parts.join('\u0000');

type Outcome = { state: 'loads' | 'fails' | 'unknown'; status: ReportCellStatus | 'loads'; cause: string };

/** Each program's outcome in a cell, plus `(object)` for the object as a whole. */
function outcomes(cell: ReportCell): Map<string, Outcome> {
  const out = new Map<string, Outcome>();
  const objectState = cell.status === 'error' ? 'fails' : cell.status === 'infra_error' ? 'unknown' : 'loads';
  out.set('(object)', {
    state: objectState,
    status: objectState === 'loads' ? 'loads' : cell.status,
    cause: cell.error ?? '',
  });
  if (cell.status === 'error') return out;
  for (const p of cell.programs) {
    const state = cell.status === 'infra_error' ? 'unknown' : programOutcome(p);
    const cause =
      p.vm !== undefined && p.vm.verdict !== 'infra_error' && p.vm.verdict !== 'loaded'
        ? (p.vm.cause ?? p.vm.verdict)
        : (p.static?.reasons[0]?.message ?? '');
    out.set(p.name, { state, status: state === 'loads' ? 'loads' : cell.status, cause });
  }
  return out;
}

function needsGuard(report: Report): Map<string, NeedsGuardField> {
  const out = new Map<string, NeedsGuardField>();
  for (const c of report.cells) {
    for (const p of c.programs) {
      for (const r of p.relocations) {
        if (r.classification !== 'needs-guard') continue;
        const k = key(c.kernel, c.object, r.access);
        if (out.has(k)) continue;
        const f: NeedsGuardField = { kernel: c.kernel, object: c.object, program: p.name, access: r.access };
        if (r.fix !== undefined) f.fix = r.fix;
        out.set(k, f);
      }
    }
  }
  return out;
}

function added(a: readonly { name: string }[], b: readonly { name: string }[]): string[] {
  const had = new Set(a.map((x) => x.name));
  return b.filter((x) => !had.has(x.name)).map((x) => x.name);
}

function newlyFailing(old: Report, now: Report): ReportExpectation[] {
  const failedBefore = new Set(
    (old.expectations ?? []).filter((x) => x.status === 'failed').map((x) => key(x.source, x.name)),
  );
  return (now.expectations ?? []).filter(
    (x) => x.status === 'failed' && !failedBefore.has(key(x.source, x.name)),
  );
}

export function diffReports(old: Report, now: Report): ReportDiff {
  const before = new Map(old.cells.map((c) => [key(c.kernel, c.object), c]));
  const regressions: ProgramChange[] = [];
  const fixes: ProgramChange[] = [];
  for (const cell of now.cells) {
    const was = before.get(key(cell.kernel, cell.object));
    if (was === undefined) continue;
    const a = outcomes(was);
    const b = outcomes(cell);
    for (const [program, n] of b) {
      const o = a.get(program);
      if (o === undefined || o.state === 'unknown' || n.state === 'unknown') continue;
      const change = { kernel: cell.kernel, object: cell.object, program, was: o.status, now: n.status };
      if (o.state === 'loads' && n.state === 'fails') regressions.push({ ...change, cause: n.cause });
      else if (o.state === 'fails' && n.state === 'loads') fixes.push({ ...change, cause: o.cause });
    }
  }
  const oldGuards = needsGuard(old);
  const newNeedsGuard = [...needsGuard(now)].filter(([k]) => !oldGuards.has(k)).map(([, f]) => f);
  return {
    regressions,
    fixes,
    newNeedsGuard,
    kernelsAdded: added(old.kernels, now.kernels),
    kernelsRemoved: added(now.kernels, old.kernels),
    objectsAdded: added(old.objects, now.objects),
    objectsRemoved: added(now.objects, old.objects),
    newlyFailingExpectations: newlyFailing(old, now),
  };
}
