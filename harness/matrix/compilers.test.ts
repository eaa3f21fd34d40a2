/**
 * The `compilers:` key of matrix.yaml: the toolchains it declares, and each mistake reported at its
 * line and column like every other key.
 */
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { isMatrixError, type MatrixError, parseMatrix } from './load.js';
import { matrixJsonSchema } from './schema.js';

const FILE = '/project/matrix.yaml';
const HEAD = 'kernels: [{ name: k, suite: bookworm }]\ncases: [cases/*.bpf.c]\n';

function parse(compilers: string) {
  return parseMatrix(`${HEAD}${compilers}`, FILE, { checkCases: false });
}

function problem(compilers: string): { line: number; column: number; message: string; describe: string } {
  try {
    parse(compilers);
  } catch (e) {
    expect(isMatrixError(e)).toBe(true);
    const m = e as MatrixError;
    return { line: m.line, column: m.column, message: m.reason, describe: m.describe() };
  }
  throw new Error('the matrix loaded');
}

describe('compilers: toolchains', () => {
  test('a Debian suite clang and the host clang, in order, with positions', () => {
    const m = parse(
      'compilers:\n  - { name: clang-14, suite: bookworm, clang: clang-14 }\n  - name: host\n    host: true\n    clang: clang-19\n',
    );
    expect(m.compilers).toEqual([
      { kind: 'debian', name: 'clang-14', suite: 'bookworm', clang: 'clang-14', at: { line: 4, column: 5 } },
      { kind: 'host', name: 'host', clang: 'clang-19', at: { line: 5, column: 5 } },
    ]);
  });

  test('defaults: the suite default clang package, the host clang on PATH; a host path is relative to the matrix', () => {
    const m = parse(
      'compilers:\n  - { name: d, suite: trixie }\n  - { name: h, host: true }\n  - { name: p, host: true, clang: tools/bin/clang }\n',
    );
    expect(m.compilers?.map((c) => [c.kind, c.clang])).toEqual([
      ['debian', 'clang'],
      ['host', 'clang'],
      ['host', '/project/tools/bin/clang'],
    ]);
  });

  test('without compilers: the matrix has no compiler axis', () => {
    expect(parseMatrix(HEAD, FILE, { checkCases: false }).compilers).toBeUndefined();
  });

  test('the JSON Schema has the key', () => {
    const schema = matrixJsonSchema() as { properties: Record<string, unknown> };
    expect(JSON.stringify(schema.properties.compilers)).toContain('"clang"');
  });
});

describe('compilers: mistakes, at FILE:LINE:COLUMN', () => {
  test('an unknown key, with did-you-mean', () => {
    const p = problem('compilers:\n  - name: a\n    suite: bookworm\n    clangs: clang-14\n');
    expect(p.describe).toMatch(
      /^\/project\/matrix\.yaml:6:5: unknown key "clangs" in compilers\[0\] \(did you mean "clang"\?\)/,
    );
    expect(p.message).toContain('expected one of: name, suite, clang, host');
  });

  test('no source', () => {
    const p = problem('compilers:\n  - name: lonely\n    clang: clang-14\n');
    expect(p).toMatchObject({ line: 4, column: 5 });
    expect(p.message).toBe(
      'compiler "lonely" has no source: give suite: (a Debian suite\'s clang, in a container) or host: true',
    );
  });

  test('two sources point at suite:', () => {
    const p = problem('compilers:\n  - name: both\n    host: true\n    suite: bookworm\n');
    expect(p).toMatchObject({ line: 6, column: 5 });
    expect(p.message).toContain('compiler "both" has two sources');
  });

  test('a Debian clang that is not a clang package', () => {
    const p = problem('compilers:\n  - { name: x, suite: bookworm, clang: /usr/bin/clang }\n');
    expect(p).toMatchObject({ line: 4, column: 33 });
    expect(p.message).toContain('clang or clang-N (e.g. clang-14), got "/usr/bin/clang"');
  });

  test('a name used twice', () => {
    const p = problem('compilers:\n  - { name: c, host: true }\n  - { name: c, suite: sid }\n');
    expect(p).toMatchObject({ line: 5, column: 7 });
    expect(p.message).toBe('compiler name "c" is used twice (first by compiler 1)');
  });

  test('a bad name, a bad suite, host: false, an empty list, not a list', () => {
    expect(problem('compilers:\n  - { name: "a b", host: true }\n').message).toContain(
      'compilers[0].name: expected a name of letters, digits',
    );
    expect(problem('compilers:\n  - { name: a, suite: Bookworm }\n').message).toContain(
      'expected a Debian suite name',
    );
    expect(problem('compilers:\n  - { name: a, host: false }\n').message).toContain('expected true');
    expect(problem('compilers: []\n')).toMatchObject({
      line: 3,
      column: 12,
      message: 'compilers: expected at least one compiler (or leave compilers out), got a list',
    });
    expect(problem('compilers: clang-14\n').message).toBe('compilers: expected a list, got "clang-14"');
  });
});

describe('compilers: with the cases', () => {
  test('case globs that match no C source are a mistake at compilers:', () => {
    const repo = path.resolve(import.meta.dirname, '..', '..');
    const text = `kernels: [{ name: k, host: true }]\ncases: [build/cases/minimal.bpf.o]\ncompilers: [{ name: h, host: true }]\n`;
    const file = path.join(repo, 'matrix.yaml');
    let error: unknown;
    try {
      parseMatrix(text, file);
    } catch (e) {
      error = e;
    }
    expect(isMatrixError(error)).toBe(true);
    expect((error as MatrixError).describe()).toBe(
      `${file}:3:1: compilers: builds the C sources (.c) among the cases, and the case globs match none`,
    );
    // With a source among them, it loads.
    const ok = parseMatrix(
      text.replace('build/cases/minimal.bpf.o', 'build/cases/minimal.bpf.o, cases/minimal.bpf.c'),
      file,
    );
    expect(ok.compilers).toHaveLength(1);
  });
});
