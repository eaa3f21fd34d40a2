/**
 * Expectations — the grammar (matrix/expect.ts) and their evaluation (run/expect.ts) — on the
 * static report of the real case suite × the four default Debian kernels (report/fixture.ts:
 * clang-built objects, Debian's BTF), and on cells of it changed the way a VM fault changes them.
 */

import { beforeAll, describe, expect, test } from 'vitest';
import {
  type Expectation,
  parseExpectEntry,
  parseKernelSelector,
  releaseMatches,
  versionNumbers,
} from '../matrix/expect.js';
import { staticSuiteReport } from '../report/fixture.js';
import type { Report } from '../report/schema.js';
import { essentialAccess, evaluateExpectation, kernelVersion } from './expect.js';

const KC = 'build/cases/kernel_changes.bpf.o';
let report: Report;

beforeAll(async () => {
  report = await staticSuiteReport();
}, 300_000);

/** The expectations one entry states (the entry must be valid). */
function entry(raw: Record<string, unknown>): Expectation[] {
  const parsed = parseExpectEntry(raw);
  if ('problems' in parsed) throw new Error(parsed.problems.map((p) => p.message).join('; '));
  return parsed.expectations;
}

function evaluate(raw: Record<string, unknown>, objects = [KC]) {
  return entry(raw).map((e) => evaluateExpectation(e, objects, report));
}

describe('the grammar', () => {
  test('kernel selectors: all, names, release comparisons (every clause must hold)', () => {
    expect(parseKernelSelector('all')).toEqual({ kind: 'all' });
    expect(parseKernelSelector('bookworm')).toEqual({ kind: 'names', names: ['bookworm'] });
    expect(parseKernelSelector(['sid', 'trixie', 'sid'])).toEqual({
      kind: 'names',
      names: ['sid', 'trixie'],
    });
    expect(parseKernelSelector('>= 5.10, < 6.1')).toEqual({
      kind: 'release',
      clauses: [
        { op: '>=', version: [5, 10] },
        { op: '<', version: [6, 1] },
      ],
    });
    expect(parseKernelSelector('>=5.10 <6.1')).toEqual(parseKernelSelector('>= 5.10, < 6.1'));
    expect(parseKernelSelector('=> 5.14')).toMatch(/"=> 5.14" is not a release comparison/);
    expect(parseKernelSelector(5.14)).toMatch(/the number 5.14 \(quote a release comparison: ">= 5.14"\)/);
    expect(parseKernelSelector([])).toMatch(/got an empty list/);
    expect(parseKernelSelector(['ok', 'not a name'])).toMatch(
      /"not a name" in the list is not a kernel name/,
    );
  });

  test('release comparisons compare the components written', () => {
    const at = (text: string, version: string) => {
      const s = parseKernelSelector(text);
      if (typeof s === 'string' || s.kind !== 'release') throw new Error(String(s));
      return releaseMatches(s.clauses, versionNumbers(version)!);
    };
    expect(at('>= 5.14', '5.14.21')).toBe(true);
    expect(at('< 5.14', '5.14.21')).toBe(false);
    expect(at('< 5.14', '5.10.223-1')).toBe(true);
    expect(at('= 6.1', '6.1.176-1')).toBe(true);
    expect(at('== 6.12', '6.1.176')).toBe(false);
    expect(at('!= 6.1', '6.12.117')).toBe(true);
    expect(at('> 6.1', '6.1.176')).toBe(false);
    expect(at('> 6.1.100', '6.1.176')).toBe(true);
    expect(at('<= 6.1', '6.1.176')).toBe(true);
    expect(at('>= 5.10, < 6.1', '6.0.9')).toBe(true);
    expect(at('>= 5.10, < 6.1', '6.1.0')).toBe(false);
  });

  test('one entry, one task per assertion, each named as it reads', () => {
    expect(entry({ programs: ['a', 'b'], loads: '>= 5.14', rejected: '< 5.14' }).map((e) => e.text)).toEqual([
      'a, b loads on kernels >= 5.14',
      'a, b rejected on kernels < 5.14',
    ]);
    expect(entry({ status: 'ok', on: ['sid'] }).map((e) => e.text)).toEqual(['status ok on sid']);
    expect(entry({ field: 'struct  request.rq_disk', not: ['needs-guard', 'error'] })[0]).toMatchObject({
      kind: 'field',
      field: 'struct request.rq_disk',
      not: ['needs-guard', 'error'],
      kernels: { kind: 'all' },
      text: 'struct request.rq_disk not needs-guard or error on all kernels',
    });
    expect(entry({ name: 'starters load', loads: 'all' })[0]!.text).toBe('starters load');
  });

  test.each([
    [{}, 'an expectation needs loads:, rejected:, status: or field:'],
    [{ status: 'fine' }, 'status: expected ok, needs-guard, failing, error or a list of them, got "fine"'],
    [{ status: 'infra_error' }, 'status: expected ok, needs-guard, failing, error'],
    [{ status: 'ok', programs: ['x'] }, 'programs: a status is about the whole cell'],
    [{ field: 'rq_disk', is: 'guarded' }, 'field: expected an access as report.json names it'],
    [{ field: 'struct request.rq_disk' }, 'field: needs is: or not:'],
    [{ field: 'struct request.rq_disk', is: 'fine' }, 'is: expected resolved, guarded, needs-guard, error'],
    [{ loads: 'all', on: 'all' }, 'on: goes with status: or field:'],
    [{ loads: 'all', is: 'guarded' }, 'is: goes with field:'],
    [{ status: 'ok', field: 'struct a.b', is: 'resolved' }, 'give status: or field: in one entry, not both'],
    [{ loads: 'all', programs: [] }, 'programs: expected a list of program (function) names'],
  ])('%j is refused: %s', (raw, message) => {
    const parsed = parseExpectEntry(raw);
    expect('problems' in parsed && parsed.problems.map((p) => p.message).join('\n')).toContain(message);
  });
});

