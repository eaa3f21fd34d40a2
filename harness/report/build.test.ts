import { describe, expect, it } from 'vitest';
import type { ProgramStatic } from '../analysis/verdict.js';
import type { RelocationRecord } from '../core/relocate.js';
import type { CellResult, ProgramVerdict } from '../vm/cell.js';
import { buildReport, type CellInput } from './build.js';
import { caseObjects, staticSuiteReport } from './fixture.js';
import { ReportSchema } from './schema.js';

function record(over: Partial<RelocationRecord> = {}): RelocationRecord {
  return {
    section: 'kprobe/x',
    index: 0,
    function: 'prog',
    insn: 3,
    kind: 'byte_off',
    access: 'struct task_struct.__state',
    spec: '0:1',
    localSpec: '<byte_off> [1] struct task_struct.__state (0:1 @ offset 24)',
    targetSpec: undefined,
    result: 'poisoned',
    relo: {} as RelocationRecord['relo'],
    ...over,
  };
}

function stat(over: Partial<ProgramStatic> = {}): ProgramStatic {
  return {
    object: 'a.o',
    program: 'prog',
    section: 'kprobe/x',
    kernel: 'k1',
    verdict: 'loads',
    reasons: [],
    unknown: ['verifier'],
    features: [],
    poisoned: 0,
    relocations: [],
    ...over,
  };
}

const needsGuard = stat({
  verdict: 'rejected',
  reasons: [
    { source: 'guard', message: 'CO-RE relocation struct task_struct.__state failed; fix: guard it' },
  ],
  relocations: [{ record: record(), status: 'needs-guard', fix: 'guard it' }],
  poisoned: 1,
});

function vmProgram(over: Partial<ProgramVerdict> = {}): ProgramVerdict {
  return {
    object: 'a.o',
    program: 'prog',
    section: 'kprobe/x',
    verdict: 'loaded',
    logHead: '',
    log: '',
    cause: 'ok',
    ...over,
  };
}

function vmCell(programs: ProgramVerdict[], over: Partial<CellResult> = {}): CellResult {
  return {
    kernel: 'k1',
    release: '6.1',
    status: 'ok',
    phases: { plan: 1, boot: 900, load: 40, vm: 1000, total: 1001 },
    programs,
    ...over,
  };
}

function one(c: Omit<CellInput, 'kernel' | 'object'>) {
  const report = buildReport({
    corematrixVersion: 'test',
    generatedAt: '2026-01-01T00:00:00.000Z',
    tiers: ['static', 'vm'],
    durationMs: 1,
    kernels: [{ name: 'k1', source: 'test', arch: 'x86_64' }],
    objects: [{ name: 'a.o', path: 'a.o', sha256: '00' }],
    cells: [{ kernel: 'k1', object: 'a.o', ...c }],
  });
  expect(ReportSchema.safeParse(report).success).toBe(true);
  return report.cells[0]!;
}

