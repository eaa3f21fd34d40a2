/**
 * Expectations: what a case's programs are expected to do on which kernels, as matrix.yaml's
 * `expect:` and a `*.case.ts` file declare them (docs/matrix.md, docs/run.md). This file is the
 * language only — parsing and checking what was written, no evaluation (harness/run/expect.ts
 * evaluates them against a report) — so the matrix schema and the case files share one grammar.
 *
 * ```yaml
 * expect:
 *   - programs: [task_state_new_only]
 *     loads: ">= 5.14"          # kernels: all, a kernel name, a list of names, or release comparisons
 *     rejected: "< 5.14"
 *   - status: needs-guard        # the cell's status (report.json) on the kernels of `on:`
 *     on: all
 *   - field: struct request.rq_disk
 *     programs: [rq_disk_portable]
 *     not: needs-guard           # or is: guarded / is: [resolved, guarded]
 * ```
 */

/** Release comparison operators; `=`/`==` compare the components written ("= 6.1" holds for 6.1.176). */
const OPS = ['>=', '<=', '==', '!=', '>', '<', '='] as const;
export type ReleaseOp = (typeof OPS)[number];

export interface ReleaseClause {
  op: ReleaseOp;
  /** The version written, as numbers: "5.14" → [5, 14]. */
  version: number[];
}

/** Which kernels an expectation is about. */
export type KernelSelector =
  | { kind: 'all' }
  | { kind: 'names'; names: string[] }
  /** Every clause must hold ("">= 5.10, < 6.1"). */
  | { kind: 'release'; clauses: ReleaseClause[] };

/** A relocation's classification in report.json, in the order of how bad it is. */
export const CLASSIFICATIONS = ['resolved', 'guarded', 'needs-guard', 'error'] as const;
export type Classification = (typeof CLASSIFICATIONS)[number];

/** Cell statuses an expectation may name (infra_error is a fault of the run, never an expectation). */
export const EXPECTED_STATUSES = ['ok', 'needs-guard', 'failing', 'error'] as const;
export type ExpectedStatus = (typeof EXPECTED_STATUSES)[number];

interface ExpectationBase {
  kernels: KernelSelector;
  /** Only these programs (by function name); default every program of the object. */
  programs?: string[];
  /** How it reads, for the task's name: `task_state_new_only loads on >= 5.14`. */
  text: string;
}

export type Expectation =
  | (ExpectationBase & { kind: 'loads' | 'rejected' })
  | (ExpectationBase & { kind: 'status'; status: ExpectedStatus })
  | (ExpectationBase & {
      kind: 'field';
      /** The access in C terms, as report.json's relocations name it: `struct request.rq_disk`. */
      field: string;
      is?: Classification[];
      not?: Classification[];
    });

/** The keys of one `expect:` entry. */
export const EXPECT_KEYS = [
  'name',
  'programs',
  'loads',
  'rejected',
  'status',
  'on',
  'field',
  'is',
  'not',
] as const;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;
const CLAUSE = /^(>=|<=|==|!=|>|<|=)\s*(\d+(?:\.\d+){0,2})$/;

/** A problem in what was written: where (keys below the entry) and what. */
export interface ExpectProblem {
  path: (string | number)[];
  message: string;
}

/** Parses a kernel selector, or says what is wrong with it. */
export function parseKernelSelector(value: unknown): KernelSelector | string {
  const expected =
    'expected all, a kernel name, a list of kernel names, or release comparisons such as ">= 5.14" or ">= 5.10, < 6.1"';
  if (Array.isArray(value)) {
    if (value.length === 0) return `${expected}, got an empty list`;
    const bad = value.find((v) => typeof v !== 'string' || !NAME.test(v));
    if (bad !== undefined) return `${expected}; ${JSON.stringify(bad)} in the list is not a kernel name`;
    return { kind: 'names', names: [...new Set(value as string[])] };
  }
  if (typeof value !== 'string') {
    return `${expected}, got ${value === null || value === undefined ? 'nothing' : typeof value === 'number' ? `the number ${value} (quote a release comparison: ">= ${value}")` : typeof value}`;
  }
  const text = value.trim();
  if (text === 'all') return { kind: 'all' };
  if (/^[<>=!]/.test(text)) {
    const clauses: ReleaseClause[] = [];
    for (const part of text.split(/\s*,\s*|\s+(?=[<>=!])/)) {
      const m = CLAUSE.exec(part.trim());
      if (m === null)
        return `${JSON.stringify(value)}: ${JSON.stringify(part)} is not a release comparison (e.g. ">= 5.14")`;
      clauses.push({ op: m[1] as ReleaseOp, version: m[2]!.split('.').map(Number) });
    }
    return { kind: 'release', clauses };
  }
  if (NAME.test(text)) return { kind: 'names', names: [text] };
  return `${expected}, got ${JSON.stringify(value)}`;
}

