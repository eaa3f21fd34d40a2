/**
 * Past one machine: `--shard i/n` runs a deterministic slice of the cells, and `plan --format
 * github` prints the matrix of a GitHub Actions job with one shard per job.
 *
 * The slice: cells sorted by their kernel + object key (plain code-unit order, so every machine and
 * locale agrees), dealt round-robin: cell k of the sorted list goes to shard (k mod n) + 1. Shards
 * differ by at most one cell, every cell is in exactly one shard, and the input order is irrelevant.
 */

import { UsageError } from '../errors.js';

export interface Shard {
  /** 1-based. */
  index: number;
  count: number;
}

/** "2/3" → { index: 2, count: 3 }. */
export function parseShard(text: string): Shard {
  const m = /^([1-9]\d*)\/([1-9]\d*)$/.exec(text.trim());
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (m === null || index > count) {
    throw new UsageError(`--shard ${JSON.stringify(text)}: expected i/n with 1 <= i <= n (e.g. 1/3)`);
  }
  return { index, count };
}

export const formatShard = (s: Shard) => `${s.index}/${s.count}`;

/** The cell's key: its kernel and object (NUL cannot occur in either name). */
export function cellKey(c: { kernel: string; object: string }): string {
  return `${c.kernel}\u0000${c.object}`;
}

const byKey = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The cells of shard `index` of `count` (1-based), in the order given. */
export function shardOf<T extends { kernel: string; object: string }>(
  cells: readonly T[],
  index: number,
  count: number,
): T[] {
  if (!Number.isInteger(index) || !Number.isInteger(count) || count < 1 || index < 1 || index > count) {
    throw new UsageError(`shard ${index}/${count}: expected i/n with 1 <= i <= n`);
  }
  const sorted = [...new Set(cells.map(cellKey))].sort(byKey);
  const mine = new Set(sorted.filter((_, k) => k % count === index - 1));
  return cells.filter((c) => mine.has(cellKey(c)));
}

/** A GitHub Actions job matrix: `strategy: { matrix: ${{ fromJSON(…) }} }`, one shard per job. */
export function githubMatrix(count: number): { include: { shard: string }[] } {
  if (!Number.isInteger(count) || count < 1) throw new UsageError(`shard count ${count}: expected n >= 1`);
  return {
    include: Array.from({ length: count }, (_, i) => ({ shard: formatShard({ index: i + 1, count }) })),
  };
}
