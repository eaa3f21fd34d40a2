/**
 * The names and places of the compiler axis' objects, known before anything is built (pure): the
 * runner plans and shards cells with them, and buildCaseObjects writes to those places.
 */

import path from 'node:path';
import type { CaseFile, Matrix } from '../matrix/load.js';

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

/** A case file, or a source's object on the compiler axis (its name and compiler set). */
export type AxisCaseFile =
  | CaseFile
  | (Extract<CaseFile, { kind: 'source' }> & { name: string; compiler: string });

/**
 * A case file as the runner plans it: an object, or a C source standing for build-cases.sh's object
 * without `compilers:`, or for one object per compiler with it.
 */
export function onCompilerAxis(matrix: Pick<Matrix, 'dir' | 'compilers'>, f: CaseFile): AxisCaseFile[] {
  if (f.kind !== 'source') return [f];
  const axis = compilerAxisObjects(matrix, f.path);
  if (axis.length === 0) return [f];
  return axis.map((a) => ({
    kind: 'source',
    path: f.path,
    object: a.path,
    name: a.name,
    compiler: a.compiler,
  }));
}
