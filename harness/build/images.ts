/**
 * The toolchain image of a Debian compiler of the matrix: that suite's clang package and libbpf's
 * headers (libbpf-dev; libc6-dev and the kernel's uapi headers come with clang and it). Pure.
 */

import type { ImageSpec } from '../container/image.js';
import type { CompilerDecl, Matrix } from '../matrix/load.js';

export type DebianCompiler = Extract<CompilerDecl, { kind: 'debian' }>;

/** One image per suite and clang package (`toolchain-bookworm-clang-14`), whatever the compiler's name. */
export function toolchainImageSpec(c: Pick<DebianCompiler, 'suite' | 'clang'>): ImageSpec {
  return { name: `toolchain-${c.suite}-${c.clang}`, suite: c.suite, packages: [c.clang, 'libbpf-dev'] };
}

/** The toolchain images a matrix's `compilers:` needs, each once, in the matrix's order. */
export function matrixToolchainImages(matrix: Pick<Matrix, 'compilers'>): ImageSpec[] {
  const specs = (matrix.compilers ?? [])
    .filter((c): c is DebianCompiler => c.kind === 'debian')
    .map(toolchainImageSpec);
  return specs.filter((s, i) => specs.findIndex((o) => o.name === s.name) === i);
}
