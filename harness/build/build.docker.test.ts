/**
 * The compiler axis for real: the case suite built with Debian bookworm's clang 14 in a container
 * of its toolchain image (made from Debian's archive) and with the host's clang-19, then checked by
 * the static tier on two Debian kernels and turned into report.json. The report shows what only the
 * newer compiler emits (TYPE_MATCHES, enum64 values), the sources clang 14 cannot build as error
 * cells naming its error, and a second build is served from the cache without a container.
 *
 * Needs a Docker engine (CI's .ci/run starts dockerd), mmdebstrap and clang-19; skipped, saying
 * which, when one is missing.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { runCheck } from '../cli/check.js';
import { connectEngine, engineAvailable, OWNER_LABEL, ownerId } from '../container/engine.js';
import { parseMatrix } from '../matrix/load.js';
import { buildReport, type CellInput } from '../report/build.js';
import { type Report, ReportSchema } from '../report/schema.js';
import { runCorematrix } from '../test-support/cli.js';
import { testCacheRoot } from '../test-support/kernels.js';
import { type BuiltObject, buildCaseObjects } from './build.js';
import { buildErrorCells, reportObject } from './report.js';

const repo = path.resolve(import.meta.dirname, '..', '..');

function missing(): string | undefined {
  for (const tool of ['mmdebstrap', 'clang-19']) {
    try {
      execFileSync(tool, ['--version'], { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed`;
    }
  }
  return undefined;
}
const engine = await engineAvailable();
const skip = engine.ok ? missing() : engine.reason;
if (skip !== undefined) console.warn(`compiler axis container tests skipped: ${skip}`);

const MATRIX = `kernels: [{ name: k, host: true }]
cases: [cases/*.bpf.c]
compilers:
  - { name: clang-14, suite: bookworm, clang: clang-14 }
  - { name: clang-19, host: true, clang: clang-19 }
`;
/** What clang 14 cannot build: bpf_core_type_matches (TYPE_MATCHES needs clang 15). */
const CLANG14_FAILS = ['kernel_changes', 'synthetic', 'types'];

