import { describe, expect, it } from 'vitest';
import { diffReports } from './diff.js';
import { renderDiffText } from './diff-text.js';
import { caseObjects, staticSuiteReport } from './fixture.js';
import type { Report, ReportCell, ReportProgram } from './schema.js';

const loads = (name: string): ReportProgram => ({
  name,
  section: 's',
  static: { verdict: 'loads', reasons: [], unknown: [] },
  relocations: [],
});
const rejected = (name: string, message: string): ReportProgram => ({
  name,
  section: 's',
  static: { verdict: 'rejected', reasons: [{ source: 'feature', message }], unknown: [] },
  relocations: [],
});

function report(kernels: string[], cells: ReportCell[]): Report {
  return {
    schemaVersion: 1,
    generatedAt: '2026-01-01T00:00:00.000Z',
    corematrix: { version: 'test' },
    run: { tiers: ['static', 'vm'], durationMs: 1 },
    kernels: kernels.map((name) => ({ name, source: 'test', arch: 'x86_64' })),
    objects: [{ name: 'a.o', path: 'a.o', sha256: '00' }],
    cells,
  };
}

describe('diffReports', () => {
  it('regressions, fixes, infra errors never counted, kernels added and removed', () => {
    const old = report(
      ['k1', 'k2', 'gone'],
      [
        {
          kernel: 'k1',
          object: 'a.o',
          status: 'failing',
          programs: [loads('p'), rejected('q', 'no ringbuf')],
        },
        { kernel: 'k2', object: 'a.o', status: 'ok', programs: [loads('p')] },
        { kernel: 'gone', object: 'a.o', status: 'ok', programs: [loads('p')] },
      ],
    );
    const now = report(
      ['k1', 'k2', 'new'],
      [
        {
          kernel: 'k1',
          object: 'a.o',
          status: 'failing',
          programs: [
            {
              ...loads('p'),
              vm: { verdict: 'rejected', cause: 'R1 invalid mem access' },
              disagreement: 'static predicted it loads',
            },
            loads('q'),
          ],
        },
        {
          kernel: 'k2',
          object: 'a.o',
          status: 'infra_error',
          infra: { reason: 'timeout', consoleTail: '' },
          programs: [{ ...rejected('p', 'x'), vm: { verdict: 'infra_error' } }],
        },
        { kernel: 'new', object: 'a.o', status: 'failing', programs: [rejected('p', 'x')] },
      ],
    );
    const d = diffReports(old, now);
    expect(d.regressions).toEqual([
      {
        kernel: 'k1',
        object: 'a.o',
        program: 'p',
        was: 'loads',
        now: 'failing',
        cause: 'R1 invalid mem access',
      },
    ]);
    expect(d.fixes).toEqual([
      { kernel: 'k1', object: 'a.o', program: 'q', was: 'failing', now: 'loads', cause: 'no ringbuf' },
    ]);
    expect(d.kernelsAdded).toEqual(['new']);
    expect(d.kernelsRemoved).toEqual(['gone']);
    // And back: the infra error is no fix either.
    expect(diffReports(now, old).fixes.map((f) => f.program)).toEqual(['p']);
  });

  it('an object libbpf now refuses is a regression of the object; new needs-guard fields are listed', () => {
    const old = report(['k'], [{ kernel: 'k', object: 'a.o', status: 'ok', programs: [loads('p')] }]);
    const now = report(
      ['k'],
      [
        {
          kernel: 'k',
          object: 'a.o',
          status: 'error',
          error: 'ambiguous relocation',
          programs: [loads('p')],
        },
      ],
    );
    expect(diffReports(old, now).regressions).toEqual([
      {
        kernel: 'k',
        object: 'a.o',
        program: '(object)',
        was: 'loads',
        now: 'error',
        cause: 'ambiguous relocation',
      },
    ]);
    const guard: ReportProgram = {
      ...rejected('p', 'CO-RE relocation struct s.f failed'),
      relocations: [
        {
          section: 's',
          index: 0,
          function: 'p',
          insn: 1,
          kind: 'byte_off',
          access: 'struct s.f',
          spec: '0:1',
          result: 'poisoned',
          classification: 'needs-guard',
          fix: 'guard it',
        },
      ],
    };
    const ng = report(['k'], [{ kernel: 'k', object: 'a.o', status: 'needs-guard', programs: [guard] }]);
    const d = diffReports(old, ng);
    expect(d.newNeedsGuard).toEqual([
      { kernel: 'k', object: 'a.o', program: 'p', access: 'struct s.f', fix: 'guard it' },
    ]);
    expect(d.regressions.map((r) => [r.program, r.now])).toEqual([['p', 'needs-guard']]);
    expect(diffReports(ng, ng).newNeedsGuard).toEqual([]);
  });

  it('newly failing expectations: failed now, and passed, skipped or absent before', () => {
    const base = report(['k'], []);
    const x = (name: string, status: 'passed' | 'failed' | 'skipped', source = 'm.yaml:3') =>
      ({
        name,
        source,
        status,
        ...(status === 'failed' ? { message: `${name} broke\nsecond line` } : {}),
      }) as const;
    const old: Report = {
      ...base,
      expectations: [
        x('still', 'failed'),
        x('was-ok', 'passed'),
        x('was-skipped', 'skipped'),
        x('moved', 'failed'),
      ],
    };
    const now: Report = {
      ...base,
      expectations: [
        x('still', 'failed'),
        x('was-ok', 'failed'),
        x('was-skipped', 'failed'),
        x('moved', 'failed', 'other.case.ts'),
        x('new', 'failed'),
        x('fine', 'passed'),
      ],
    };
    const d = diffReports(old, now);
    expect(d.newlyFailingExpectations.map((e) => `${e.source} ${e.name}`)).toEqual([
      'm.yaml:3 was-ok',
      'm.yaml:3 was-skipped',
      'other.case.ts moved',
      'm.yaml:3 new',
    ]);
    expect(diffReports(now, now).newlyFailingExpectations).toEqual([]);
    // A report with no expectations (an older corematrix's) fails none of them.
    expect(diffReports(now, base).newlyFailingExpectations).toEqual([]);
    const text = renderDiffText(d);
    expect(text).toContain('4 expectations newly failing:\n  was-ok (m.yaml:3): was-ok broke\n');
  });

  it.skipIf(caseObjects().length === 0)(
    'the case suite: no change against itself; bullseye → sid as a baseline',
    async () => {
      const r = await staticSuiteReport();
      const none = diffReports(r, r);
      expect([
        none.regressions,
        none.fixes,
        none.newNeedsGuard,
        none.kernelsAdded,
        none.kernelsRemoved,
      ]).toEqual([[], [], [], [], []]);
      // Pretend the bullseye cells were sid's last night: what sid fixes and breaks relative to 5.10.
      const only = (k: string): Report => ({
        ...r,
        kernels: r.kernels.filter((x) => x.name === k).map((x) => ({ ...x, name: 'nightly' })),
        cells: r.cells.filter((c) => c.kernel === k).map((c) => ({ ...c, kernel: 'nightly' })),
      });
      const d = diffReports(only('debian-bullseye-5.10'), only('debian-sid'));
      expect(d.fixes.length + d.regressions.length).toBeGreaterThan(0);
      for (const c of [...d.fixes, ...d.regressions]) expect(c.kernel).toBe('nightly');
    },
  );
});
