/**
 * mergeReports(shards): the reports of the shards of one run, as one report equal to the report of
 * an unsharded run, modulo timings: the same kernels, objects and cells in the same order
 * (buildReport's: kernel, then object, as the report lists them); `generatedAt` is the latest
 * shard's, `durationMs` the longest shard's (they ran side by side), and `run.shard` is gone.
 *
 * Refused (UsageError): shards of different runs (a kernel or object named alike but different, a
 * different corematrix or matrix), a cell in two shards, and a shard missing or given twice. With
 * `files` (each shard's file, in the same order), the error names the file at fault: the error's
 * `file` when it is one shard's, the message when it is two's.
 *
 * Expectations: every shard declares all of the run's expectations (a shard keeps all the run's
 * objects) and evaluated each on its own cells, so the shards must list the same ones in the same
 * order, and each is merged from its shards' results: failed when it failed in any shard (the
 * failing shards' lines, in shard order, each once), else passed when it passed in any, else skipped; its
 * kernels are the union. For matrix.yaml's expectations and a case file's `expect` this is the
 * unsharded result: each is a condition on every cell it checks (a `field`'s "relocated at all" is
 * a property of the object, the same in each cell). A case file's `check` function sees only its
 * shard's cells: the merge keeps any shard's failure, so it never hides one, but may keep one that
 * the whole run's cells would have passed.
 */

import { UsageError } from '../errors.js';
import { sortCells } from './build.js';
import type { Report, ReportExpectation } from './schema.js';
import { cellKey } from './shard.js';

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** "shard 2" (or its file), for a message naming two shards. */
type ShardName = (index: number) => string;

/** A UsageError about one shard: its file, when known, is the error's file. */
function shardError(message: string, files: readonly string[] | undefined, index: number): UsageError {
  const file = files?.[index];
  return new UsageError(message, file === undefined ? undefined : { file });
}

function union<T extends { name: string }>(
  what: string,
  lists: T[][],
  files: readonly string[] | undefined,
): T[] {
  const out = new Map<string, T>();
  for (const [i, list] of lists.entries()) {
    for (const x of list) {
      const had = out.get(x.name);
      if (had === undefined) out.set(x.name, x);
      else if (!sameJson(had, x)) {
        throw shardError(
          `the shards disagree on ${what} ${JSON.stringify(x.name)}: not shards of one run`,
          files,
          i,
        );
      }
    }
  }
  return [...out.values()];
}

function mergeExpectations(
  shards: readonly Report[],
  kernels: readonly { name: string }[],
  files: readonly string[] | undefined,
): ReportExpectation[] | undefined {
  const lists = shards.map((s) => s.expectations ?? []);
  const first = lists[0] ?? [];
  for (const [i, list] of lists.entries()) {
    const same =
      list.length === first.length &&
      list.every((x, j) => x.name === first[j]!.name && x.source === first[j]!.source);
    if (!same) throw shardError('the shards declare different expectations: not shards of one run', files, i);
  }
  if (first.length === 0) return undefined;
  return first.map((x, j) => {
    const results = lists.map((list) => list[j]!);
    const failed = results.filter((r) => r.status === 'failed');
    const status =
      failed.length > 0 ? 'failed' : results.some((r) => r.status === 'passed') ? 'passed' : 'skipped';
    const messages =
      status === 'failed'
        ? // A line per failure; the same line from two shards is one finding about the object as a
          // whole (a field no program relocates), as a cell's lines name the cell's kernel.
          [...new Set(failed.flatMap((r) => (r.message ?? 'unmet').split('\n')))]
        : status === 'skipped'
          ? [...new Set(results.map((r) => r.message ?? ''))].filter((m) => m !== '')
          : [];
    const checkedOn = new Set(results.flatMap((r) => r.kernels ?? []));
    const on = kernels.map((k) => k.name).filter((k) => checkedOn.has(k));
    return {
      name: x.name,
      source: x.source,
      status,
      ...(messages.length === 0 ? {} : { message: messages.join(status === 'failed' ? '\n' : '; ') }),
      ...(on.length === 0 ? {} : { kernels: on }),
    };
  });
}

export function mergeReports(shards: readonly Report[], files?: readonly string[]): Report {
  const first = shards[0];
  if (first === undefined) throw new UsageError('no reports to merge');
  const shardName: ShardName = (i) => files?.[i] ?? `shard ${i + 1}`;
  for (const [i, s] of shards.entries()) {
    if (s.corematrix.version !== first.corematrix.version || s.run.matrix !== first.run.matrix) {
      throw shardError(
        `the shards come from different runs (corematrix ${s.corematrix.version} vs ${first.corematrix.version}, matrix ${s.run.matrix ?? '-'} vs ${first.run.matrix ?? '-'})`,
        files,
        i,
      );
    }
  }
  const sharded = shards.filter((s) => s.run.shard !== undefined);
  if (sharded.length > 0) {
    const count = first.run.shard?.count;
    const seen = new Map<number, number>();
    for (const [i, s] of shards.entries()) {
      if (s.run.shard === undefined || s.run.shard.count !== count) {
        throw shardError(
          `a shard of ${count ?? '?'} merged with ${s.run.shard === undefined ? 'an unsharded report' : `a shard of ${s.run.shard.count}`}`,
          files,
          i,
        );
      }
      const twin = seen.get(s.run.shard.index);
      if (twin !== undefined) {
        throw new UsageError(
          `shard ${s.run.shard.index}/${count} given twice${files === undefined ? '' : ` (${shardName(twin)} and ${shardName(i)})`}`,
        );
      }
      seen.set(s.run.shard.index, i);
    }
    const missing = Array.from({ length: count ?? 0 }, (_, i) => i + 1).filter((i) => !seen.has(i));
    if (missing.length > 0)
      throw new UsageError(`shard ${missing.map((i) => `${i}/${count}`).join(', ')} missing`);
  }
  const kernels = union(
    'kernel',
    shards.map((s) => s.kernels),
    files,
  );
  const objects = union(
    'object',
    shards.map((s) => s.objects),
    files,
  );
  const cells = new Map<string, { cell: Report['cells'][number]; shard: number }>();
  for (const [i, s] of shards.entries()) {
    for (const c of s.cells) {
      const k = cellKey(c);
      const twin = cells.get(k);
      if (twin !== undefined) {
        throw new UsageError(
          `cell ${c.object} on ${c.kernel} is in two shards${files === undefined ? '' : ` (${shardName(twin.shard)} and ${shardName(i)})`}`,
        );
      }
      cells.set(k, { cell: c, shard: i });
    }
  }
  const tiers = (['static', 'vm'] as const).filter((t) => shards.some((s) => s.run.tiers.includes(t)));
  const run: Report['run'] = { tiers, durationMs: Math.max(...shards.map((s) => s.run.durationMs)) };
  if (first.run.matrix !== undefined) run.matrix = first.run.matrix;
  const expectations = mergeExpectations(shards, kernels, files);
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
    cells: sortCells(
      [...cells.values()].map((c) => c.cell),
      kernels,
      objects,
    ),
    ...(expectations === undefined ? {} : { expectations }),
  };
}
