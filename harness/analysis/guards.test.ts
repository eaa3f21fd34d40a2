import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Btf } from '../btf/btf.js';
import { POISON_IMM } from '../core/calc.js';
import type { RelocationRecord } from '../core/relocate.js';
import { type PlanKernel, planObject } from '../loader/loader.js';
import { type BpfObject, parseBpfObject } from '../object/object.js';
import { defaultDebianKernels } from '../test-support/kernels.js';
import type { PlannedProgram } from '../vm/plan.js';
import { classifyRelocations, type GuardReport, readOnlyValuesOf, suggestFix } from './guards.js';

const repo = join(import.meta.dirname, '..', '..');

function insns(raws: [number, number, number, number, number][]): Uint8Array {
  const out = new Uint8Array(raws.length * 8);
  const v = new DataView(out.buffer);
  raws.forEach(([code, dst, src, off, imm], i) => {
    out[i * 8] = code;
    out[i * 8 + 1] = (src << 4) | dst;
    v.setInt16(i * 8 + 2, off, true);
    v.setInt32(i * 8 + 4, imm, true);
  });
  return out;
}

function program(bytes: Uint8Array): PlannedProgram {
  return {
    name: 'prog',
    section: 'kprobe/x',
    type: 2,
    expectedAttachType: 0,
    attachBtfId: 0,
    flags: 0,
    license: 'GPL',
    kernVersion: 0,
    insns: bytes,
    mapReferences: [],
    maps: [],
  };
}

function record(over: Partial<RelocationRecord>): RelocationRecord {
  return {
    section: 'kprobe/x',
    index: 0,
    function: 'prog',
    insn: 0,
    kind: 'byte_off',
    access: 'struct task_struct.__state',
    spec: '0:1',
    localSpec: undefined,
    targetSpec: undefined,
    result: 'poisoned',
    relo: { insnOff: 0, typeId: 1, accessStrOff: 0, kind: 0 },
    ...over,
  } as RelocationRecord;
}

describe('classifyRelocations on hand-built programs', () => {
  // 0: r1 = exists (patched to 0)  1: if r1 == 0 goto 3  2: poison  3: r1 = 1  4: if r1 == 0 goto 6
  // 5: poison  6: call sub (→ 9)  7: r0 = 0  8: exit  9: if r1 == 0 goto 11  10: poison  11: exit
  const prog = program(
    insns([
      [0xb7, 1, 0, 0, 0],
      [0x15, 1, 0, 1, 0],
      [0x85, 0, 0, 0, POISON_IMM],
      [0xb7, 1, 0, 0, 1],
      [0x15, 1, 0, 1, 0],
      [0x85, 0, 0, 0, POISON_IMM],
      [0x85, 0, 1, 0, 2],
      [0xb7, 0, 0, 0, 0],
      [0x95, 0, 0, 0, 0],
      [0x15, 1, 0, 1, 0],
      [0x85, 0, 0, 0, POISON_IMM],
      [0x95, 0, 0, 0, 0],
    ]),
  );
  const records = [
    record({ insn: 0, kind: 'field_exists', result: 'patched' }),
    record({ insn: 2 }),
    record({ insn: 5, access: 'struct request.rq_disk' }),
    record({ insn: 1, function: 'sub', section: '.text', access: 'struct bio.bi_disk' }),
    record({ insn: 4, function: 'other', section: '.text' }),
  ];

  it('with the function layout: resolved, guarded, needs-guard, a guarded subprogram', () => {
    const r = classifyRelocations({
      program: prog,
      records,
      functions: [
        { name: 'prog', offset: 0 },
        { name: 'sub', offset: 9 },
      ],
    });
    expect(r.relocations.map((c) => [c.status, c.insn])).toEqual([
      ['resolved', 0],
      ['guarded', 2],
      ['needs-guard', 5],
      // r1 = 1 when sub is called: its poison is reachable.
      ['needs-guard', 10],
    ]);
    expect(r.relocations[2]?.fix).toContain('bpf_core_field_exists(((struct request *)p)->rq_disk)');
    expect(r.reachablePoison.map((p) => p.insn)).toEqual([5, 10]);
  });

  it('without a layout: a subprogram record is placed by its poison, the callee taken as global', () => {
    const r = classifyRelocations({ program: prog, records });
    expect(r.relocations.map((c) => [c.status, c.insn])).toEqual([
      ['resolved', 0],
      ['guarded', 2],
      ['needs-guard', 5],
      ['needs-guard', 10],
    ]);
  });

  it('reports reachable kfunc poison calls', () => {
    const p = program(
      insns([
        [0x85, 0, 0, 0, 2002000003],
        [0x95, 0, 0, 0, 0],
      ]),
    );
    expect(classifyRelocations({ program: p, records: [] }).reachablePoison).toEqual([
      { insn: 0, kind: 'kfunc', externIndex: 3 },
    ]);
  });

  it('suggests the guard that fits the relocation kind', () => {
    expect(suggestFix(record({ kind: 'type_size', access: 'struct mm_rss_stat' }))).toBe(
      'guard it: if (bpf_core_type_exists(struct mm_rss_stat)) { … }',
    );
    expect(
      suggestFix(record({ kind: 'enumval_value', access: 'enum bpf_map_type::BPF_MAP_TYPE_USER_RINGBUF' })),
    ).toBe('guard it: if (bpf_core_enum_value_exists(enum bpf_map_type, BPF_MAP_TYPE_USER_RINGBUF)) { … }');
    expect(suggestFix(record({ access: 'struct task_struct___pre514.state' }))).toContain(
      'struct task_struct___other',
    );
  });
});

