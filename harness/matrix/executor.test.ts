/** matrix.yaml's `executor:` key: local by default, container on request, anything else refused where it is written. */
import { describe, expect, it } from 'vitest';
import { isMatrixError, parseMatrix } from './load.js';

const base = 'kernels:\n  - name: bookworm\n    suite: bookworm\ncases:\n  - build/cases/*.bpf.o\n';
const parse = (text: string) => parseMatrix(text, '/work/m.yaml', { checkCases: false });

describe('executor', () => {
  it('is local unless the matrix says container', () => {
    expect(parse(base).executor).toBe('local');
    expect(parse(`${base}executor: local\n`).executor).toBe('local');
    expect(parse(`${base}executor: container\n`).executor).toBe('container');
  });

  it('anything else: FILE:LINE:COL and what is allowed', () => {
    let error: unknown;
    try {
      parse(`${base}executor: docker\n`);
    } catch (e) {
      error = e;
    }
    expect(isMatrixError(error)).toBe(true);
    expect((error as Error & { describe(): string }).describe()).toBe(
      '/work/m.yaml:6:11: executor: expected local or container (where the VMs run), got "docker"',
    );
  });
});
