/**
 * What `corematrix run` calls before running a plan with a compiler axis: the sources of the
 * planned objects (after --case and --shard) built with each compiler, and one line saying so.
 */

import path from 'node:path';
import type { Matrix } from '../matrix/load.js';
import { type BuiltObject, buildCaseObjects } from './build.js';

/** Builds the planned objects' sources when the matrix has `compilers:`; [] when it has none. */
export async function buildRunObjects(
  matrix: Matrix,
  planned: readonly { source?: string; compiler?: string }[],
  log: (line: string) => void,
): Promise<BuiltObject[]> {
  if (matrix.compilers === undefined) return [];
  const sources = [
    ...new Set(
      planned
        .filter((o) => o.compiler !== undefined && o.source !== undefined)
        .map((o) => path.resolve(matrix.dir, o.source!)),
    ),
  ];
  if (sources.length === 0) return [];
  const t0 = performance.now();
  const built = await buildCaseObjects(matrix, { sources });
  log(buildSummary(built, Math.round(performance.now() - t0)));
  return built;
}

/** `compilers: 36 object(s) from 18 source(s) × 2 compiler(s), 30 from the cache, 3 do not compile (1.2 s)` */
export function buildSummary(built: readonly BuiltObject[], ms: number): string {
  const sources = new Set(built.map((b) => b.source)).size;
  const compilers = new Set(built.map((b) => b.compiler)).size;
  const cached = built.filter((b) => b.cached).length;
  const failed = built.filter((b) => b.error !== undefined).length;
  return `compilers: ${built.length} object(s) from ${sources} source(s) × ${compilers} compiler(s), ${cached} from the cache, ${failed} do not compile (${(ms / 1000).toFixed(1)} s)`;
}