const out = mkdtempSync(path.join(os.tmpdir(), 'corematrix-compilers-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

/** The static tier on Debian bookworm's and trixie's kernels (cached by the test setup), as report.json. */
async function staticReport(built: BuiltObject[]): Promise<Report> {
  const kernelsMatrix = path.join(out, 'kernels.yaml');
  writeFileSync(
    kernelsMatrix,
    'kernels:\n  - { name: bookworm, suite: bookworm, version: "6.1" }\n  - { name: trixie, suite: trixie, version: "6.12" }\ncases: [none.o]\n',
  );
  const objects = built.filter((b) => b.path !== undefined);
  const checked = await runCheck({
    objects: objects.map((b) => b.path!),
    matrix: kernelsMatrix,
    kernels: [],
    json: true,
    cache: testCacheRoot(),
  });
  expect(checked.unreadable).toEqual([]);
  const nameOf = new Map(objects.map((b) => [b.path!, b.name]));
  const cells = new Map<string, CellInput>();
  for (const p of checked.programs) {
    const object = nameOf.get(p.object)!;
    const key = `${p.kernel}\0${object}`;
    const cell = cells.get(key) ?? { kernel: p.kernel, object, static: [] };
    cell.static!.push(p);
    cells.set(key, cell);
  }
  const kernels = checked.kernels.map((k) => k.name);
  return buildReport({
    corematrixVersion: 'test',
    tiers: ['static'],
    durationMs: checked.ms,
    kernels: checked.kernels.map((k) => ({
      name: k.name,
      source: `Debian ${k.name}`,
      release: k.release,
      arch: 'x86_64',
    })),
    objects: built.map(reportObject),
    cells: [...cells.values(), ...buildErrorCells(built, kernels)],
  });
}

/** Containers this process created since `since` (seconds), from the engine's event log. */
async function containersCreatedSince(since: number): Promise<string[]> {
  const { docker } = await connectEngine();
  const stream = await docker.getEvents({
    since,
    until: Math.ceil(Date.now() / 1000) + 1,
    filters: { type: ['container'], event: ['create'], label: [`${OWNER_LABEL}=${ownerId()}`] },
  });
  let text = '';
  for await (const chunk of stream) text += String(chunk);
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => (JSON.parse(l) as { id: string }).id);
}

/** The relocation kinds (with enum64 told apart) of an object's cells in the report. */
function kinds(report: Report, object: string): Set<string> {
  const found = new Set<string>();
  for (const c of report.cells.filter((c) => c.object === object))
    for (const p of c.programs)
      for (const r of p.relocations)
        found.add(r.access.startsWith('enum64 ') ? `${r.kind} (enum64)` : r.kind);
  return found;
}

describe.skipIf(skip !== undefined)('compilers: bookworm clang-14 in a container, the host clang-19', () => {
  let built: BuiltObject[];
  let report: Report;

  test('builds every case source with both; clang 14 in its container, 19 on the host', {
    timeout: 900_000,
  }, async () => {
    const matrix = parseMatrix(MATRIX, path.join(repo, 'matrix.yaml'));
    const sources = matrix.cases[0]!.files.map((f) => path.relative(repo, f.path));
    const since = Math.floor(Date.now() / 1000) - 1;
    const t0 = performance.now();
    built = await buildCaseObjects(matrix, { outDir: out });
    console.log(
      `compiler axis: ${sources.length} sources x 2 compilers built in ${Math.round(performance.now() - t0)} ms (image included when it was missing)`,
    );
    expect(built.map((b) => b.name)).toEqual(sources.flatMap((s) => [`${s}@clang-14`, `${s}@clang-19`]));
    expect(built.filter((b) => b.error !== undefined).map((b) => b.name)).toEqual(
      CLANG14_FAILS.map((n) => `cases/${n}.bpf.c@clang-14`),
    );
    for (const b of built.filter((b) => b.path !== undefined)) {
      // Each object's DWARF names the clang that made it.
      const producer = b.compiler === 'clang-14' ? 'Debian clang version 14.' : 'Debian clang version 19.';
      expect(readFileSync(b.path!).includes(producer), b.name).toBe(true);
    }
    // One container, for clang 14, and nothing left running.
    expect(await containersCreatedSince(since)).toHaveLength(1);
    const { docker } = await connectEngine();
    expect(
      await docker.listContainers({ all: true, filters: { label: [`${OWNER_LABEL}=${ownerId()}`] } }),
    ).toEqual([]);
  });

  test('the report shows the relocations only the newer compiler emits', { timeout: 300_000 }, async () => {
    report = ReportSchema.parse(await staticReport(built));
    expect(report.objects.find((o) => o.name === 'cases/minimal.bpf.c@clang-14')?.compiler).toBe('clang-14');
    const newer = kinds(report, 'cases/clang_versions.bpf.c@clang-19');
    const older = kinds(report, 'cases/clang_versions.bpf.c@clang-14');
    expect([...newer].sort()).toEqual(['enumval_value (enum64)', 'type_matches']);
    expect([...older].sort()).toEqual(['type_exists']);
    // Across all objects of each compiler: TYPE_MATCHES and enum64 values are clang 19's alone.
    const all = (compiler: string) =>
      new Set(
        report.objects.filter((o) => o.compiler === compiler).flatMap((o) => [...kinds(report, o.name)]),
      );
    expect(all('clang-19')).toContain('type_matches');
    expect(all('clang-19')).toContain('enumval_value (enum64)');
    expect(all('clang-14')).not.toContain('type_matches');
    expect(all('clang-14')).not.toContain('enumval_value (enum64)');
  });

  test("a source clang 14 cannot build: error cells on every kernel, with clang 14's error", () => {
    const cells = report.cells.filter((c) => c.object === 'cases/types.bpf.c@clang-14');
    expect(cells.map((c) => [c.kernel, c.status])).toEqual([
      ['bookworm', 'error'],
      ['trixie', 'error'],
    ]);
    for (const c of cells)
      expect(c.error).toBe(
        'does not compile with clang-14: fatal error: error in backend: Incorrect flag for llvm.bpf.preserve.type.info intrinsic',
      );
    // The same source with clang 19 is checked like any object.
    const newer = report.cells.filter((c) => c.object === 'cases/types.bpf.c@clang-19');
    expect(newer.map((c) => c.status)).toEqual(['ok', 'ok']);
  });

  test('corematrix image build --matrix: the toolchain image is one the matrix needs, reused by its tag', async () => {
    const file = path.join(out, 'compilers.yaml');
    writeFileSync(file, MATRIX);
    const r = await runCorematrix('image', 'build', '--matrix', file);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^corematrix\/toolchain-bookworm-clang-14:[0-9a-f]{16}\treused\t[0-9.]+ s\n$/);
    console.log(`corematrix image build (toolchain image reused): ${r.stdout.trim().split('\t')[2]}`);
  });

  test('corematrix run --tier static: kernel x object x compiler in report.json', {
    timeout: 600_000,
  }, async () => {
    const dir = path.join(out, 'run');
    const file = path.join(dir, 'matrix.yaml');
    mkdirSync(dir);
    const source = (n: string) => path.join(repo, 'cases', `${n}.bpf.c`);
    writeFileSync(
      file,
      `kernels:\n  - { name: bookworm, suite: bookworm, version: "6.1" }\ncases: [${source('clang_versions')}, ${source('types')}]\n${MATRIX.slice(MATRIX.indexOf('compilers:'))}`,
    );
    const r = await runCorematrix(
      'run',
      '--matrix',
      file,
      '--tier',
      'static',
      '--out',
      path.join(dir, 'out'),
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /corematrix: compilers: 4 object\(s\) from 2 source\(s\) × 2 compiler\(s\), \d from the cache, 1 do not compile/,
    );
    const report = ReportSchema.parse(JSON.parse(readFileSync(path.join(dir, 'out', 'report.json'), 'utf8')));
    const name = (n: string, c: string) => `${source(n)}@${c}`;
    expect(report.objects.map((o) => [o.name, o.compiler])).toEqual([
      [name('clang_versions', 'clang-14'), 'clang-14'],
      [name('clang_versions', 'clang-19'), 'clang-19'],
      [name('types', 'clang-14'), 'clang-14'],
      [name('types', 'clang-19'), 'clang-19'],
    ]);
    expect([...kinds(report, name('clang_versions', 'clang-19'))].sort()).toEqual([
      'enumval_value (enum64)',
      'type_matches',
    ]);
    expect([...kinds(report, name('clang_versions', 'clang-14'))]).toEqual(['type_exists']);
    const failed = report.cells.find((c) => c.object === name('types', 'clang-14'));
    expect(failed?.status).toBe('error');
    expect(failed?.error).toContain('does not compile with clang-14: fatal error: error in backend:');
    expect(report.cells.find((c) => c.object === name('types', 'clang-19'))?.status).toBe('ok');
  });

  test('built again: every object and failure from the cache, no container started', {
    timeout: 300_000,
  }, async () => {
    const matrix = parseMatrix(MATRIX, path.join(repo, 'matrix.yaml'));
    const since = Math.floor(Date.now() / 1000) - 1;
    const t0 = performance.now();
    const again = await buildCaseObjects(matrix, { outDir: out });
    const ms = Math.round(performance.now() - t0);
    expect(await containersCreatedSince(since)).toEqual([]);
    console.log(`compiler axis: second build of ${again.length} objects from the cache in ${ms} ms`);
    expect(again.filter((b) => !b.cached).map((b) => b.name)).toEqual([]);
    expect(again.map(({ cached: _, ...b }) => b)).toEqual(built.map(({ cached: _, ...b }) => b));
  });
});
