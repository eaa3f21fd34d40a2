import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isParseError } from '../errors.js';
import { expandGlob } from './glob.js';
import { isMatrixError, loadMatrix, type MatrixError } from './load.js';
import { matrixJsonSchema } from './schema.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
let dir: string;
let count = 0;

beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'corematrix-matrix-'));
  mkdirSync(path.join(dir, 'objs', 'sub'), { recursive: true });
  for (const f of ['a.bpf.o', 'b.bpf.o', 'sub/c.bpf.o', 'notes.txt', 'src.bpf.c', '.hidden.bpf.o']) {
    writeFileSync(path.join(dir, 'objs', f), '');
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes `text` as a matrix file in the temp directory and loads it. */
function load(text: string, options = {}) {
  const file = path.join(dir, `m${count++}.yaml`);
  writeFileSync(file, text);
  return loadMatrix(file, options);
}

/** The error loading `text` gives: its line, column and message. */
function problem(text: string): { line: number; column: number; message: string; describe: string } {
  try {
    load(text);
  } catch (e) {
    expect(isMatrixError(e)).toBe(true);
    expect(isParseError(e)).toBe(true);
    const m = e as MatrixError;
    expect(m.format).toBe('config');
    return { line: m.line, column: m.column, message: m.reason, describe: m.describe() };
  }
  throw new Error('the matrix loaded');
}

const CASES = 'cases: [objs/*.bpf.o]\n';

describe('matrix.yaml mistakes: line, column, what was expected', () => {
  test('the one-line description is FILE:LINE:COLUMN: message', () => {
    const p = problem(`kernels:\n  - name: a\n    suite: bookworm\n    verison: "6.1"\n${CASES}`);
    expect(p.describe).toMatch(/^\/.*\/m\d+\.yaml:4:5: unknown key "verison"/);
  });

  test('unknown key in a kernel, with did-you-mean', () => {
    const p = problem(`kernels:\n  - name: a\n    suite: bookworm\n    verison: "6.1"\n${CASES}`);
    expect(p).toMatchObject({ line: 4, column: 5 });
    expect(p.message).toContain('unknown key "verison" in kernels[0] (did you mean "version"?)');
    expect(p.message).toContain('expected one of: name, suite, flavor, version, package');
  });

  test('unknown key at the top, with did-you-mean; far-off keys get no suggestion', () => {
    let p = problem(`kernel:\n  - name: a\n    suite: sid\n${CASES}`);
    expect(p).toMatchObject({ line: 1, column: 1 });
    expect(p.message).toContain('unknown key "kernel" in the matrix (did you mean "kernels"?)');
    p = problem(`kernels:\n  - name: a\n    suite: sid\n${CASES}flibbertigibbet: 1\n`);
    expect(p).toMatchObject({ line: 5, column: 1 });
    expect(p.message).not.toContain('did you mean');
  });

  test('unknown key in timeouts and in a case mapping', () => {
    let p = problem(`kernels: [{name: a, suite: sid}]\n${CASES}timeouts:\n  boot: 10\n  lod: 5\n`);
    expect(p).toMatchObject({ line: 5, column: 3 });
    expect(p.message).toContain('unknown key "lod" in timeouts (did you mean "load"?)');
    p = problem(`kernels: [{name: a, suite: sid}]\ncases:\n  - path: objs/*.bpf.o\n    program: [x]\n`);
    expect(p).toMatchObject({ line: 4, column: 5 });
    expect(p.message).toContain('unknown key "program" in cases[0] (did you mean "programs"?)');
  });

  test('a version written as a number: expected a string, quote it', () => {
    const p = problem(`kernels:\n  - name: a\n    suite: bookworm\n    version: 6.10\n${CASES}`);
    expect(p).toMatchObject({ line: 4, column: 14 });
    expect(p.message).toBe('kernels[0].version: expected a string, got the number 6.10 (quote it: "6.10")');
  });

  test('wrong types: kernels not a list, concurrency not an integer, tiers a string', () => {
    let p = problem(`kernels: {name: a}\n${CASES}`);
    expect(p).toMatchObject({ line: 1, column: 10 });
    expect(p.message).toBe('kernels: expected a list, got a mapping');
    p = problem(`kernels: [{name: a, suite: sid}]\n${CASES}concurrency: 2.5\n`);
    expect(p).toMatchObject({ line: 3, column: 14 });
    expect(p.message).toBe('concurrency: expected an integer, got the number 2.5');
    p = problem(`kernels: [{name: a, suite: sid}]\n${CASES}tiers: static\n`);
    expect(p).toMatchObject({ line: 3, column: 8 });
    expect(p.message).toBe('tiers: expected a list, got "static"');
  });

  test('out of range: concurrency 0, a negative timeout', () => {
    let p = problem(`kernels: [{name: a, suite: sid}]\n${CASES}concurrency: 0\n`);
    expect(p).toMatchObject({ line: 3, column: 14 });
    expect(p.message).toBe('concurrency: expected at least 1, got the number 0');
    p = problem(`kernels: [{name: a, suite: sid}]\n${CASES}timeouts: {boot: -3}\n`);
    expect(p).toMatchObject({ line: 3, column: 18 });
    expect(p.message).toContain('timeouts.boot: expected at least 0');
  });

  test('missing name', () => {
    const p = problem(`kernels:\n  - suite: sid\n${CASES}`);
    expect(p).toMatchObject({ line: 2, column: 5 });
    expect(p.message).toBe('missing key name: in kernels[0] (expected a string)');
  });

  test('a kernel name used twice points at the second', () => {
    const p = problem(`kernels:\n  - name: a\n    suite: sid\n  - name: a\n    suite: trixie\n${CASES}`);
    expect(p).toMatchObject({ line: 4, column: 5 });
    expect(p.message).toBe('kernel name "a" is used twice (first by kernel 1)');
  });

  test('a kernel with no source', () => {
    const p = problem(`kernels:\n  - name: lonely\n${CASES}`);
    expect(p).toMatchObject({ line: 2, column: 5 });
    expect(p.message).toContain('kernel "lonely" has no source: give suite: (Debian)');
  });

  test('a kernel with two sources points at the second', () => {
    let p = problem(`kernels:\n  - name: a\n    suite: sid\n    btf: ./x.btf\n${CASES}`);
    expect(p).toMatchObject({ line: 4, column: 5 });
    expect(p.message).toContain('kernel "a" has two sources: Debian (suite:) and local files (btf:)');
    p = problem(`kernels:\n  - name: a\n    host: true\n    suite: sid\n${CASES}`);
    expect(p).toMatchObject({ line: 4, column: 5 });
    expect(p.message).toContain('kernel "a" has two sources: host: true and suite:');
  });

  test('a Debian kernel without suite, with both version and package; local config alone', () => {
    let p = problem(`kernels:\n  - name: a\n    flavor: amd64\n${CASES}`);
    expect(p).toMatchObject({ line: 3, column: 5 });
    expect(p.message).toContain('a Debian kernel needs suite:');
    p = problem(
      `kernels:\n  - name: a\n    suite: sid\n    version: "6.1"\n    package: linux-image-6.1.0-1-amd64\n${CASES}`,
    );
    expect(p).toMatchObject({ line: 5, column: 5 });
    expect(p.message).toContain('give version: (newest matching) or package: (exact), not both');
    p = problem(`kernels:\n  - name: a\n    config: ./config\n${CASES}`);
    expect(p).toMatchObject({ line: 3, column: 5 });
    expect(p.message).toContain('local files need vmlinuz:, vmlinux: or btf: besides config:');
  });

  test('bad enum values: a tier, host: false', () => {
    let p = problem(`kernels: [{name: a, suite: sid}]\n${CASES}tiers: [static, vmm]\n`);
    expect(p).toMatchObject({ line: 3, column: 17 });
    expect(p.message).toBe('tiers[1]: expected one of static, vm, got "vmm" (did you mean vm?)');
    p = problem(`kernels:\n  - name: a\n    host: false\n${CASES}`);
    expect(p).toMatchObject({ line: 3, column: 11 });
    expect(p.message).toContain('kernels[0].host: expected true (leave host out for other kernels)');
  });

  test('a tier listed twice', () => {
    const p = problem(`kernels: [{name: a, suite: sid}]\n${CASES}tiers: [static, static]\n`);
    expect(p).toMatchObject({ line: 3, column: 17 });
    expect(p.message).toBe('tier static is listed twice');
  });

  test('malformed names: a suite with capitals, a package that is no image', () => {
    let p = problem(`kernels:\n  - name: a\n    suite: Bookworm\n${CASES}`);
    expect(p).toMatchObject({ line: 3, column: 12 });
    expect(p.message).toContain('expected a Debian suite name such as bookworm');
    p = problem(`kernels:\n  - name: a\n    suite: sid\n    package: linux-headers-6.1\n${CASES}`);
    expect(p).toMatchObject({ line: 4, column: 14 });
    expect(p.message).toContain('expected an image package name');
  });

  test('a case glob that matches nothing', () => {
    const p = problem(`kernels: [{name: a, suite: sid}]\ncases:\n  - objs/*.bpf.o\n  - nowhere/*.o\n`);
    expect(p).toMatchObject({ line: 4, column: 5 });
    expect(p.message).toContain('case glob "nowhere/*.o" matches no file under');
    expect(p.message).toContain('run bash scripts/build-cases.sh first');
  });

  test('a case glob in a mapping that matches something not an object or source', () => {
    const p = problem(`kernels: [{name: a, suite: sid}]\ncases:\n  - path: objs/*\n`);
    expect(p).toMatchObject({ line: 3, column: 11 });
    expect(p.message).toContain('matches objs/notes.txt, which is neither a BPF object');
  });

  test('a case that is neither a glob nor a mapping', () => {
    const p = problem(`kernels: [{name: a, suite: sid}]\ncases:\n  - 42\n`);
    expect(p).toMatchObject({ line: 3, column: 5 });
    expect(p.message).toBe('cases[0]: expected a glob or a mapping with path:, got the number 42');
  });

  test('YAML syntax errors and duplicate keys carry the position', () => {
    let p = problem(`kernels:\n  - name: a\n   suite: [sid\n`);
    expect(p.message).toMatch(/^YAML: /);
    expect(p.line).toBeGreaterThanOrEqual(3);
    p = problem(`kernels: [{name: a, suite: sid}]\n${CASES}reports: a\nreports: b\n`);
    expect(p).toMatchObject({ line: 4, column: 1 });
    expect(p.message).toContain('YAML: Map keys must be unique');
  });

  test('an empty file', () => {
    const p = problem('');
    expect(p).toMatchObject({ line: 1, column: 1 });
    expect(p.message).toContain('expected a mapping');
  });

  test('all problems are kept, the first by position reported', () => {
    try {
      load(`kernels:\n  - name: a\n    sute: sid\n${CASES}tiers: [x]\n`);
    } catch (e) {
      const m = e as MatrixError;
      // No "kernel has no source" at 2:5: the misspelled suite explains it.
      expect(m.problems.map((p) => [p.line, p.column])).toEqual([
        [3, 5],
        [5, 9],
      ]);
      expect(m.reason).toContain('(and 1 more)');
      return;
    }
    throw new Error('the matrix loaded');
  });
});

describe('valid matrices', () => {
  test('every source, defaults and resolved paths', () => {
    const m = load(
      `kernels:
  - name: deb
    suite: bookworm
    version: "6.1"
  - name: exact
    suite: sid
    flavor: amd64
    package: linux-image-6.1.0-1-amd64
  - name: mine
    btf: k/btf
    config: k/config
  - name: me
    host: true
    vmlinuz: /boot/vmlinuz
cases:
  - objs/**/*.bpf.o
  - path: objs/src.bpf.c
    programs: [handle]
    expect: [{ loads: all }]
`,
    );
    expect(m.kernels).toEqual([
      {
        kind: 'debian',
        name: 'deb',
        at: { line: 2, column: 5 },
        suite: 'bookworm',
        flavor: 'cloud-amd64',
        version: '6.1',
      },
      {
        kind: 'debian',
        name: 'exact',
        at: { line: 5, column: 5 },
        suite: 'sid',
        flavor: 'amd64',
        package: 'linux-image-6.1.0-1-amd64',
      },
      {
        kind: 'local',
        name: 'mine',
        at: { line: 9, column: 5 },
        btf: path.join(dir, 'k/btf'),
        config: path.join(dir, 'k/config'),
      },
      { kind: 'host', name: 'me', at: { line: 12, column: 5 }, vmlinuz: '/boot/vmlinuz' },
    ]);
    expect(m.cases[0]!.files).toEqual(
      ['a.bpf.o', 'b.bpf.o', 'sub/c.bpf.o'].map((f) => ({ kind: 'object', path: path.join(dir, 'objs', f) })),
    );
    expect(m.cases[1]).toMatchObject({
      pattern: 'objs/src.bpf.c',
      programs: ['handle'],
      expect: [{ kind: 'loads', kernels: { kind: 'all' }, text: 'every program loads on all kernels' }],
      files: [
        {
          kind: 'source',
          path: path.join(dir, 'objs/src.bpf.c'),
          object: path.join(dir, 'build/cases/src.bpf.o'),
        },
      ],
    });
    expect(m.tiers).toEqual(['static', 'vm']);
    expect(m.timeouts).toEqual({ boot: 120, load: 30 });
    expect(m.reports).toBe(path.join(dir, 'reports'));
    expect(m.concurrency).toBeGreaterThanOrEqual(1);
  });

  test('checkCases: false accepts globs that match nothing yet', () => {
    const m = load(`kernels: [{name: a, suite: sid}]\ncases: [not-built/*.o]\n`, { checkCases: false });
    expect(m.cases[0]!.files).toEqual([]);
  });

  test("the repository's matrix.yaml validates and its globs match the built case suite", () => {
    execFileSync('bash', [path.join(repo, 'scripts', 'build-cases.sh')], { stdio: 'ignore' });
    const m = loadMatrix(path.join(repo, 'matrix.yaml'));
    expect(m.kernels.map((k) => [k.name, k.kind])).toEqual([
      ['bullseye', 'debian'],
      ['bookworm', 'debian'],
      ['trixie', 'debian'],
      ['sid', 'debian'],
      ['host', 'host'],
    ]);
    expect(m.kernels.filter((k) => k.kind === 'debian').map((k) => [k.suite, k.version, k.flavor])).toEqual([
      ['bullseye', '5.10', 'cloud-amd64'],
      ['bookworm', '6.1', 'cloud-amd64'],
      ['trixie', '6.12', 'cloud-amd64'],
      ['sid', undefined, 'cloud-amd64'],
    ]);
    const objects = m.cases.flatMap((c) => c.files.map((f) => path.relative(repo, f.path)));
    const sources = expandGlob('cases/*.bpf.c', repo).map((f) => `build/cases/${path.basename(f, '.c')}.o`);
    // Entries with expectations name objects the glob holds too: each object counts once.
    expect([...new Set(objects)].sort()).toEqual(sources.sort());
  });

  test('the JSON Schema names every key', () => {
    const schema = JSON.stringify(matrixJsonSchema());
    for (const key of [
      'kernels',
      'cases',
      'tiers',
      'concurrency',
      'timeouts',
      'reports',
      'suite',
      'vmlinuz',
      'host',
      'programs',
    ]) {
      expect(schema).toContain(`"${key}"`);
    }
  });
});

describe('globs', () => {
  test.each([
    ['objs/*.bpf.o', ['a.bpf.o', 'b.bpf.o']],
    ['objs/**/*.bpf.o', ['a.bpf.o', 'b.bpf.o', 'sub/c.bpf.o']],
    ['objs/{a,b}.bpf.o', ['a.bpf.o', 'b.bpf.o']],
    ['objs/[ab].bpf.o', ['a.bpf.o', 'b.bpf.o']],
    ['objs/[!a].bpf.o', ['b.bpf.o']],
    ['objs/?.bpf.o', ['a.bpf.o', 'b.bpf.o']],
    ['objs/.*.bpf.o', ['.hidden.bpf.o']],
    ['objs/sub/c.bpf.o', ['sub/c.bpf.o']],
    ['objs/*.bpf.x', []],
  ])('%s', (pattern, expected) => {
    expect(expandGlob(pattern, dir)).toEqual(expected.map((f) => path.join(dir, 'objs', f)));
  });
});
