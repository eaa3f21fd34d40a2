import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { essentialName, essentialNamesEqual, hasEssentialNameOf } from './names.js';

// Cases follow libbpf's bpf_core_essential_name_len (libbpf.c): the separator is the last
// "X___Y" where X and Y are not underscores.
describe('essentialName', () => {
  test.each([
    ['task_struct', 'task_struct'],
    ['task_struct___old', 'task_struct'],
    ['a___b___c', 'a___b'],
    ['foo___', 'foo___'],
    ['foo____bar', 'foo____bar'],
    ['___foo', '___foo'],
    ['_a___b', '_a'],
    ['a___b', 'a'],
    ['x___1', 'x'],
    ['', ''],
    ['ab', 'ab'],
  ])('%s → %s', (name, expected) => {
    expect(essentialName(name)).toBe(expected);
  });

  test('flavors of one type are equal, different types are not, in both directions', () => {
    const pairs: [string, string, boolean][] = [
      ['task_struct___old', 'task_struct', true],
      ['task_struct___old', 'task_struct___new', true],
      ['task_struct', 'task_struc', false],
      ['request', 'request_queue', false],
      ['foo___', 'foo', false],
    ];
    for (const [a, b, equal] of pairs) {
      expect(essentialNamesEqual(a, b)).toBe(equal);
      expect(essentialNamesEqual(b, a)).toBe(equal);
    }
  });
});

describe('hasEssentialNameOf', () => {
  test('answers as essentialNamesEqual, for names made of flavor separators and letters', () => {
    const name = fc.stringMatching(/^[ab_]{0,9}$/);
    fc.assert(
      fc.property(name, name, (a, b) => {
        expect(hasEssentialNameOf(a)(b)).toBe(essentialNamesEqual(a, b));
      }),
      { numRuns: 5000 },
    );
    expect(hasEssentialNameOf('x___old')('x___new')).toBe(true);
    expect(hasEssentialNameOf('x___old')('xy')).toBe(false);
  });
});
