/**
 * The compiler axis before anything is built: toolchain images a matrix needs, the objects a source
 * stands for, and how the runner's plan names, filters and counts them.
 */
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { matrixImages } from '../container/images.js';
import { parseMatrix } from '../matrix/load.js';
import { matrixObjects, planRun } from '../run/plan.js';
import { compilerAxisObjects, onCompilerAxis } from './axis.js';
import { matrixToolchainImages, toolchainImageSpec } from './images.js';

const repo = path.resolve(import.meta.dirname, '..', '..');
const file = path.join(repo, 'matrix.yaml');
const COMPILERS = `compilers:
  - { name: old, suite: bookworm, clang: clang-14 }
  - { name: new, host: true, clang: clang-19 }
  - { name: old-again, suite: bookworm, clang: clang-14 }
  - { name: trixie, suite: trixie }
`;
const matrix = parseMatrix(
  `kernels: [{ name: a, suite: bookworm }, { name: b, suite: trixie }]\ncases: [cases/minimal.bpf.c, cases/kprobe.bpf.c, build/cases/tc.bpf.o]\n${COMPILERS}`,
  file,
);

describe('toolchain images', () => {
  test("a Debian compiler's image: that suite's clang package and libbpf's headers", () => {
    expect(toolchainImageSpec({ suite: 'bookworm', clang: 'clang-14' })).toEqual({
      name: 'toolchain-bookworm-clang-14',
      suite: 'bookworm',
      packages: ['clang-14', 'libbpf-dev'],
    });
  });

  test('one image per suite and clang, none for the host compiler; corematrix image build lists them', () => {
    const expected = ['toolchain-bookworm-clang-14', 'toolchain-trixie-clang'];
    expect(matrixToolchainImages(matrix).map((i) => i.name)).toEqual(expected);
    expect(matrixImages(matrix).map((i) => i.name)).toEqual(expected);
  });
});

describe('objects of the axis', () => {
  test('a source stands for one object per compiler, named <source>@<compiler>', () => {
    const source = path.join(repo, 'cases', 'minimal.bpf.c');
    expect(compilerAxisObjects(matrix, source).map((o) => [o.name, path.relative(repo, o.path)])).toEqual([
      ['cases/minimal.bpf.c@old', 'build/compilers/old/cases/minimal.bpf.o'],
      ['cases/minimal.bpf.c@new', 'build/compilers/new/cases/minimal.bpf.o'],
      ['cases/minimal.bpf.c@old-again', 'build/compilers/old-again/cases/minimal.bpf.o'],
      ['cases/minimal.bpf.c@trixie', 'build/compilers/trixie/cases/minimal.bpf.o'],
    ]);
    // Objects are used as they are; without compilers:, a source is build-cases.sh's object.
    const object = { kind: 'object' as const, path: path.join(repo, 'build', 'cases', 'tc.bpf.o') };
    expect(onCompilerAxis(matrix, object)).toEqual([object]);
    const plain = {
      kind: 'source' as const,
      path: source,
      object: path.join(repo, 'build/cases/minimal.bpf.o'),
    };
    expect(onCompilerAxis({ dir: repo }, plain)).toEqual([plain]);
  });

  test("in the run's plan: every compiler's object, the objects once, --case by source or compiler", () => {
    const names = matrixObjects(matrix).map((o) => [o.name, o.compiler]);
    expect(names).toEqual([
      ['build/cases/tc.bpf.o', undefined],
      ['cases/kprobe.bpf.c@new', 'new'],
      ['cases/kprobe.bpf.c@old', 'old'],
      ['cases/kprobe.bpf.c@old-again', 'old-again'],
      ['cases/kprobe.bpf.c@trixie', 'trixie'],
      ['cases/minimal.bpf.c@new', 'new'],
      ['cases/minimal.bpf.c@old', 'old'],
      ['cases/minimal.bpf.c@old-again', 'old-again'],
      ['cases/minimal.bpf.c@trixie', 'trixie'],
    ]);
    expect(planRun(matrix, { tier: 'static' }).cells).toHaveLength(2 * 9);
    expect(planRun(matrix, { cases: ['minimal'] }).objects.map((o) => o.name)).toHaveLength(4);
    expect(planRun(matrix, { cases: ['@trixie'] }).objects.map((o) => o.name)).toEqual([
      'cases/kprobe.bpf.c@trixie',
      'cases/minimal.bpf.c@trixie',
    ]);
  });
});
