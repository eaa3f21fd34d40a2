/**
 * The cell plan of a run (pure): from a loaded matrix and the command line's filters, the kernels,
 * the objects (case globs already expanded by loadMatrix, `programs:` subsets merged), and the
 * cells — kernel × object — with the tiers each runs, sliced by `--shard` (report/shard.ts).
 *
 * A kernel runs the vm tier only when it has an image to boot (Debian; local or host with
 * `vmlinuz:`); the running kernel is static only. `--tier` narrows the matrix's tiers; a kernel
 * left with no tier to run is not in the plan.
 */

import path from 'node:path';
import { onCompilerAxis } from '../build/axis.js';
import { UsageError } from '../errors.js';
import { matchesGlob } from '../matrix/glob.js';
import { findKernel } from '../matrix/kernels.js';
import type { CaseExpectation, KernelDecl, Matrix, Tier } from '../matrix/load.js';
import { type Shard, shardOf } from '../report/shard.js';

export interface RunFilters {
  /** `--tier`: static, vm or all (default: the matrix's tiers). */
  tier?: 'static' | 'vm' | 'all';
  /** `--kernel`: only these kernels (names of the matrix). */
  kernels?: readonly string[];
  /** `-t/--case`: only objects whose name contains a pattern, or matches it as a glob. */
  cases?: readonly string[];
  shard?: Shard;
}

export interface PlannedKernel {
  name: string;
  decl: KernelDecl;
  /** The tiers this kernel runs in this run. */
  tiers: Tier[];
}

export interface PlannedObject {
  /** The name reports use: the path relative to the matrix's directory (absolute when outside it). */
  name: string;
  /** Absolute path of the object. */
  path: string;
  /** The C source it is built from, when the matrix named the source. */
  source?: string;
  /** The toolchain of the matrix's `compilers:` that builds it (harness/build); its name is `<source>@<compiler>`. */
  compiler?: string;
  /** Only these programs (the union of the case entries' `programs:`); undefined: all. */
  programs?: string[];
  /** The expectations of the case entries that matched it. */
  expect: CaseExpectation[];
}

export interface PlannedCell {
  kernel: string;
  object: string;
  tiers: Tier[];
}

export interface RunPlan {
  /** The tiers of the run (the matrix's, narrowed by --tier). */
  tiers: Tier[];
  /** The run's kernels, in the matrix's order (a shard's too: see planRun). */
  kernels: PlannedKernel[];
  /** The run's objects, sorted by name (a shard's too). */
  objects: PlannedObject[];
  /** In kernel, then object order; a shard's slice of them under --shard. */
  cells: PlannedCell[];
  shard?: Shard;
}

/** The tiers a kernel can run in: vm needs an image. */
export function kernelTiers(decl: KernelDecl): Tier[] {
  const bootable = decl.kind === 'debian' || decl.vmlinuz !== undefined;
  return bootable ? ['static', 'vm'] : ['static'];
}

/** Whether an object's name is picked by a `--case` pattern: contains it, or matches it as a glob. */
export function caseMatches(pattern: string, object: PlannedObject): boolean {
  const names = [object.name, ...(object.source === undefined ? [] : [object.source])];
  return names.some((n) => n.includes(pattern) || matchesGlob(pattern, n) || matchesGlob(`**/${pattern}`, n));
}

/** A file as reports name it: relative to the matrix's directory when inside it, else absolute. */
export function reportName(dir: string, file: string): string {
  const rel = path.relative(dir, file);
  return rel === '' || rel.startsWith('..') || path.isAbsolute(rel) ? file : rel;
}

/** The objects of the matrix: every case glob's files, each once, `programs:` and `expect:` merged. */
export function matrixObjects(matrix: Matrix): PlannedObject[] {
  const byPath = new Map<string, PlannedObject & { all: boolean }>();
  for (const c of matrix.cases) {
    for (const f of c.files.flatMap((file) => onCompilerAxis(matrix, file))) {
      const file = f.kind === 'object' ? f.path : f.object;
      let o = byPath.get(file);
      if (o === undefined) {
        o = {
          name: 'name' in f ? f.name : reportName(matrix.dir, file),
          path: file,
          expect: [],
          all: false,
        };
        if (f.kind === 'source') o.source = reportName(matrix.dir, f.path);
        if ('compiler' in f) o.compiler = f.compiler;
        byPath.set(file, o);
      }
      if (c.programs === undefined) o.all = true;
      else o.programs = [...new Set([...(o.programs ?? []), ...c.programs])];
      o.expect.push(...(c.expect ?? []));
    }
  }
  return [...byPath.values()]
    .map(({ all, ...o }) => {
      if (all) delete o.programs;
      return o;
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function planRun(matrix: Matrix, filters: RunFilters = {}): RunPlan {
  const tiers: Tier[] =
    filters.tier === 'all'
      ? ['static', 'vm']
      : filters.tier === undefined
        ? [...matrix.tiers]
        : [filters.tier];
  for (const name of filters.kernels ?? []) findKernel(matrix.kernels, name, matrix.file);
  const wanted =
    filters.kernels === undefined || filters.kernels.length === 0 ? undefined : new Set(filters.kernels);
  const kernels = matrix.kernels
    .filter((k) => wanted === undefined || wanted.has(k.name))
    .map((decl) => ({ name: decl.name, decl, tiers: kernelTiers(decl).filter((t) => tiers.includes(t)) }))
    .filter((k) => k.tiers.length > 0);

  let objects = matrixObjects(matrix);
  const patterns = filters.cases ?? [];
  if (patterns.length > 0) {
    objects = objects.filter((o) => patterns.some((p) => caseMatches(p, o)));
    if (objects.length === 0) {
      throw new UsageError(
        `--case ${patterns.map((p) => JSON.stringify(p)).join(' ')}: no object of the matrix matches`,
        { file: matrix.file },
      );
    }
  }
  let cells: PlannedCell[] = kernels.flatMap((k) =>
    objects.map((o) => ({ kernel: k.name, object: o.name, tiers: [...k.tiers] })),
  );
  if (filters.shard !== undefined) cells = shardOf(cells, filters.shard.index, filters.shard.count);
  // A shard keeps the whole run's kernels and objects (its report lists them all, so merged shards
  // list them in the unsharded order), and only its slice of the cells.
  const plan: RunPlan = {
    tiers: tiers.filter((t) => kernels.some((k) => k.tiers.includes(t))),
    kernels,
    objects,
    cells,
  };
  if (filters.shard !== undefined) plan.shard = filters.shard;
  return plan;
}

/** `corematrix plan --format text`: each shard's cells, one line per cell. */
export function formatShardPlan(matrix: Matrix, count: number): string {
  const lines: string[] = [];
  for (let index = 1; index <= count; index++) {
    const plan = planRun(matrix, { shard: { index, count } });
    lines.push(`shard ${index}/${count}: ${plan.cells.length} cell(s)`);
    for (const c of plan.cells) lines.push(`  ${c.kernel}  ${c.object}  (${c.tiers.join(', ')})`);
  }
  return `${lines.join('\n')}\n`;
}