// ---------------------------------------------------------------------------------------------
// The case suite × the Debian kernels

interface Kern {
  name: string;
  plan: PlanKernel;
}
let kernels: Kern[] = [];
const objects = new Map<string, BpfObject>();

beforeAll(async () => {
  const cached = await defaultDebianKernels();
  kernels = cached.flatMap((k) => {
    if (k.btf === undefined) return [];
    const config = readFileSync(k.config).toString('latin1');
    const version = /^# Linux\/\S+ (\S+) Kernel Configuration$/m.exec(config)?.[1];
    return [
      {
        name: k.name,
        plan: {
          btf: Btf.parse(new Uint8Array(readFileSync(k.btf))),
          config,
          release: k.release,
          ...(version === undefined ? {} : { version }),
        },
      },
    ];
  });
  const dir = join(repo, 'build', 'cases');
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.bpf.o'))) {
    const path = join(dir, f);
    const obj = parseBpfObject(new Uint8Array(readFileSync(path)), { path });
    objects.set(
      f,
      Object.create(obj, {
        programs: { value: obj.programs.map((p) => (p.isSubprogram ? p : { ...p, autoload: true })) },
      }) as BpfObject,
    );
  }
}, 300_000);

/** Per kernel, per program: the guard report. */
function classifyObject(file: string, k: Kern): Map<string, GuardReport> {
  const obj = objects.get(file)!;
  const res = planObject(obj, k.plan, { name: file });
  const out = new Map<string, GuardReport>();
  if (res.plan === undefined) return out;
  const ro = readOnlyValuesOf(res.plan);
  for (const p of res.plan.programs) {
    out.set(
      p.name,
      classifyRelocations({
        program: p,
        records: res.relocation?.records ?? [],
        readOnlyValues: ro,
        ...(obj.btf === undefined ? {} : { btf: obj.btf }),
      }),
    );
  }
  return out;
}

const statuses = (g: GuardReport | undefined) => new Set(g?.relocations.map((c) => c.status));

