// `corematrix report render`, `diff` and `merge` as a user runs them (the built CLI in a process of
// its own), on reports buildReport made of the case suite × the Debian kernels (static tier),
// changed in code where a test needs a regression, a fix, a removed kernel or an infra error.
import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildReport } from '../report/build.js';
import { caseObjects, staticSuiteInput, staticSuiteReport } from '../report/fixture.js';
import { readReport, writeReport } from '../report/json.js';
import type { Report } from '../report/schema.js';
import { shardOf } from '../report/shard.js';
import { runCorematrix } from '../test-support/cli.js';

const repo = path.join(import.meta.dirname, '..', '..');
const ready = caseObjects().length > 0 && existsSync(path.join(repo, 'dist', 'cli', 'main.js'));

let dir: string;
let suite: Report;
let base: string;

/** Writes `report` as DIR/NAME/report.json (through writeReport: validated) and returns the path. */
async function saved(name: string, report: Report): Promise<string> {
  const file = path.join(dir, name, 'report.json');
  await writeReport(file, report);
  return file;
}

/**
 * A copy of the suite report where the first loading program of the first ok cell is renamed by
 * `program`, and (`fail`) fails there.
 */
function broken(
  report: Report,
  program = (name: string) => name,
  fail = true,
): { report: Report; cell: Report['cells'][0] } {
  const r: Report = structuredClone(report);
  for (const c of r.cells) {
    const p = c.programs.find((x) => x.static?.verdict === 'loads');
    if (c.status !== 'ok' || p === undefined) continue;
    p.name = program(p.name);
    if (fail) {
      p.static = {
        verdict: 'rejected',
        reasons: [{ source: 'feature', message: 'helper bpf_invented_for_this_test is missing' }],
        unknown: [],
      };
      c.status = 'failing';
    }
    return { report: r, cell: c };
  }
  throw new Error('the suite has no ok cell');
}

/** stderr is exactly one line, `corematrix: …`. */
function oneLine(stderr: string): string {
  expect(stderr.endsWith('\n')).toBe(true);
  expect(stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(stderr.startsWith('corematrix: ')).toBe(true);
  return stderr.trimEnd();
}

const listing = async (d: string) => (existsSync(d) ? (await fs.readdir(d)).sort() : []);

beforeAll(async () => {
  if (!ready) return;
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'corematrix-report-cli-'));
  suite = await staticSuiteReport();
  base = await saved('base', suite);
});
afterAll(() => (dir === undefined ? undefined : fs.rm(dir, { recursive: true, force: true })));

describe.skipIf(!ready)('corematrix report render', () => {
  it('renders index.html, junit.xml and summary.md beside report.json, from it alone', async () => {
    const copy = path.join(dir, 'render-beside', 'report.json');
    await fs.mkdir(path.dirname(copy));
    await fs.copyFile(base, copy);
    const r = await runCorematrix('report', 'render', copy);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const d = path.dirname(copy);
    expect(r.stdout.trimEnd().split('\n')).toEqual(
      ['index.html', 'junit.xml', 'summary.md'].map((f) => path.join(d, f)),
    );
    expect(await listing(d)).toEqual(['index.html', 'junit.xml', 'report.json', 'summary.md']);
    // report.json is the input, not rewritten; the others are rendered from it.
    expect(await fs.readFile(copy, 'utf8')).toBe(await fs.readFile(base, 'utf8'));
    const md = await fs.readFile(path.join(d, 'summary.md'), 'utf8');
    expect(md).toContain(`${suite.objects.length} objects × ${suite.kernels.length} kernels`);
    const junit = await fs.readFile(path.join(d, 'junit.xml'), 'utf8');
    expect(junit.match(/<testsuite /g)).toHaveLength(suite.kernels.length);
  });

  it('--out and --format choose where and what', async () => {
    const out = path.join(dir, 'render-junit', 'deeper');
    const r = await runCorematrix('report', 'render', base, '--out', out, '--format', 'junit');
    expect(r.status).toBe(0);
    expect(await listing(out)).toEqual(['junit.xml']);
    const bad = await runCorematrix('report', 'render', base, '--out', out, '--format', 'pdf');
    expect(bad.status).toBe(2);
    expect(oneLine(bad.stderr)).toContain('pdf');
  });

  it('refuses a corrupt report.json in one line naming it (exit 1), writing nothing', async () => {
    const file = path.join(dir, 'corrupt', 'report.json');
    await fs.mkdir(path.dirname(file));
    const text = await fs.readFile(base, 'utf8');
    await fs.writeFile(file, text.slice(0, text.length / 2));
    const r = await runCorematrix('report', 'render', file);
    expect(r.status).toBe(1);
    expect(oneLine(r.stderr)).toMatch(new RegExp(`^corematrix: ${file}: report: not JSON`));
    expect(await listing(path.dirname(file))).toEqual(['report.json']);
  });

  it('refuses a report of another schemaVersion (exit 1) and a missing file (exit 2)', async () => {
    const file = path.join(dir, 'v2', 'report.json');
    await fs.mkdir(path.dirname(file));
    await fs.writeFile(
      file,
      (await fs.readFile(base, 'utf8')).replace('"schemaVersion": 1', '"schemaVersion": 2'),
    );
    const r = await runCorematrix('report', 'render', file, '--out', path.join(dir, 'v2-out'));
    expect(r.status).toBe(1);
    expect(oneLine(r.stderr)).toBe(
      `corematrix: ${file}: report: schemaVersion 2 is not one this corematrix reads (it reads 1); use the corematrix that wrote it`,
    );
    expect(existsSync(path.join(dir, 'v2-out'))).toBe(false);

    const missing = path.join(dir, 'nowhere', 'report.json');
    const m = await runCorematrix('report', 'render', missing);
    expect(m.status).toBe(2);
    expect(oneLine(m.stderr)).toBe(`corematrix: ${missing}: no such report`);
  });

  it('names an output directory it cannot write in one line (exit 2)', async () => {
    const file = path.join(dir, 'a-file');
    await fs.writeFile(file, 'not a directory\n');
    const r = await runCorematrix('report', 'render', base, '--out', path.join(file, 'sub'));
    expect(r.status).toBe(2);
    expect(oneLine(r.stderr)).toMatch(
      new RegExp(`^corematrix: ${path.join(file, 'sub')}: cannot write the reports: ENOTDIR`),
    );
  });
});