export function describeSelector(s: KernelSelector): string {
  switch (s.kind) {
    case 'all':
      return 'all kernels';
    case 'names':
      return s.names.join(', ');
    case 'release':
      return s.clauses.map((c) => `${c.op} ${c.version.join('.')}`).join(', ');
  }
}

/** The numbers a release or version starts with: "6.12.117+deb13-cloud-amd64" → [6, 12, 117]. */
export function versionNumbers(text: string): number[] | undefined {
  const m = /^(\d+(?:\.\d+)*)/.exec(text.trim());
  return m === null ? undefined : m[1]!.split('.').map(Number);
}

/** Whether a kernel of this version is selected; compared on the components the clause wrote. */
export function releaseMatches(clauses: readonly ReleaseClause[], version: readonly number[]): boolean {
  return clauses.every((c) => {
    let cmp = 0;
    for (let i = 0; i < c.version.length && cmp === 0; i++) cmp = (version[i] ?? 0) - c.version[i]!;
    switch (c.op) {
      case '>=':
        return cmp >= 0;
      case '>':
        return cmp > 0;
      case '<=':
        return cmp <= 0;
      case '<':
        return cmp < 0;
      case '!=':
        return cmp !== 0;
      default:
        return cmp === 0;
    }
  });
}

function oneOrMore<T extends string>(
  value: unknown,
  allowed: readonly T[],
  key: string,
): { values: T[] } | { problem: ExpectProblem } {
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0)
    return {
      problem: {
        path: [key],
        message: `${key}: expected ${allowed.join(', ')} or a list of them, got an empty list`,
      },
    };
  for (const v of list) {
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
      return {
        problem: {
          path: [key],
          message: `${key}: expected ${allowed.join(', ')} or a list of them, got ${JSON.stringify(v)}`,
        },
      };
    }
  }
  return { values: [...new Set(list as T[])] };
}

/**
 * One `expect:` entry as written → the expectations it states (one per assertion: `loads:` and
 * `rejected:` in one entry are two), or its problems. Unknown keys are the schema's to report.
 */
