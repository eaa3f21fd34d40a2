/**
 * The flags a compiler-axis build uses are scripts/build-cases.sh's (read out of the script by bash
 * itself), and the line a failed build is reported by is clang's first error.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { compileArgs, firstErrorLine } from './flags.js';

const repo = path.resolve(import.meta.dirname, '..', '..');

/** build-cases.sh's COMMON_FLAGS array, as bash expands it. */
function scriptFlags(): string[] {
  const script = `eval "$(sed -n '/^COMMON_FLAGS=(/,/)$/p' scripts/build-cases.sh)"; printf '%s\\n' "\${COMMON_FLAGS[@]}"`;
  return execFileSync('bash', ['-c', script], { cwd: repo, encoding: 'utf8' }).trim().split('\n');
}

describe('compile flags', () => {
  test("are build-cases.sh's for the case suite: -target bpf, COMMON_FLAGS, -c SRC -o OUT", () => {
    const flags = scriptFlags();
    expect(flags).toContain('-Icases/include');
    expect(
      compileArgs({ source: 'cases/a.bpf.c', output: 'out/a.bpf.o', includeDirs: ['cases/include'] }),
    ).toEqual(['-target', 'bpf', ...flags, '-c', 'cases/a.bpf.c', '-o', 'out/a.bpf.o']);
  });
});

describe('the first error line', () => {
  test('a diagnostic, its path relative to the matrix directory', () => {
    const log = [
      '/src/proj/cases/b.bpf.c:3:1: warning: something [-Wfoo]',
      "/src/proj/cases/b.bpf.c:7:2: error: use of undeclared identifier 'nope'",
      '    7 |         nope();',
      '1 warning and 1 error generated.',
    ].join('\n');
    expect(firstErrorLine(log, 'exited with status 1', '/src/proj')).toBe(
      "cases/b.bpf.c:7:2: error: use of undeclared identifier 'nope'",
    );
  });

  test("clang 14's backend error on bpf_core_type_matches, before its stack dump", () => {
    const log =
      'fatal error: error in backend: Incorrect flag for llvm.bpf.preserve.type.info intrinsic\nPLEASE submit a bug report to …\nStack dump:\n';
    expect(firstErrorLine(log, 'exited with status 1')).toBe(
      'fatal error: error in backend: Incorrect flag for llvm.bpf.preserve.type.info intrinsic',
    );
  });

  test('colours are dropped; without any output, the exit status', () => {
    expect(
      firstErrorLine('\x1b[1mx.c:1:1: \x1b[0;31merror: \x1b[0mbad\x1b[0m\n', 'exited with status 1'),
    ).toBe('x.c:1:1: error: bad');
    expect(firstErrorLine('', 'was killed by SIGKILL')).toBe('clang was killed by SIGKILL');
  });
});
