/**
 * The cell plan of the repository's own matrix.yaml over the built case suite: tiers per kernel,
 * the --tier/--kernel/--case filters, programs: subsets, and shards that are disjoint and together
 * the whole run, for every shard count up to past the number of cells.
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { expandGlob } from '../matrix/glob.js';
import { loadMatrix, type Matrix, parseMatrix } from '../matrix/load.js';
import { cellKey } from '../report/shard.js';
import { caseMatches, formatShardPlan, matrixObjects, planRun } from './plan.js';

const repo = path.join(import.meta.dirname, '..', '..');
let matrix: Matrix;
let suite: string[];

beforeAll(() => {
  execFileSync('bash', [path.join(repo, 'scripts', 'build-cases.sh')], { stdio: 'ignore' });
  matrix = loadMatrix(path.join(repo, 'matrix.yaml'));
  suite = expandGlob('build/cases/*.bpf.o', repo).map((f) => path.relative(repo, f));
});

describe('the default matrix', () => {
  test('every kernel × every case object; Debian kernels run both tiers, the host static only', () => {
    const plan = planRun(matrix);
    expect(plan.tiers).toEqual(['static', 'vm']);
    expect(plan.kernels.map((k) => [k.name, k.tiers])).toEqual([
      ['bullseye', ['static', 'vm']],
      ['bookworm', ['static', 'vm']],
      ['trixie', ['static', 'vm']],
      ['sid', ['static', 'vm']],
      ['host', ['static']],
    ]);
    expect(plan.objects.map((o) => o.name)).toEqual(suite);
    expect(plan.cells).toHaveLength(5 * suite.length);
    expect(new Set(plan.cells.map(cellKey)).size).toBe(plan.cells.length);
    expect(plan.cells.filter((c) => c.kernel === 'host').every((c) => c.tiers.join() === 'static')).toBe(
      true,
    );
  });

  test("objects named by several entries merge once, with every entry's expectations", () => {
    const kc = matrixObjects(matrix).find((o) => o.name === 'build/cases/kernel_changes.bpf.o')!;
    // The glob gives all programs; the entry with expectations adds no subset.
    expect(kc.programs).toBeUndefined();
    expect(kc.expect.some((e) => e.kind === 'status' && e.status === 'needs-guard')).toBe(true);
    expect(matrixObjects(matrix).find((o) => o.name === 'build/cases/types.bpf.o')!.expect).toEqual([]);
  });

  test('--tier vm leaves out the host (nothing to boot); --tier static keeps every kernel', () => {
    const vm = planRun(matrix, { tier: 'vm' });
    expect(vm.kernels.map((k) => k.name)).toEqual(['bullseye', 'bookworm', 'trixie', 'sid']);
    expect(vm.cells.every((c) => c.tiers.join() === 'vm')).toBe(true);
    const st = planRun(matrix, { tier: 'static' });
    expect(st.kernels).toHaveLength(5);
    expect(st.tiers).toEqual(['static']);
  });

  test('--kernel and --case narrow the cells; unknown kernels and unmatched patterns are usage errors', () => {
    const p = planRun(matrix, {
      kernels: ['sid', 'host'],
      cases: ['kernel_changes', 'build/cases/m*.bpf.o'],
    });
    expect(p.kernels.map((k) => k.name)).toEqual(['sid', 'host']);
    expect(p.objects.map((o) => o.name)).toEqual([
      'build/cases/kernel_changes.bpf.o',
      'build/cases/minimal.bpf.o',
    ]);
    expect(p.cells).toHaveLength(4);
    expect(() => planRun(matrix, { kernels: ['bookwrom'] })).toThrow(
      /no kernel named "bookwrom" \(did you mean bookworm\?\); the matrix has: bullseye, bookworm, trixie, sid, host/,
    );
    expect(() => planRun(matrix, { cases: ['no-such-case'] })).toThrow(/--case "no-such-case": no object/);
  });

  test('a --case pattern matches by substring or as a glob, on the name or its last segments', () => {
    const o = { name: 'build/cases/fentry.bpf.o', path: '/x', expect: [] };
    expect(caseMatches('fentry', o)).toBe(true);
    expect(caseMatches('*.bpf.o', o)).toBe(true);
    expect(caseMatches('cases/f*', o)).toBe(true);
    expect(caseMatches('build/**/fentry.bpf.o', o)).toBe(true);
    expect(caseMatches('kprobe', o)).toBe(false);
    expect(caseMatches('build/f*', o)).toBe(false);
  });
});

describe('shards', () => {
  test.each([1, 2, 3, 4, 7, 200])(
    '%i shard(s): disjoint, complete, sizes within one, each alone reproducible',
    (n) => {
      const all = planRun(matrix).cells.map(cellKey);
      const shards = Array.from({ length: n }, (_, i) =>
        planRun(matrix, { shard: { index: i + 1, count: n } }),
      );
      const keys = shards.flatMap((s) => s.cells.map(cellKey));
      expect(keys.sort()).toEqual([...all].sort());
      const sizes = shards.map((s) => s.cells.length);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      for (const [i, s] of shards.entries()) {
        expect(s.shard).toEqual({ index: i + 1, count: n });
        // The whole run's kernels and objects (the report lists them all), whichever its cells use.
        expect(s.kernels).toEqual(planRun(matrix).kernels);
        expect(s.objects).toEqual(planRun(matrix).objects);
        expect(planRun(matrix, { shard: { index: i + 1, count: n } }).cells).toEqual(s.cells);
      }
    },
  );

  test('the text plan lists every cell once under its shard', () => {
    const text = formatShardPlan(matrix, 3);
    expect(text.match(/^shard \d\/3: \d+ cell\(s\)$/gm)).toHaveLength(3);
    expect(text.match(/^ {2}\S+ {2}build\/cases\/\S+ {2}\(/gm)).toHaveLength(planRun(matrix).cells.length);
  });
});

describe('matrices of its own', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'corematrix-plan-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('local kernels boot only with a vmlinuz; the matrix tiers bound the run; programs: subsets merge', () => {
    const text = `kernels:
  - { name: img, vmlinuz: k/vmlinuz }
  - { name: btf-only, btf: k/btf }
  - { name: me, host: true, vmlinuz: k/vmlinuz }
cases:
  - path: ${path.join(repo, 'build/cases/kernel_changes.bpf.o')}
    programs: [task_state_portable]
  - path: ${path.join(repo, 'build/cases/kernel_changes.bpf.o')}
    programs: [rq_disk_portable, task_state_portable]
tiers: [static, vm]
`;
    const file = path.join(dir, 'm.yaml');
    writeFileSync(file, text);
    const m = parseMatrix(text, file);
    const plan = planRun(m);
    expect(plan.kernels.map((k) => [k.name, k.tiers])).toEqual([
      ['img', ['static', 'vm']],
      ['btf-only', ['static']],
      ['me', ['static', 'vm']],
    ]);
    // Outside the matrix's directory, an object is named by its absolute path.
    expect(plan.objects).toEqual([
      expect.objectContaining({
        name: path.join(repo, 'build/cases/kernel_changes.bpf.o'),
        programs: ['task_state_portable', 'rq_disk_portable'],
      }),
    ]);
    const staticOnly = parseMatrix(text.replace('tiers: [static, vm]', 'tiers: [static]'), file);
    expect(planRun(staticOnly).cells.every((c) => c.tiers.join() === 'static')).toBe(true);
    // --tier all asks for both, whatever the matrix says.
    expect(planRun(staticOnly, { tier: 'all' }).tiers).toEqual(['static', 'vm']);
  });
});