describe('evaluation on the case suite × Debian kernels (static tier)', () => {
  test('kernel versions come from the Debian package version, else the release', () => {
    expect(report.kernels.map((k) => kernelVersion(k)?.slice(0, 2).join('.'))).toEqual([
      '5.10',
      '6.1',
      '6.12',
      '7.2',
    ]);
    expect(kernelVersion({ name: 'h', source: 'host', arch: 'x86_64', release: '6.18.44-fc' })).toEqual([
      6, 18, 44,
    ]);
  });

  test('task_struct.state → __state (5.14): the variants load and fail where the change says', () => {
    const [loads, rejected] = evaluate({
      programs: ['task_state_new_only'],
      loads: '>= 5.14',
      rejected: '< 5.14',
    });
    expect(loads).toMatchObject({ state: 'met', failures: [], checked: 3 });
    expect(rejected).toMatchObject({ state: 'met', failures: [], checked: 1 });
    const [portable] = evaluate({ programs: ['task_state_portable', 'rq_disk_portable'], loads: 'all' });
    expect(portable).toMatchObject({ state: 'met', checked: 4 });
  });

  test('a wrong expectation is unmet, naming the kernel, program and the relocation that broke it', () => {
    const [r] = evaluate({ programs: ['task_state_new_only'], loads: 'all' });
    expect(r!.state).toBe('unmet');
    expect(r!.failures).toHaveLength(1);
    expect(r!.failures[0]).toMatch(
      /^debian-bullseye-5\.10: build\/cases\/kernel_changes\.bpf\.o task_state_new_only is rejected: the static tier predicts rejected: CO-RE relocation struct task_struct\.__state \(byte_off/,
    );
    const [wrongWay] = evaluate({ programs: ['task_state_old_only'], loads: '>= 5.14' });
    expect(wrongWay!.failures.map((f) => f.split(':')[0])).toEqual([
      'debian-bookworm-6.1',
      'debian-trixie-6.12',
      'debian-sid',
    ]);
  });

  test('a program the object does not have is a failure, not a pass', () => {
    const [r] = evaluate({ programs: ['no_such_program'], rejected: 'all' });
    expect(r!.state).toBe('unmet');
    expect(r!.failures[0]).toBe(
      'debian-bullseye-5.10: build/cases/kernel_changes.bpf.o has no program no_such_program',
    );
  });

  test('status of the cell', () => {
    expect(evaluate({ status: 'needs-guard', on: 'all' })[0]).toMatchObject({ state: 'met', checked: 4 });
    const [ok] = evaluate({ status: 'ok', on: ['debian-sid'] });
    expect(ok).toMatchObject({
      state: 'unmet',
      failures: ['debian-sid: build/cases/kernel_changes.bpf.o is needs-guard, not ok'],
    });
  });

  test('fields: flavored accesses match by essential name; the worst relocation of the field counts', () => {
    expect(essentialAccess('struct request___pre517.rq_disk')).toBe('struct request.rq_disk');
    expect(essentialAccess('struct task_struct.__state')).toBe('struct task_struct.__state');
    // rq_disk_portable: field_exists (resolved) and the guarded read (guarded) past 5.17.
    const [guarded] = evaluate({
      field: 'struct request.rq_disk',
      programs: ['rq_disk_portable'],
      is: 'guarded',
      on: '>= 5.17',
    });
    expect(guarded).toMatchObject({ state: 'met', checked: 3 });
    const [resolved] = evaluate({
      field: 'struct request.rq_disk',
      programs: ['rq_disk_portable'],
      is: 'resolved',
      on: '< 5.17',
    });
    expect(resolved).toMatchObject({ state: 'met', checked: 1 });
    const [old] = evaluate({
      field: 'struct request.rq_disk',
      programs: ['rq_disk_old_only'],
      not: 'needs-guard',
      on: 'all',
    });
    expect(old!.state).toBe('unmet');
    expect(old!.failures).toHaveLength(3);
    expect(old!.failures[0]).toMatch(
      /^debian-bookworm-6\.1: build\/cases\/kernel_changes\.bpf\.o rq_disk_old_only: struct request\.rq_disk is needs-guard \(byte_off, rq_disk_old_only insn \d+; fix: /,
    );
  });

  test('a field no checked program relocates fails instead of holding for nothing', () => {
    const [r] = evaluate({ field: 'struct task_struct.no_such_field', is: 'resolved' });
    expect(r!.state).toBe('unmet');
    expect(r!.failures).toEqual([
      'no CO-RE relocation of struct task_struct.no_such_field in the programs of build/cases/kernel_changes.bpf.o',
    ]);
  });

  test('infra errors say nothing: such cells are skipped, and with none left the expectation is unknown', () => {
    const faulted: Report = {
      ...report,
      cells: report.cells.map((c) =>
        c.kernel === 'debian-bullseye-5.10'
          ? { ...c, status: 'infra_error', infra: { reason: 'kernel panic', consoleTail: '' } }
          : c,
      ),
    };
    const [e] = entry({ programs: ['task_state_new_only'], rejected: '< 5.14' });
    const r = evaluateExpectation(e!, [KC], faulted);
    expect(r).toMatchObject({ state: 'unknown', checked: 0, failures: [] });
    expect(r.skipped).toEqual([`debian-bullseye-5.10: ${KC}: infra error (kernel panic)`]);
    // The other kernels are still checked.
    const [all] = entry({ programs: ['task_state_new_only'], loads: 'all' });
    expect(evaluateExpectation(all!, [KC], faulted)).toMatchObject({ state: 'met', checked: 3 });
  });

  test('kernels and objects absent from the report (filtered, another shard) are not checked', () => {
    const [e] = entry({ programs: ['task_state_new_only'], loads: ['not-in-this-run'] });
    expect(evaluateExpectation(e!, [KC], report)).toMatchObject({ state: 'unknown', checked: 0 });
    const [f] = entry({ loads: 'all' });
    expect(evaluateExpectation(f!, ['build/cases/not-here.bpf.o'], report).state).toBe('unknown');
  });
});
