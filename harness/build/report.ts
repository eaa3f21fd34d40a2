/**
 * The compiler axis in report.json's terms (pure): each built object is a report object named
 * `<source>@<compiler>` with its `compiler`; a source that did not compile with a toolchain has
 * an `error` cell on every kernel, naming the compiler and clang's first error line.
 */

import type { CellInput } from '../report/build.js';
import type { ReportObject } from '../report/schema.js';
import type { BuiltObject } from './build.js';

export function reportObject(b: BuiltObject): ReportObject {
  return { name: b.name, path: b.path ?? b.source, sha256: b.sha256, compiler: b.compiler };
}

/** Why a cell of an object that did not compile is `error`. */
export function buildError(b: BuiltObject): string | undefined {
  return b.error === undefined ? undefined : `does not compile with ${b.compiler}: ${b.error}`;
}

/** The cells of the objects that did not compile: one `error` cell per kernel. */
export function buildErrorCells(built: readonly BuiltObject[], kernels: readonly string[]): CellInput[] {
  return built.flatMap((b) => {
    const error = buildError(b);
    return error === undefined ? [] : kernels.map((kernel) => ({ kernel, object: b.name, error }));
  });
}