export function parseExpectEntry(
  raw: unknown,
): { expectations: Expectation[] } | { problems: ExpectProblem[] } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return {
      problems: [{ path: [], message: 'expected a mapping with loads:, rejected:, status: or field:' }],
    };
  }
  const e = raw as Record<string, unknown>;
  const problems: ExpectProblem[] = [];
  const selector = (key: string): KernelSelector | undefined => {
    if (e[key] === undefined) return undefined;
    const s = parseKernelSelector(e[key]);
    if (typeof s === 'string') {
      problems.push({ path: [key], message: `${key}: ${s}` });
      return undefined;
    }
    return s;
  };
  let programs: string[] | undefined;
  if (e.programs !== undefined) {
    if (
      !Array.isArray(e.programs) ||
      e.programs.length === 0 ||
      e.programs.some((p) => typeof p !== 'string' || p === '')
    ) {
      problems.push({ path: ['programs'], message: 'programs: expected a list of program (function) names' });
    } else programs = [...new Set(e.programs as string[])];
  }
  if (e.name !== undefined && (typeof e.name !== 'string' || e.name.trim() === '')) {
    problems.push({ path: ['name'], message: 'name: expected a non-empty string' });
  }
  const asserts = ['loads', 'rejected', 'status', 'field'].filter((k) => e[k] !== undefined);
  if (asserts.length === 0) {
    problems.push({ path: [], message: 'an expectation needs loads:, rejected:, status: or field:' });
  }
  if (e.status !== undefined && e.field !== undefined) {
    problems.push({
      path: ['field'],
      message: 'give status: or field: in one entry, not both (make two entries)',
    });
  }
  const loads = selector('loads');
  const rejected = selector('rejected');
  const on = selector('on');
  if (e.on !== undefined && e.status === undefined && e.field === undefined) {
    problems.push({
      path: ['on'],
      message: 'on: goes with status: or field: (loads: and rejected: name their kernels)',
    });
  }
  for (const key of ['is', 'not'] as const) {
    if (e[key] !== undefined && e.field === undefined)
      problems.push({
        path: [key],
        message: `${key}: goes with field: (e.g. field: struct request.rq_disk)`,
      });
  }
  let status: ExpectedStatus | undefined;
  if (e.status !== undefined) {
    const s = oneOrMore(e.status, EXPECTED_STATUSES, 'status');
    if ('problem' in s) problems.push(s.problem);
    else if (s.values.length > 1) problems.push({ path: ['status'], message: 'status: expected one status' });
    else status = s.values[0];
    if (programs !== undefined) {
      problems.push({
        path: ['programs'],
        message: 'programs: a status is about the whole cell; leave programs: out',
      });
    }
  }
  let field: string | undefined;
  let is: Classification[] | undefined;
  let not: Classification[] | undefined;
  if (e.field !== undefined) {
    if (
      typeof e.field !== 'string' ||
      !/^(struct|union|enum|typedef) \S+/.test(e.field.trim().replace(/\s+/g, ' '))
    ) {
      problems.push({
        path: ['field'],
        message: `field: expected an access as report.json names it, e.g. "struct request.rq_disk", got ${JSON.stringify(e.field)}`,
      });
    } else field = e.field.trim().replace(/\s+/g, ' ');
    for (const key of ['is', 'not'] as const) {
      if (e[key] === undefined) continue;
      const c = oneOrMore(e[key], CLASSIFICATIONS, key);
      if ('problem' in c) problems.push(c.problem);
      else if (key === 'is') is = c.values;
      else not = c.values;
    }
    if (e.is === undefined && e.not === undefined) {
      problems.push({ path: ['field'], message: `field: needs is: or not: (${CLASSIFICATIONS.join(', ')})` });
    }
  }
  if (problems.length > 0) return { problems };

  const who = programs === undefined ? '' : `${programs.join(', ')} `;
  const onText = (s: KernelSelector) =>
    s.kind === 'all' ? 'all kernels' : `${s.kind === 'names' ? '' : 'kernels '}${describeSelector(s)}`;
  const base = (kernels: KernelSelector, text: string) => ({
    kernels,
    text:
      typeof e.name === 'string' ? (asserts.length > 1 ? `${e.name.trim()}: ${text}` : e.name.trim()) : text,
    ...(programs === undefined ? {} : { programs }),
  });
  const out: Expectation[] = [];
  if (loads !== undefined)
    out.push({ kind: 'loads', ...base(loads, `${who || 'every program '}loads on ${onText(loads)}`) });
  if (rejected !== undefined)
    out.push({
      kind: 'rejected',
      ...base(rejected, `${who || 'every program '}rejected on ${onText(rejected)}`),
    });
  const where = on ?? { kind: 'all' as const };
  if (status !== undefined)
    out.push({ kind: 'status', status, ...base(where, `status ${status} on ${onText(where)}`) });
  if (field !== undefined) {
    const what = [
      ...(is === undefined ? [] : [`is ${is.join(' or ')}`]),
      ...(not === undefined ? [] : [`not ${not.join(' or ')}`]),
    ].join(' and ');
    out.push({
      kind: 'field',
      field,
      ...(is === undefined ? {} : { is }),
      ...(not === undefined ? {} : { not }),
      ...base(where, `${field} ${what}${who === '' ? '' : ` in ${who.trim()}`} on ${onText(where)}`),
    });
  }
  return { expectations: out };
}

/** The kernel names an expectation's selectors name (to check them against the matrix). */
export function namedKernels(e: Expectation): string[] {
  return e.kernels.kind === 'names' ? e.kernels.names : [];
}
