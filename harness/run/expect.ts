/**
 * Evaluating expectations (harness/matrix/expect.ts states them) against a report (pure). Each
 * expectation is about some objects (those its case entry matched) on the kernels its selector
 * picks; only the cells the report holds are checked (a filtered or sharded run checks its part).
 *
 * - `loads` / `rejected`: every program (or those of `programs:`) loads / fails, by
 *   programOutcome: the VM's verdict when the VM gave one, else the static prediction. An object
 *   libbpf refuses (cell status `error`) fails everywhere.
 * - `status`: the cell's status is the one named.
 * - `field`: in every program (or those of `programs:`) that relocates the field, the worst
 *   classification of its relocations of that field (resolved < guarded < needs-guard < error)
 *   is one of `is:` and none of `not:`. A field no checked program relocates is a failure: the
 *   expectation would hold for nothing.
 *
 * Cells with an infra error say nothing about the programs: they are neither met nor unmet, and an
 * expectation with nothing left to check is `unknown` (the runner skips its task, saying why).
 */

import { essentialName } from '../core/names.js';
import {
  CLASSIFICATIONS,
  type Classification,
  type Expectation,
  type KernelSelector,
  releaseMatches,
  versionNumbers,
} from '../matrix/expect.js';
import { programOutcome } from '../report/build.js';
import type { Report, ReportCell, ReportKernel, ReportProgram } from '../report/schema.js';

export interface ExpectationResult {
  state: 'met' | 'unmet' | 'unknown';
  /** What broke it, one line each: kernel, object, program and why. */
  failures: string[];
  /** Cells checked. */
  checked: number;
  /** The kernels of the cells checked, in the report's order. */
  kernels: string[];
  /** Why cells could not be checked (infra errors, kernels without a version). */
  skipped: string[];
}

/** The version a release comparison is made against: Debian's upstream version, else the release. */
export function kernelVersion(k: ReportKernel): number[] | undefined {
  return (k.version === undefined ? undefined : versionNumbers(k.version)) ?? versionNumbers(k.release ?? '');
}

export function selectsKernel(s: KernelSelector, k: ReportKernel): boolean | 'unknown' {
  switch (s.kind) {
    case 'all':
      return true;
    case 'names':
      return s.names.includes(k.name);
    case 'release': {
      const v = kernelVersion(k);
      return v === undefined ? 'unknown' : releaseMatches(s.clauses, v);
    }
  }
}

const rank = (c: Classification) => CLASSIFICATIONS.indexOf(c);

/**
 * An access with its type's flavor dropped, as libbpf matches types by their essential name:
 * `struct request___pre517.rq_disk` → `struct request.rq_disk`.
 */
export function essentialAccess(access: string): string {
  const m = /^(\S+ )([^.\s]+)(.*)$/s.exec(access);
  if (m === null) return access;
  return `${m[1]}${essentialName(m[2]!)}${m[3]}`;
}

/** Whether a relocation's access is the field an expectation names (flavors or not). */
export function sameField(access: string, field: string): boolean {
  return access === field || essentialAccess(access) === field;
}

function why(p: ReportProgram): string {
  if (p.vm !== undefined && p.vm.verdict !== 'infra_error')
    return `the VM ${p.vm.verdict === 'loaded' ? 'loaded it' : `said ${p.vm.verdict}${p.vm.errnoName === undefined ? '' : ` (${p.vm.errnoName})`}: ${p.vm.cause ?? 'no cause given'}`}`;
  if (p.static !== undefined)
    return p.static.verdict === 'loads'
      ? 'the static tier predicts it loads'
      : `the static tier predicts rejected: ${p.static.reasons[0]?.message ?? 'no reason given'}`;
  return 'no verdict';
}

/** The programs of a cell an expectation is about; names it asks for but the cell lacks are failures. */
function programsOf(cell: ReportCell, e: Expectation, failures: string[]): ReportProgram[] {
  if (e.programs === undefined) return cell.programs;
  const out: ReportProgram[] = [];
  for (const name of e.programs) {
    const p = cell.programs.find((q) => q.name === name);
    if (p === undefined) failures.push(`${cell.kernel}: ${cell.object} has no program ${name}`);
    else out.push(p);
  }
  return out;
}

/** Checks one expectation about `objects` (report object names) against the report. */
export function evaluateExpectation(
  e: Expectation,
  objects: readonly string[],
  report: Report,
): ExpectationResult {
  const failures: string[] = [];
  const skipped: string[] = [];
  let checked = 0;
  const checkedKernels = new Set<string>();
  const kernels = new Map(report.kernels.map((k) => [k.name, k]));
  let fieldSeen = false;
  for (const cell of report.cells) {
    if (!objects.includes(cell.object)) continue;
    const kernel = kernels.get(cell.kernel);
    if (kernel === undefined) continue;
    const selected = selectsKernel(e.kernels, kernel);
    if (selected === 'unknown') {
      skipped.push(`${cell.kernel}: its version is unknown`);
      continue;
    }
    if (!selected) continue;
    if (cell.status === 'infra_error' && e.kind !== 'field') {
      skipped.push(`${cell.kernel}: ${cell.object}: infra error (${cell.infra?.reason ?? 'no reason'})`);
      continue;
    }
    checked++;
    checkedKernels.add(cell.kernel);
    const at = `${cell.kernel}: ${cell.object}`;
    switch (e.kind) {
      case 'status':
        if (cell.status !== e.status)
          failures.push(
            `${at} is ${cell.status}, not ${e.status}${cell.error === undefined ? '' : ` (${cell.error})`}`,
          );
        break;
      case 'loads':
      case 'rejected': {
        if (cell.status === 'error') {
          if (e.kind === 'loads') failures.push(`${at}: libbpf refuses the object: ${cell.error ?? 'error'}`);
          break;
        }
        for (const p of programsOf(cell, e, failures)) {
          const outcome = programOutcome(p);
          if (outcome === 'unknown') continue;
          if ((outcome === 'loads') !== (e.kind === 'loads'))
            failures.push(`${at} ${p.name} ${outcome === 'loads' ? 'loads' : 'is rejected'}: ${why(p)}`);
        }
        break;
      }
      case 'field': {
        for (const p of programsOf(cell, e, failures)) {
          const mine = p.relocations.filter((r) => sameField(r.access, e.field));
          if (mine.length === 0) continue;
          fieldSeen = true;
          const worst = mine.reduce((a, b) => (rank(b.classification) > rank(a.classification) ? b : a));
          const c = worst.classification;
          const bad = (e.is !== undefined && !e.is.includes(c)) || e.not?.includes(c) === true;
          if (bad) {
            failures.push(
              `${at} ${p.name}: ${e.field} is ${c} (${worst.kind}, ${worst.function} insn ${worst.insn}${worst.fix === undefined ? '' : `; fix: ${worst.fix}`})`,
            );
          }
        }
        break;
      }
    }
  }
  if (e.kind === 'field' && checked > 0 && !fieldSeen) {
    failures.push(
      `no CO-RE relocation of ${e.field} in ${e.programs === undefined ? 'the programs' : e.programs.join(', ')} of ${objects.join(', ')}`,
    );
  }
  const state = failures.length > 0 ? 'unmet' : checked === 0 ? 'unknown' : 'met';
  return { state, failures, checked, kernels: [...checkedKernels], skipped };
}
