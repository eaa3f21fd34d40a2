import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { type Invocation, type MainIo, parseArguments } from './main.js';
import { plainRelocateArguments } from './relocate-args.js';

const quietIo: MainIo = {
  stdout: { write: () => undefined, flush: () => undefined },
  stderr: () => undefined,
};

/**
 * What commander makes of a command line the plain parser accepted: the same line with its one
 * `--btf FILE` written `--btf=FILE`, a form only commander reads (and reads as the same option).
 */
async function commanderReading(argv: string[]): Promise<Invocation | undefined | number> {
  const at = argv.indexOf('--btf');
  const viaCommander = [...argv.slice(0, at), `--btf=${argv[at + 1]}`, ...argv.slice(at + 2)];
  expect(plainRelocateArguments(viaCommander)).toBeUndefined();
  return parseArguments(viaCommander, quietIo);
}

describe('plainRelocateArguments: relocate without loading commander', () => {
  test('objects in order, the BTF, --json anywhere', () => {
    expect(plainRelocateArguments(['relocate', 'a.o', '--btf', '/sys/kernel/btf/vmlinux'])).toEqual({
      objects: ['a.o'],
      btf: '/sys/kernel/btf/vmlinux',
      modules: [],
      json: false,
    });
    expect(plainRelocateArguments(['relocate', '--json', 'b.o', '--btf', 'k.btf', 'a.o'])).toEqual({
      objects: ['b.o', 'a.o'],
      btf: 'k.btf',
      modules: [],
      json: true,
    });
  });

  test.each([
    [['relocate', 'a.o']],
    [['relocate', '--btf', 'k.btf']],
    [['relocate', 'a.o', '--btf']],
    [['relocate', 'a.o', '--btf', '-k.btf']],
    [['relocate', 'a.o', '--btf=k.btf']],
    [['relocate', 'a.o', '--btf', 'k.btf', '--btf', 'j.btf']],
    [['relocate', 'a.o', '--btf', 'k.btf', '--json', '--json']],
    [['relocate', 'a.o', '--btf', 'k.btf', '-o', 'out.o']],
    [['relocate', 'a.o', '--btf', 'k.btf', '--base', 'vmlinux']],
    [['relocate', 'a.o', '--btf', 'k.btf', '--module', 'm.ko']],
    [['relocate', 'a.o', '--btf', 'k.btf', '--help']],
    [['relocate', '--', 'a.o', '--btf', 'k.btf']],
    [['relocate', '-', '--btf', 'k.btf']],
    [['obj', 'dump', 'a.o', '--btf', 'k.btf']],
    [['--version', 'relocate', 'a.o', '--btf', 'k.btf']],
  ])('leaves %j to commander', (argv) => {
    expect(plainRelocateArguments(argv)).toBeUndefined();
  });

  test('whatever it accepts, commander reads the same way', async () => {
    const word = fc.oneof(
      fc.constantFrom('relocate', 'btf', 'json', '', ' ', 'a b.o', 'é.o'),
      fc.stringMatching(/^[-a-z./=]{1,6}$/),
    );
    const option = fc.constantFrom('--btf', '--json', '-o', '--base', '--module', '--', '-', '--help', '-V');
    // A line is made of units (an object, `--btf VALUE`, `--json`, a stray token) in any order.
    const units = fc
      .record({
        objects: fc.array(
          word.map((w) => [w]),
          { maxLength: 3 },
        ),
        btf: fc.array(
          word.map((w) => ['--btf', w]),
          { maxLength: 2 },
        ),
        json: fc.array(fc.constant(['--json']), { maxLength: 2 }),
        stray: fc.array(
          fc.oneof(option, word).map((w) => [w]),
          { maxLength: 1 },
        ),
      })
      .chain(({ objects, btf, json, stray }) => {
        const all = [...objects, ...btf, ...json, ...stray];
        return fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length });
      });
    const line = units.map((parts) => ['relocate', ...parts.flat()]);
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(line, async (argv) => {
        const plain = plainRelocateArguments(argv);
        if (plain === undefined) return;
        accepted++;
        expect(await commanderReading(argv)).toEqual({ command: 'relocate', options: plain });
      }),
      { numRuns: 1000 },
    );
    // The property says something only if many lines were accepted.
    expect(accepted).toBeGreaterThan(100);
  });
});
