/**
 * The names and places of the compiler axis' objects, known before anything is built (pure): the
 * runner plans and shards cells with them, and buildCaseObjects writes to those places.
 */

import path from 'node:path';
import type { Matrix } from '../matrix/load.js';

/** Where objects go unless told otherwise: `build/compilers/` under the matrix's directory. */
export function defaultOutDir(matrix: Pick<Matrix, 'dir'>): string {
  return path.join(matrix.dir, 'build', 'compilers');
}

/** A path as reports name it: relative to the matrix directory when under it, else absolute. */
export function relativeName(file: string, dir: string): string {
  const rel = path.relative(dir, file);
  return rel.startsWith('..') || path.isAbsolute(rel) ? file : rel;
}

/** Where a source's object goes in a compiler's directory: its path under the matrix directory, `.c` → `.o`. */
export function objectPathFor(compilerDir: string, relative: string): string {
  const inside = path.isAbsolute(relative) ? path.join('_abs', relative) : relative;
  return path.join(compilerDir, inside.replace(/\.c$/, '.o'));
}

export interface AxisObject {
  /** `<source>@<compiler>`, e.g. `cases/minimal.bpf.c@clang-14`. */
  name: string;
  /** Where its object is (or will be) once built. */
  path: string;
  compiler: string;
}

/**
 * The objects a C source of the matrix stands for on its compiler axis, one per compiler in the
 * matrix's order; none without `compilers:` (the source then stands for build-cases.sh's object).
 */
export function compilerAxisObjects(
  matrix: Pick<Matrix, 'dir' | 'compilers'>,
  source: string,
  outDir = defaultOutDir(matrix),
): AxisObject[] {
  const relative = relativeName(source, matrix.dir);
  return (matrix.compilers ?? []).map((c) => ({
    name: `${relative}@${c.name}`,
    path: objectPathFor(path.join(path.resolve(outDir), c.name), relative),
    compiler: c.name,
  }));
}