describe('cell status', () => {
  it('ok: every program loads; relocations keep their classification and values as decimal strings', () => {
    const cell = one({
      static: [
        stat({
          relocations: [{ record: record({ result: 'patched', old: 24n, new: 3120n }), status: 'resolved' }],
        }),
      ],
    });
    expect(cell.status).toBe('ok');
    expect(cell.programs[0]?.relocations[0]).toMatchObject({
      classification: 'resolved',
      old: '24',
      new: '3120',
    });
  });

  it('needs-guard: the only failures are unguarded CO-RE accesses, with their fix', () => {
    const cell = one({ static: [needsGuard, stat({ program: 'other' })] });
    expect(cell.status).toBe('needs-guard');
    expect(cell.programs[0]?.relocations[0]?.fix).toBe('guard it');
  });

  it('failing beats needs-guard when another program fails for another reason', () => {
    const other = stat({
      program: 'other',
      verdict: 'rejected',
      reasons: [{ source: 'feature', message: 'no ringbuf' }],
    });
    expect(one({ static: [needsGuard, other] }).status).toBe('failing');
  });

  it('the VM verdict decides over the static prediction, and a disagreement is marked', () => {
    const cell = one({
      static: [stat()],
      vm: vmCell([
        vmProgram({ verdict: 'rejected', errno: 13, errnoName: 'EACCES', cause: 'R1 invalid mem access' }),
      ]),
    });
    expect(cell.status).toBe('failing');
    expect(cell.programs[0]?.vm).toMatchObject({
      verdict: 'rejected',
      errno: 13,
      cause: 'R1 invalid mem access',
    });
    expect(cell.programs[0]?.disagreement).toMatch(
      /static predicted it loads, the VM rejected it: R1 invalid/,
    );
    expect(cell.timings).toEqual({ bootMs: 900, loadMs: 40 });
  });

  it('a VM rejection by a poisoned CO-RE call is needs-guard', () => {
    const cell = one({
      static: [needsGuard],
      vm: vmCell([
        vmProgram({
          verdict: 'rejected',
          cause: 'invalid func unknown#195896080 at insn 3 → failed CO-RE relocation x on a reachable path',
        }),
      ]),
    });
    expect(cell.status).toBe('needs-guard');
    expect(cell.programs[0]?.disagreement).toBeUndefined();
  });

  it('infra_error beats failing (the truth is unknown); error beats everything', () => {
    const infra = vmCell([vmProgram({ verdict: 'infra_error', cause: 'timeout' })], {
      status: 'infra_error',
      infra: { kind: 'timeout', reason: 'timed out', consoleTail: 'tail', attempts: 2 },
    });
    const cell = one({ static: [needsGuard], vm: infra });
    expect(cell.status).toBe('infra_error');
    expect(cell.infra).toEqual({ reason: 'timed out', consoleTail: 'tail' });
    expect(cell.programs[0]?.disagreement).toBeUndefined();
    const refused = stat({
      relocations: [{ record: record({ result: 'error', message: 'ambiguous' }), status: 'error' }],
    });
    const e = one({ static: [refused], vm: infra });
    expect(e.status).toBe('error');
    expect(e.error).toMatch(/struct task_struct.__state.*ambiguous/);
    expect(
      one({
        vm: vmCell([vmProgram({ program: '*', verdict: 'refused-before-load', cause: 'not a BPF object' })]),
      }),
    ).toMatchObject({ status: 'error', error: 'not a BPF object', programs: [] });
  });

  it('VM only: records are placed by entry function and classified by the VM verdict', () => {
    const cell = one({
      vm: vmCell([vmProgram(), vmProgram({ object: 'b.o', program: 'elsewhere' })]),
      records: [record(), record({ function: 'sub', result: 'patched' })],
    });
    expect(cell.programs.map((p) => p.name)).toEqual(['prog']);
    expect(cell.programs[0]?.relocations).toHaveLength(1);
    expect(cell.programs[0]?.relocations[0]?.classification).toBe('guarded');
  });
});

describe.skipIf(caseObjects().length === 0)(
  'the case suite × the default Debian kernels, static tier',
  () => {
    it('validates against the schema, one cell per kernel × object, every status explained', async () => {
      const report = await staticSuiteReport();
      const parsed = ReportSchema.safeParse(report);
      expect(parsed.success, JSON.stringify(parsed.error?.issues.slice(0, 3))).toBe(true);
      expect(report.kernels.map((k) => k.name)).toEqual([
        'debian-bullseye-5.10',
        'debian-bookworm-6.1',
        'debian-trixie-6.12',
        'debian-sid',
      ]);
      expect(report.cells).toHaveLength(report.kernels.length * report.objects.length);
      const statuses = new Set(report.cells.map((c) => c.status));
      expect(statuses.has('ok')).toBe(true);
      expect(statuses.has('needs-guard') || statuses.has('failing')).toBe(true);
      for (const c of report.cells) {
        if (c.status === 'failing' || c.status === 'needs-guard') {
          expect(c.programs.some((p) => p.static?.verdict === 'rejected')).toBe(true);
        }
        if (c.status === 'needs-guard') {
          expect(
            c.programs
              .flatMap((p) => p.relocations)
              .some((r) => r.classification === 'needs-guard' && r.fix !== undefined),
          ).toBe(true);
        }
      }
      // kernel_changes reads a field removed in newer kernels without a guard somewhere.
      const kc = report.cells.filter((c) => c.object.endsWith('kernel_changes.bpf.o'));
      expect(kc.map((c) => c.status)).toContain('needs-guard');
    });
  },
);