describe.skipIf(!ready)('corematrix diff', () => {
  it('a report against itself: no regressions, exit 0', async () => {
    const r = await runCorematrix('diff', base, base);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('No regressions.\n');
  });

  it('a regression: exit 1, listed first with its cause; --json and --markdown say the same', async () => {
    const { report, cell } = broken(suite);
    const now = await saved('regressed', report);
    const program = cell.programs.find((p) => p.static?.verdict === 'rejected')!.name;
    const r = await runCorematrix('diff', base, now);
    expect(r.status).toBe(1);
    expect(r.stdout.split('\n').slice(0, 2)).toEqual([
      '1 regression:',
      `  ${cell.object} ${program} on ${cell.kernel}: was loads, now failing: helper bpf_invented_for_this_test is missing`,
    ]);

    const j = await runCorematrix('diff', base, now, '--json');
    expect(j.status).toBe(1);
    const diff = JSON.parse(j.stdout);
    expect(diff.regressions).toEqual([
      {
        kernel: cell.kernel,
        object: cell.object,
        program,
        was: 'loads',
        now: 'failing',
        cause: 'helper bpf_invented_for_this_test is missing',
      },
    ]);
    expect(diff.fixes).toEqual([]);

    const m = await runCorematrix('diff', base, now, '--markdown');
    expect(m.status).toBe(1);
    expect(m.stdout).toContain('### ❌ 1 regression');
    expect(m.stdout.indexOf('1 regression')).toBeLessThan(m.stdout.indexOf('| object |'));

    // The other way round it is a fix, and a fix is not a failure.
    const back = await runCorematrix('diff', now, base);
    expect(back.status).toBe(0);
    expect(back.stdout.split('\n').slice(0, 3)).toEqual([
      'No regressions.',
      '1 fix:',
      `  ${cell.object} ${program} on ${cell.kernel}: was failing, now loads (it failed: helper bpf_invented_for_this_test is missing)`,
    ]);
  });

  it('a kernel removed and an infra error are not regressions (exit 0)', async () => {
    const gone = suite.kernels[0]!.name;
    const infra: Report = structuredClone(suite);
    infra.kernels = infra.kernels.filter((k) => k.name !== gone);
    infra.cells = infra.cells.filter((c) => c.kernel !== gone);
    // Every cell with a loading program faults in the VM: their truth is unknown now.
    for (const c of infra.cells) {
      if (c.status === 'ok') {
        c.status = 'infra_error';
        c.infra = { reason: 'timeout: no result in 30 s', consoleTail: '' };
      }
    }
    infra.run.tiers = ['static', 'vm'];
    const now = await saved('infra', infra);
    const r = await runCorematrix('diff', base, now);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`No regressions.\nkernels removed: ${gone}\n`);
  });

  it('names from objects cannot act on the terminal: control characters shown as escapes', async () => {
    const hostile = (name: string) => `${name}\u001b[2J\u001b[31m\nforged line\u2028`;
    const old = await saved('escapes-old', broken(suite, hostile, false).report);
    const now = await saved('escapes', broken(suite, hostile).report);
    const r = await runCorematrix('diff', old, now);
    expect(r.status).toBe(1);
    expect(r.stdout).not.toMatch(/[\u001b\u2028]/);
    expect(r.stdout).toContain('\\u001b[2J\\u001b[31m\\u000aforged line\\u2028 on ');
    expect(r.stdout.split('\n')).toHaveLength(3);
  });

  it('refuses --json with --markdown (exit 2), and a corrupt or missing side in one line', async () => {
    const both = await runCorematrix('diff', base, base, '--json', '--markdown');
    expect(both.status).toBe(2);
    expect(oneLine(both.stderr)).toContain('--json and --markdown');
    const file = path.join(dir, 'not-a-report.json');
    await fs.writeFile(file, '{"hello": "world"}\n');
    const bad = await runCorematrix('diff', base, file);
    expect(bad.status).toBe(1);
    expect(oneLine(bad.stderr)).toBe(
      `corematrix: ${file}: report: not a corematrix report (no schemaVersion)`,
    );
    const missing = await runCorematrix('diff', path.join(dir, 'old.json'), base);
    expect(missing.status).toBe(2);
    expect(oneLine(missing.stderr)).toBe(`corematrix: ${path.join(dir, 'old.json')}: no such report`);
  });
});