describe('the case suite on the Debian kernels', () => {
  it('kernel_changes: portable programs are guarded where the field is missing, unguarded ones need a guard exactly there', () => {
    expect(kernels.length).toBeGreaterThanOrEqual(3);
    for (const k of kernels) {
      const reports = classifyObject('kernel_changes.bpf.o', k);
      expect(reports.size).toBeGreaterThan(0);
      for (const [name, g] of reports) {
        const st = statuses(g);
        const poisoned = g.relocations.some((c) => c.record.result === 'poisoned');
        if (name.endsWith('_portable')) {
          expect(st.has('needs-guard'), `${name} on ${k.name}`).toBe(false);
        } else if (name.endsWith('_old_only') || name.endsWith('_new_only')) {
          // An unguarded program needs a guard exactly where a relocation failed.
          expect(st.has('needs-guard'), `${name} on ${k.name}`).toBe(poisoned);
          expect(st.has('guarded'), `${name} on ${k.name}`).toBe(false);
        }
        for (const c of g.relocations.filter((c) => c.status === 'needs-guard')) {
          expect(c.insn, `${name} on ${k.name}`).toBeTypeOf('number');
          expect(c.fix).toMatch(/bpf_core_(field|type|enum_value)_exists/);
          expect(g.reachablePoison.some((p) => p.insn === c.insn)).toBe(true);
        }
      }
      const is510 = k.name.includes('5.10');
      const state = (n: string) => reports.get(n);
      // task_struct.state → __state in 5.14.
      expect(statuses(state('task_state_new_only')).has('needs-guard')).toBe(is510);
      expect(statuses(state('task_state_old_only')).has('needs-guard')).toBe(!is510);
      expect(statuses(state('task_state_portable')).has('guarded')).toBe(true);
      expect(statuses(state('task_state_portable')).has('resolved')).toBe(true);
      const needs = state('task_state_new_only')?.relocations.find((c) => c.status === 'needs-guard');
      if (is510) expect(needs?.access).toBe('struct task_struct.__state');
      // bio.bi_disk → bi_bdev in 5.12; request.rq_disk gone in 5.17, request_queue.disk since 5.16.
      expect(statuses(state('bio_disk_new_only')).has('needs-guard')).toBe(is510);
      expect(statuses(state('bio_disk_old_only')).has('needs-guard')).toBe(!is510);
      expect(statuses(state('rq_disk_new_only')).has('needs-guard')).toBe(is510);
      expect(statuses(state('rq_disk_old_only')).has('needs-guard')).toBe(!is510);
      // A plain read of a bitfield relocates everywhere.
      expect(statuses(state('sk_protocol_plain_read'))).toEqual(new Set(['resolved']));
    }
  });

  it('every case object on every kernel: every record of a planned program is classified', () => {
    const summary: string[] = [];
    for (const k of kernels) {
      for (const file of objects.keys()) {
        for (const [name, g] of classifyObject(file, k)) {
          expect(g.problems).toEqual([]);
          for (const c of g.relocations) {
            if (c.status === 'needs-guard' || c.status === 'guarded')
              summary.push(`${k.name} ${file} ${name}: ${c.status} ${c.access}`);
          }
          // Every reachable CO-RE poison belongs to a needs-guard record.
          for (const p of g.reachablePoison.filter((p) => p.kind === 'core')) {
            expect(p.record, `${file} ${name} insn ${p.insn} on ${k.name}`).toBeDefined();
          }
        }
      }
    }
    // flavors: the unguarded old flavor needs a guard on >= 5.14, the two-suffix one everywhere.
    for (const k of kernels) {
      const f = classifyObject('flavors.bpf.o', k);
      expect(statuses(f.get('flavor_two_suffixes')).has('needs-guard'), k.name).toBe(true);
      expect(statuses(f.get('flavor_old_unguarded')).has('needs-guard'), k.name).toBe(
        !k.name.includes('5.10'),
      );
    }
    expect(summary.length).toBeGreaterThan(0);
  });
});
