/**
 * mergeReports(shards): the reports of the shards of one run, as one report equal to the report of
 * an unsharded run, modulo timings: the same kernels, objects and cells in the same order
 * (buildReport's: kernel, then object, as the report lists them); `generatedAt` is the latest
 * shard's, `durationMs` the longest shard's (they ran side by side), and `run.shard` is gone.
 *
 * Refused (UsageError): shards of different runs (a kernel or object named alike but different, a
 * different corematrix or matrix), a cell in two shards, and a shard missing or given twice.
 */

import { UsageError } from '../errors.js';
import { sortCells } from './build.js';
import type { Report } from './schema.js';
import { cellKey } from './shard.js';

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function union<T extends { name: string }>(what: string, lists: T[][]): T[] {
  const out = new Map<string, T>();
  for (const list of lists) {
    for (const x of list) {
      const had = out.get(x.name);
      if (had === undefined) out.set(x.name, x);
      else if (!sameJson(had, x)) {
        throw new UsageError(
          `the shards disagree on ${what} ${JSON.stringify(x.name)}: not shards of one run`,
        );
      }
    }
  }
  return [...out.values()];
}

export function mergeReports(shards: readonly Report[]): Report {
  const first = shards[0];
  if (first === undefined) throw new UsageError('no reports to merge');
  for (const s of shards) {
    if (s.corematrix.version !== first.corematrix.version || s.run.matrix !== first.run.matrix) {
      throw new UsageError(
        `the shards come from different runs (corematrix ${s.corematrix.version} vs ${first.corematrix.version}, matrix ${s.run.matrix ?? '-'} vs ${first.run.matrix ?? '-'})`,
      );
    }
  }
  const sharded = shards.filter((s) => s.run.shard !== undefined);
  if (sharded.length > 0) {
    const count = first.run.shard?.count;
    const seen = new Set<number>();
    for (const s of shards) {
      if (s.run.shard === undefined || s.run.shard.count !== count) {
        throw new UsageError(
          `a shard of ${count ?? '?'} merged with ${s.run.shard === undefined ? 'an unsharded report' : `a shard of ${s.run.shard.count}`}`,
        );
      }
      if (seen.has(s.run.shard.index))
        throw new UsageError(`shard ${s.run.shard.index}/${count} given twice`);
      seen.add(s.run.shard.index);
    }
    const missing = Array.from({ length: count ?? 0 }, (_, i) => i + 1).filter((i) => !seen.has(i));
    if (missing.length > 0)
      throw new UsageError(`shard ${missing.map((i) => `${i}/${count}`).join(', ')} missing`);
  }
  const kernels = union(
    'kernel',
    shards.map((s) => s.kernels),
  );
  const objects = union(
    'object',
    shards.map((s) => s.objects),
  );
  const cells = new Map<string, Report['cells'][number]>();
  for (const s of shards) {
    for (const c of s.cells) {
      const k = cellKey(c);
      if (cells.has(k)) throw new UsageError(`cell ${c.object} on ${c.kernel} is in two shards`);
      cells.set(k, c);
    }
  }
  const tiers = (['static', 'vm'] as const).filter((t) => shards.some((s) => s.run.tiers.includes(t)));
  const run: Report['run'] = { tiers, durationMs: Math.max(...shards.map((s) => s.run.durationMs)) };
  if (first.run.matrix !== undefined) run.matrix = first.run.matrix;
  return {
    schemaVersion: first.schemaVersion,
    generatedAt:
      shards
        .map((s) => s.generatedAt)
        .sort()
        .at(-1) ?? first.generatedAt,
    corematrix: { ...first.corematrix },
    run,
    kernels,
    objects,
    cells: sortCells([...cells.values()], kernels, objects),
  };
}
