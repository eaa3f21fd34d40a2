/**
 * `*.case.ts` files: expectations and custom checks written in code, next to an object or next to
 * its C source. For the object `NAME.bpf.o` (or `NAME.o`), corematrix looks for `NAME.case.ts`,
 * `NAME.case.mts`, `NAME.case.js` and `NAME.case.mjs` in the object's directory, in its source's
 * directory when the matrix names the source, and — for objects scripts/build-cases.sh builds into
 * `build/cases/` — in `cases/` beside the matrix. The first found is used.
 *
 * The file default-exports a function that receives the CaseApi:
 *
 * ```ts
 * export default (c) => {
 *   c.expect({ programs: ['task_state_new_only'], loads: '>= 5.14', rejected: '< 5.14' });
 *   c.check('reads __state where it exists', ({ cells, program }) => { … throw or return false to fail });
 * };
 * ```
 *
 * TypeScript is transpiled with esbuild's transform (types stripped, nothing bundled: a case file
 * imports nothing of its own) into a temporary module. Any error in it — syntax, a throw, a bad
 * expectation — is a UsageError naming the file.
 */

import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { oneLine, UsageError } from '../errors.js';
import { type Expectation, parseExpectEntry } from '../matrix/expect.js';
import type { ReportCell, ReportKernel, ReportProgram } from '../report/schema.js';
import type { PlannedObject } from './plan.js';

/** What a custom check sees: the object's cells in this run. */
export interface CheckContext {
  object: string;
  kernels: ReportKernel[];
  cells: ReportCell[];
  cell(kernel: string): ReportCell | undefined;
  program(kernel: string, name: string): ReportProgram | undefined;
}

/** A check passes unless it throws or returns false. */
export type CheckFn = (context: CheckContext) => unknown;

export interface CaseApi {
  /** The object's name in reports. */
  readonly object: string;
  /** An expectation, in matrix.yaml's `expect:` grammar. */
  expect(entry: Record<string, unknown>): void;
  /** A custom check; its name names the task. */
  check(name: string, fn: CheckFn): void;
}

export interface CaseFile {
  file: string;
  object: string;
  expectations: Expectation[];
  checks: { name: string; fn: CheckFn }[];
}

const EXTENSIONS = ['.case.ts', '.case.mts', '.case.js', '.case.mjs'];

/** Where the case file of an object may be, in order. */
export function caseFileCandidates(object: PlannedObject, matrixDir: string): string[] {
  const stem = path
    .basename(object.path)
    .replace(/\.o$/, '')
    .replace(/\.bpf$/, '');
  const dirs = [path.dirname(object.path)];
  if (object.source !== undefined) dirs.push(path.dirname(path.resolve(matrixDir, object.source)));
  if (path.dirname(object.path) === path.join(matrixDir, 'build', 'cases'))
    dirs.push(path.join(matrixDir, 'cases'));
  return [...new Set(dirs)].flatMap((d) => EXTENSIONS.map((e) => path.join(d, `${stem}${e}`)));
}

export function findCaseFile(object: PlannedObject, matrixDir: string): string | undefined {
  return caseFileCandidates(object, matrixDir).find((f) => existsSync(f));
}

/** Imports the file: TypeScript transpiled into a temporary .mjs, removed once imported. */
async function importCase(file: string): Promise<unknown> {
  if (!/\.m?ts$/.test(file)) return import(pathToFileURL(file).href);
  const { transform } = await import('esbuild');
  const source = await fs.readFile(file, 'utf8');
  let code: string;
  try {
    code = (await transform(source, { loader: 'ts', format: 'esm', sourcefile: file, target: 'node20' }))
      .code;
  } catch (e) {
    const first = (e as { errors?: { text: string; location?: { line: number; column: number } }[] })
      .errors?.[0];
    const where =
      first?.location === undefined ? '' : `${first.location.line}:${first.location.column + 1}: `;
    throw new UsageError(`${where}${first?.text ?? (e as Error).message}`, { file, cause: e });
  }
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'corematrix-case-'));
  try {
    const out = path.join(dir, `${path.basename(file).replace(/\.m?ts$/, '')}.mjs`);
    await fs.writeFile(out, code);
    return await import(pathToFileURL(out).href);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** Loads a case file and runs its function: the expectations and checks it declares. */
export async function loadCaseFile(file: string, object: string): Promise<CaseFile> {
  const fail = (what: string, cause?: unknown) =>
    new UsageError(oneLine(what), { file, ...(cause === undefined ? {} : { cause }) });
  const module = (await importCase(file).catch((e: unknown) => {
    if (e instanceof UsageError) throw e;
    throw fail(`cannot load the case file: ${e instanceof Error ? e.message : String(e)}`, e);
  })) as { default?: unknown };
  if (typeof module.default !== 'function') {
    throw fail('a case file must default-export a function (export default (c) => { c.expect({...}) })');
  }
  const out: CaseFile = { file, object, expectations: [], checks: [] };
  let n = 0;
  const api: CaseApi = {
    object,
    expect(entry) {
      n++;
      const parsed = parseExpectEntry(entry);
      if ('problems' in parsed) {
        const p = parsed.problems[0]!;
        throw fail(`expect #${n}: ${p.message}`);
      }
      out.expectations.push(...parsed.expectations);
    },
    check(name, fn) {
      if (typeof name !== 'string' || name.trim() === '' || typeof fn !== 'function')
        throw fail(`check #${out.checks.length + 1}: expected check(name, function)`);
      out.checks.push({ name: name.trim(), fn });
    },
  };
  try {
    await (module.default as (api: CaseApi) => unknown)(api);
  } catch (e) {
    if (e instanceof UsageError && e.file === file) throw e;
    throw fail(`the case function threw: ${e instanceof Error ? e.message : String(e)}`, e);
  }
  return out;
}

/** The context a check of `object` sees in a report's cells. */
export function checkContext(object: string, kernels: ReportKernel[], cells: ReportCell[]): CheckContext {
  const mine = cells.filter((c) => c.object === object);
  return {
    object,
    kernels,
    cells: mine,
    cell: (kernel) => mine.find((c) => c.kernel === kernel),
    program: (kernel, name) => mine.find((c) => c.kernel === kernel)?.programs.find((p) => p.name === name),
  };
}