describe.skipIf(!ready)('corematrix merge', () => {
  /** The suite run as `count` shards, each saved as shard-I/report.json of its own run. */
  async function shards(name: string, count: number, cells?: (i: number) => Report['cells'] | undefined) {
    const input = await staticSuiteInput();
    const files: string[] = [];
    for (let i = 1; i <= count; i++) {
      const report = buildReport({
        ...input,
        generatedAt: `2026-02-0${i}T00:00:00.000Z`,
        shard: { index: i, count },
        cells: shardOf(input.cells, i, count),
      });
      report.cells = cells?.(i) ?? report.cells;
      files.push(await saved(path.join(name, `shard-${i}`), report));
    }
    return files;
  }

  it('merges the shards of a run into the unsharded report and renders it', async () => {
    const files = await shards('merge-ok', 3);
    const out = path.join(dir, 'merge-ok', 'merged');
    const r = await runCorematrix('merge', ...[...files].reverse(), '-o', out);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(await listing(out)).toEqual(['index.html', 'junit.xml', 'report.json', 'summary.md']);
    const merged = await readReport(path.join(out, 'report.json'));
    expect(merged.run.shard).toBeUndefined();
    expect(merged.generatedAt).toBe('2026-02-03T00:00:00.000Z');
    expect({ ...merged, generatedAt: suite.generatedAt }).toEqual(suite);
    // The merged report diffs clean against the unsharded one.
    expect((await runCorematrix('diff', base, path.join(out, 'report.json'))).status).toBe(0);
  });

  it('refuses overlapping shards, naming both files (exit 2), writing nothing', async () => {
    const files = await shards('merge-overlap', 2, (i) =>
      i === 2 ? suite.cells.slice(0, 3).concat(suite.cells.slice(-1)) : undefined,
    );
    const out = path.join(dir, 'merge-overlap', 'merged');
    const r = await runCorematrix('merge', ...files, '-o', out);
    expect(r.status).toBe(2);
    const line = oneLine(r.stderr);
    expect(line).toMatch(/^corematrix: cell .* on .* is in two shards \(/);
    expect(line).toContain(`(${files[0]} and ${files[1]})`);
    expect(existsSync(out)).toBe(false);
  });

  it('refuses a missing shard, and a shard of another schemaVersion naming its file (exit 1)', async () => {
    const files = await shards('merge-partial', 3);
    const out = path.join(dir, 'merge-partial', 'merged');
    const missing = await runCorematrix('merge', files[0]!, files[2]!, '-o', out);
    expect(missing.status).toBe(2);
    expect(oneLine(missing.stderr)).toBe('corematrix: shard 2/3 missing');

    await fs.writeFile(
      files[1]!,
      (await fs.readFile(files[1]!, 'utf8')).replace('"schemaVersion": 1', '"schemaVersion": 7'),
    );
    const v7 = await runCorematrix('merge', ...files, '-o', out);
    expect(v7.status).toBe(1);
    expect(oneLine(v7.stderr)).toMatch(
      new RegExp(`^corematrix: ${files[1]}: report: schemaVersion 7 is not one`),
    );
    expect(existsSync(out)).toBe(false);
  });

  it('refuses shards of different runs, naming the odd one out', async () => {
    const files = await shards('merge-runs', 2);
    const other = await readReport(files[1]!);
    other.corematrix.version = '9.9.9';
    await writeReport(files[1]!, other);
    const r = await runCorematrix('merge', ...files, '-o', path.join(dir, 'merge-runs', 'merged'));
    expect(r.status).toBe(2);
    expect(oneLine(r.stderr)).toMatch(
      new RegExp(`^corematrix: ${files[1]}: the shards come from different runs`),
    );
  });
});
