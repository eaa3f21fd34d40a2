/**
 * buildCaseObjects with host toolchains (real clang-19 and clang-14 on this machine, no engine): the
 * objects are what scripts/build-cases.sh makes, a broken source is a finding naming clang's error,
 * builds are served from the content-keyed cache until an input changes, and a clang that does not
 * run is a matrix mistake at its line.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isMatrixError, type MatrixError, parseMatrix } from '../matrix/load.js';
import { parseBpfObject } from '../object/object.js';
import { compilerAxisObjects } from './axis.js';
import { buildCaseObjects } from './build.js';
import { buildErrorCells, reportObject } from './report.js';

const repo = path.resolve(import.meta.dirname, '..', '..');
const has = (cmd: string) => {
  try {
    execFileSync(cmd, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const clangs = has('clang-19') && has('clang-14');

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'corematrix-build-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const COMPILERS =
  'compilers:\n  - { name: new, host: true, clang: clang-19 }\n  - { name: old, host: true, clang: clang-14 }\n';

describe.skipIf(!clangs)('host toolchains (clang-19 and clang-14 on PATH)', () => {
  test("the case suite's objects are byte for byte build-cases.sh's (same flags, same paths)", async () => {
    const matrix = parseMatrix(
      `kernels: [{ name: k, host: true }]\ncases: [cases/minimal.bpf.c, cases/kprobe.bpf.c]\ncompilers: [{ name: host, host: true, clang: clang-19 }]\n`,
      path.join(repo, 'matrix.yaml'),
    );
    const built = await buildCaseObjects(matrix, { outDir: path.join(dir, 'suite') });
    expect(built.map((b) => [b.name, b.compiler, b.error])).toEqual([
      ['cases/minimal.bpf.c@host', 'host', undefined],
      ['cases/kprobe.bpf.c@host', 'host', undefined],
    ]);
    for (const b of built) {
      expect(b.path).toBe(path.join(dir, 'suite', 'host', 'cases', `${path.basename(b.source, '.c')}.o`));
      const theirs = readFileSync(path.join(repo, 'build', 'cases', path.basename(b.path!)));
      expect(readFileSync(b.path!).equals(theirs)).toBe(true);
    }
  });

  test('a project of one good, one broken source, each built with both compilers; then served from the cache', async () => {
    const project = path.join(dir, 'project');
    await mkdir(path.join(project, 'src', 'include'), { recursive: true });
    writeFileSync(path.join(project, 'src', 'include', 'common.h'), '#define ANSWER 42\n');
    writeFileSync(
      path.join(project, 'src', 'good.bpf.c'),
      '#include "common.h"\n__attribute__((section("tp/syscalls/sys_enter_getpid"), used))\nint good(void *ctx) { return ANSWER - 42; }\nchar LICENSE[] __attribute__((section("license"), used)) = "GPL";\n',
    );
    writeFileSync(
      path.join(project, 'src', 'broken.bpf.c'),
      '#include "common.h"\nint broken(void *ctx)\n{\n\treturn undeclared_thing;\n}\n',
    );
    const file = path.join(project, 'matrix.yaml');
    writeFileSync(file, `kernels: [{ name: k1, host: true }]\ncases: [src/*.bpf.c]\n${COMPILERS}`);
    const matrix = parseMatrix(readFileSync(file, 'utf8'), file);

    const t0 = performance.now();
    const first = await buildCaseObjects(matrix);
    const coldMs = performance.now() - t0;
    expect(first.map((b) => b.name)).toEqual([
      'src/broken.bpf.c@new',
      'src/broken.bpf.c@old',
      'src/good.bpf.c@new',
      'src/good.bpf.c@old',
    ]);
    expect(first.every((b) => !b.cached)).toBe(true);
    const [brokenNew, brokenOld, goodNew, goodOld] = first;
    // The error names the file relative to the matrix, its line and column, and clang's words.
    expect(brokenNew!.error).toBe(
      "src/broken.bpf.c:4:9: error: use of undeclared identifier 'undeclared_thing'",
    );
    expect(brokenOld!.error).toBe(brokenNew!.error);
    expect(brokenNew!.path).toBeUndefined();
    for (const g of [goodNew!, goodOld!]) {
      expect(g.path).toBe(path.join(project, 'build', 'compilers', g.compiler, 'src', 'good.bpf.o'));
      expect(
        parseBpfObject(new Uint8Array(readFileSync(g.path!)), { path: g.path! }).programs.map((p) => p.name),
      ).toEqual(['good']);
    }
    // Where the plan expects them before building: same names, same places.
    const planned = compilerAxisObjects(matrix, goodNew!.source);
    expect(planned).toEqual([
      { name: 'src/good.bpf.c@new', path: goodNew!.path, compiler: 'new' },
      { name: 'src/good.bpf.c@old', path: goodOld!.path, compiler: 'old' },
    ]);
    // Two compilers, two different objects (their DWARF names the producer).
    expect(goodNew!.sha256).not.toBe(goodOld!.sha256);

    // In the report: named per compiler; the broken source's cells are errors on every kernel.
    expect(reportObject(goodOld!)).toEqual({
      name: 'src/good.bpf.c@old',
      path: goodOld!.path,
      sha256: goodOld!.sha256,
      compiler: 'old',
    });
    expect(buildErrorCells(first, ['k1', 'k2'])).toEqual([
      {
        kernel: 'k1',
        object: 'src/broken.bpf.c@new',
        error: `does not compile with new: ${brokenNew!.error}`,
      },
      {
        kernel: 'k2',
        object: 'src/broken.bpf.c@new',
        error: `does not compile with new: ${brokenNew!.error}`,
      },
      {
        kernel: 'k1',
        object: 'src/broken.bpf.c@old',
        error: `does not compile with old: ${brokenOld!.error}`,
      },
      {
        kernel: 'k2',
        object: 'src/broken.bpf.c@old',
        error: `does not compile with old: ${brokenOld!.error}`,
      },
    ]);

    // Unchanged: everything from the cache, failures included, the same objects.
    const t1 = performance.now();
    const second = await buildCaseObjects(matrix);
    const warmMs = performance.now() - t1;
    expect(second.every((b) => b.cached)).toBe(true);
    expect(second.map(({ cached: _, ...b }) => b)).toEqual(first.map(({ cached: _, ...b }) => b));
    console.log(
      `host build of 2 sources x 2 compilers: ${Math.round(coldMs)} ms, from the cache ${Math.round(warmMs)} ms`,
    );

    // A header the sources include changes: both rebuilt, with both compilers.
    writeFileSync(path.join(project, 'src', 'include', 'common.h'), '#define ANSWER 43\n');
    const third = await buildCaseObjects(matrix);
    expect(third.map((b) => b.cached)).toEqual([false, false, false, false]);
    // The source fixed: it compiles now, and the good one comes from the cache.
    writeFileSync(path.join(project, 'src', 'broken.bpf.c'), 'int broken(void *ctx) { return 0; }\n');
    const fourth = await buildCaseObjects(matrix);
    expect(fourth.map((b) => [b.cached, b.error])).toEqual([
      [false, undefined],
      [false, undefined],
      [true, undefined],
      [true, undefined],
    ]);
  });

  test('sources: only those are built', async () => {
    const matrix = parseMatrix(
      `kernels: [{ name: k, host: true }]\ncases: [cases/minimal.bpf.c, cases/kprobe.bpf.c]\ncompilers: [{ name: host, host: true, clang: clang-19 }]\n`,
      path.join(repo, 'matrix.yaml'),
    );
    const only = path.join(repo, 'cases', 'kprobe.bpf.c');
    const built = await buildCaseObjects(matrix, { outDir: path.join(dir, 'only'), sources: [only] });
    expect(built.map((b) => b.name)).toEqual(['cases/kprobe.bpf.c@host']);
  });

  test('a damaged object in the cache is built again', async () => {
    const matrix = parseMatrix(
      `kernels: [{ name: k, host: true }]\ncases: [cases/minimal.bpf.c]\ncompilers: [{ name: host, host: true, clang: clang-19 }]\n`,
      path.join(repo, 'matrix.yaml'),
    );
    const outDir = path.join(dir, 'damaged');
    const [first] = await buildCaseObjects(matrix, { outDir });
    writeFileSync(first!.path!, 'not an object');
    const [again] = await buildCaseObjects(matrix, { outDir });
    expect(again!.cached).toBe(false);
    expect(again!.sha256).toBe(first!.sha256);
  });
});

describe('interrupted builds', () => {
  test('a clang killed by a signal is reported, not cached; temporary objects of dead builds are swept', async () => {
    const project = path.join(dir, 'killed');
    await mkdir(path.join(project, 'src'), { recursive: true });
    writeFileSync(path.join(project, 'src', 'a.bpf.c'), 'int a(void *ctx) { return 0; }\n');
    writeFileSync(
      path.join(project, 'killer'),
      '#!/bin/sh\ncase "$1" in --version) echo "fake clang 1.0";; *) kill -9 $$;; esac\n',
      {
        mode: 0o755,
      },
    );
    const file = path.join(project, 'matrix.yaml');
    writeFileSync(
      file,
      'kernels: [{ name: k, host: true }]\ncases: [src/*.bpf.c]\ncompilers: [{ name: k9, host: true, clang: ./killer }]\n',
    );
    const matrix = parseMatrix(readFileSync(file, 'utf8'), file);
    // A temporary object left by a process that is gone.
    const dead = spawnSync('true').pid!;
    const outDir = path.join(project, 'build', 'compilers', 'k9', 'src');
    await mkdir(outDir, { recursive: true });
    const stale = path.join(outDir, `.a.bpf.o.${dead}.0badf00d.tmp`);
    writeFileSync(stale, 'half an object');

    const [first] = await buildCaseObjects(matrix);
    expect(first!.error).toBe('clang was killed by SIGKILL');
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(path.join(outDir, 'a.bpf.o.build.json'))).toBe(false);
    const [again] = await buildCaseObjects(matrix);
    expect(again!.cached).toBe(false);
  });
});

describe('mistakes', () => {
  test('a host clang that is not there is the matrix line that names it', async () => {
    const file = path.join(dir, 'missing.yaml');
    const matrix = parseMatrix(
      `kernels: [{ name: k, host: true }]\ncases: [${repo}/cases/minimal.bpf.c]\ncompilers:\n  - { name: gone, host: true, clang: clang-does-not-exist }\n`,
      file,
    );
    const e = await buildCaseObjects(matrix).catch((e: unknown) => e);
    expect(isMatrixError(e)).toBe(true);
    expect((e as MatrixError).describe()).toBe(
      `${file}:4:5: compiler "gone": clang-does-not-exist not found on PATH`,
    );
  });

  test('without compilers: nothing to build', async () => {
    const matrix = parseMatrix(
      'kernels: [{ name: k, host: true }]\ncases: [cases/minimal.bpf.c]\n',
      path.join(repo, 'matrix.yaml'),
    );
    expect(await buildCaseObjects(matrix)).toEqual([]);
  });
});
