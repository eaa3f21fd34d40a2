import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseExpectEntry } from '../matrix/expect.js';
import { evaluateExpectation } from '../run/expect.js';
import { expectationOutcome, reportExpectation } from '../run/runner.js';
import { buildReport } from './build.js';
import { caseObjects, staticSuiteInput, staticSuiteReport } from './fixture.js';
import { parseReport, serializeReport } from './json.js';
import { mergeReports } from './merge.js';
import type { Report, ReportExpectation } from './schema.js';
import { cellKey, githubMatrix, parseShard, shardOf } from './shard.js';

const cellsArb = fc.uniqueArray(fc.record({ kernel: fc.string(), object: fc.string() }), {
  selector: cellKey,
  maxLength: 60,
});

describe('shardOf', () => {
  it('every cell in exactly one shard; shards differ by at most one; input order irrelevant', () => {
    fc.assert(
      fc.property(cellsArb, fc.integer({ min: 1, max: 7 }), (cells, n) => {
        const shards = Array.from({ length: n }, (_, i) => shardOf(cells, i + 1, n));
        expect(shards.flat().map(cellKey).sort()).toEqual(cells.map(cellKey).sort());
        const sizes = shards.map((s) => s.length);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
        const reversed = [...cells].reverse();
        for (let i = 1; i <= n; i++) {
          expect(shardOf(reversed, i, n).map(cellKey).sort()).toEqual(shards[i - 1]!.map(cellKey).sort());
        }
      }),
    );
  });

  it('parses i/n and refuses the rest; a GitHub Actions matrix with one shard per job', () => {
    expect(parseShard('2/3')).toEqual({ index: 2, count: 3 });
    for (const bad of ['0/3', '4/3', '1/0', '1', 'a/b', '1/3/4', '-1/3'])
      expect(() => parseShard(bad)).toThrow(/--shard/);
    expect(() => shardOf([], 2, 1)).toThrow();
    expect(githubMatrix(3)).toEqual({ include: [{ shard: '1/3' }, { shard: '2/3' }, { shard: '3/3' }] });
  });
});

/** The report without what differs run to run: times. */
function untimed(r: Report): unknown {
  return {
    ...r,
    generatedAt: '',
    run: { ...r.run, durationMs: 0 },
    cells: r.cells.map(({ timings: _, ...c }) => c),
  };
}

describe.skipIf(caseObjects().length === 0)('shard + merge on the case suite × the Debian kernels', () => {
  it('merging the shards (through report.json text) equals the unsharded report, for 1 to 5 shards', async () => {
    const input = await staticSuiteInput();
    const whole = await staticSuiteReport();
    for (let n = 1; n <= 5; n++) {
      const shards = Array.from({ length: n }, (_, i) =>
        parseReport(
          serializeReport(
            buildReport({
              ...input,
              generatedAt: `2026-01-0${i + 1}T00:00:00.000Z`,
              shard: { index: i + 1, count: n },
              cells: shardOf(input.cells, i + 1, n),
            }),
          ),
          `shard${i + 1}/report.json`,
        ),
      );
      expect(shards.every((s) => s.cells.length < whole.cells.length || n === 1)).toBe(true);
      const merged = mergeReports([...shards].reverse());
      expect(untimed(merged)).toEqual(untimed(whole));
      expect(merged.run.shard).toBeUndefined();
      expect(merged.generatedAt).toBe(`2026-01-0${n}T00:00:00.000Z`);
    }
  });

  it('merged expectations are those the unsharded run finds, whichever shard checked which cell', async () => {
    const input = await staticSuiteInput();
    const whole = await staticSuiteReport();
    // Met, unmet on some kernels only, never checkable (no kernel of that name), and a field.
    const entries = [
      { loads: 'all' },
      { rejected: '< 5.14' },
      { status: 'needs-guard', on: 'all' },
      { status: 'ok', on: ['no-such-kernel'] },
      { field: 'struct task_struct.__state', is: 'resolved' },
    ];
    const declared = whole.objects.flatMap((o) =>
      entries.flatMap((entry, i) => {
        const parsed = parseExpectEntry(entry);
        if (!('expectations' in parsed)) throw new Error(JSON.stringify(parsed.problems));
        return parsed.expectations.map((e) => ({ e, object: o.name, source: `matrix.yaml:${i + 1}` }));
      }),
    );
    const evaluate = (r: Report): ReportExpectation[] =>
      declared.map(({ e, object, source }) =>
        reportExpectation(
          expectationOutcome({ name: `${object}: ${e.text}`, source }, evaluateExpectation(e, [object], r)),
        ),
      );
    const expected = evaluate(whole);
    const statuses = new Set(expected.map((x) => x.status));
    expect([...statuses].sort()).toEqual(['failed', 'passed', 'skipped']);
    // Failures are listed shard by shard once merged: compared as sets of lines.
    const comparable = (list: ReportExpectation[] | undefined) =>
      list?.map((x) => ({
        ...x,
        message: x.status === 'failed' ? x.message?.split('\n').sort() : undefined,
      }));
    for (const n of [2, 3, 5]) {
      const shards = Array.from({ length: n }, (_, i) => {
        const r = buildReport({
          ...input,
          shard: { index: i + 1, count: n },
          cells: shardOf(input.cells, i + 1, n),
        });
        return { ...r, expectations: evaluate(r) };
      });
      const merged = mergeReports(shards);
      expect(comparable(merged.expectations)).toEqual(comparable(expected));
    }
    // Shards that do not declare the same expectations are not shards of one run.
    const one = buildReport({ ...input, shard: { index: 1, count: 2 }, cells: shardOf(input.cells, 1, 2) });
    const two = buildReport({ ...input, shard: { index: 2, count: 2 }, cells: shardOf(input.cells, 2, 2) });
    expect(() =>
      mergeReports(
        [
          { ...one, expectations: evaluate(one) },
          { ...two, expectations: evaluate(two).slice(1) },
        ],
        ['a.json', 'b.json'],
      ),
    ).toThrow('the shards declare different expectations: not shards of one run');
  });

  it('refuses a missing or repeated shard, a cell in two shards, and shards of different runs', async () => {
    const input = await staticSuiteInput();
    const shard = (i: number, n: number, over: Partial<typeof input> = {}) =>
      buildReport({ ...input, shard: { index: i, count: n }, cells: shardOf(input.cells, i, n), ...over });
    expect(() => mergeReports([shard(1, 3), shard(3, 3)])).toThrow('shard 2/3 missing');
    expect(() => mergeReports([shard(1, 2), shard(1, 2), shard(2, 2)])).toThrow('shard 1/2 given twice');
    expect(() => mergeReports([shard(1, 2), shard(2, 2, { cells: input.cells })])).toThrow(
      /is in two shards/,
    );
    const other = input.objects.map((o, i) => (i === 0 ? { ...o, sha256: 'f'.repeat(64) } : o));
    expect(() => mergeReports([shard(1, 2), shard(2, 2, { objects: other })])).toThrow(/disagree on object/);
    expect(() => mergeReports([shard(1, 2), shard(2, 2, { corematrixVersion: '9.9.9' })])).toThrow(
      /different runs/,
    );
    expect(() => mergeReports([])).toThrow('no reports to merge');
  });
});
