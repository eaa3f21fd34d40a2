import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseBpfObject } from '../object/object.js';
import { defaultDebianKernels } from '../test-support/kernels.js';
import { runCoreOracleReport } from '../test-support/libbpf-oracle.js';

// `corematrix obj dump` and `corematrix relocate` as a user runs them: the built CLI in its own
// process (the global setup has built the case suite and fetched the Debian kernels).

const repo = join(import.meta.dirname, '..', '..');
const bin = join(repo, 'bin', 'corematrix.js');
const cases = join(repo, 'build', 'cases');
let dir: string;
let kernelBtf: string;
let kernelImage: string;

function corematrix(...args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'corematrix-cli-'));
  const bullseye = (await defaultDebianKernels()).find((k) => k.name === 'debian-bullseye-5.10')!;
  kernelBtf = bullseye.btf!;
  kernelImage = bullseye.vmlinuz;
});

describe('corematrix relocate', () => {
  it("prints libbpf 1.7's decisions for every relocation (--json, vmlinuz as the target)", async () => {
    const obj = join(cases, 'kernel_changes.bpf.o');
    const r = corematrix('relocate', obj, '--btf', kernelImage, '--json');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const ours = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const oracle = (await runCoreOracleReport(obj, kernelBtf)).relocations;
    expect(ours.length).toBe(oracle.length);
    expect(ours.length).toBeGreaterThan(20);
    ours.forEach((o, i) => {
      const e = oracle[i]!;
      expect([o.object, o.section, o.index, o.function, o.kind, o.result]).toEqual([
        obj,
        e.section,
        e.index,
        e.function,
        e.kind,
        e.result,
      ]);
      if (e.result === 'patched') expect([String(o.old), String(o.new)]).toEqual([e.old, e.new]);
    });
  });

  it('-o writes the object with only the relocated instructions changed', () => {
    const obj = join(cases, 'kernel_changes.bpf.o');
    const out = join(dir, 'relocated.o');
    const r = corematrix('relocate', obj, '--btf', kernelBtf, '--json', '-o', out);
    expect(r.status).toBe(0);
    const records = r.stdout
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {
            section: string;
            function: string;
            insn: number;
            result: string;
            old?: number;
            new?: number;
          },
      );
    const before = readFileSync(obj);
    const after = readFileSync(out);
    expect(after.length).toBe(before.length);
    // File offset of each reported instruction (a 64-bit load spans two slots).
    const parsed = parseBpfObject(new Uint8Array(before));
    const allowed = new Set<number>();
    const mustChange = new Set<number>();
    for (const rec of records) {
      const prog = parsed.programs.find((p) => p.name === rec.function && p.section === rec.section)!;
      const at = parsed.elf.sectionHeader(rec.section)!.offset + (prog.sectionInsnOffset + rec.insn) * 8;
      allowed.add(at).add(at + 8);
      if (rec.result === 'poisoned' || rec.old !== rec.new) mustChange.add(at);
    }
    const changed = new Set<number>();
    for (let i = 0; i < before.length; i++) if (before[i] !== after[i]) changed.add(i - (i % 8));
    expect(mustChange.size).toBeGreaterThan(5);
    for (const at of changed) expect(allowed.has(at)).toBe(true);
    for (const at of mustChange) expect(changed.has(at)).toBe(true);
    // The relocated object is still a valid object with the same programs.
    const dumpOf = (file: string) => corematrix('obj', 'dump', file).stdout.split('\nCO-RE')[0];
    expect(dumpOf(out)).toBe(dumpOf(obj)?.replace(obj, out));
  });

  it('an object libbpf would refuse: its records, one error line naming it, exit 1', () => {
    const obj = join(cases, 'synthetic.bpf.o');
    const r = corematrix('relocate', obj, '--btf', join(cases, 'targets', 'synthetic_ambiguous.btf'));
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/synthetic\.bpf\.o: libbpf would refuse this object: .*ambiguity/);
    expect(r.stdout).toMatch(/error: .*ambiguity/);
  });

  it('bad usage and bad input get one line and the right exit code', () => {
    expect(corematrix('relocate', join(cases, 'minimal.bpf.o')).status).toBe(2);
    const missing = corematrix('relocate', join(dir, 'nope.o'), '--btf', kernelBtf);
    expect([missing.status, missing.stderr.trim().split('\n').length]).toEqual([2, 1]);
    const corrupt = join(dir, 'corrupt.o');
    writeFileSync(corrupt, readFileSync(join(cases, 'minimal.bpf.o')).subarray(0, 100));
    const bad = corematrix('relocate', corrupt, '--btf', kernelBtf);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/^corematrix: .*corrupt\.o: .*\n$/);
    const two = corematrix(
      'relocate',
      join(cases, 'minimal.bpf.o'),
      corrupt,
      '--btf',
      kernelBtf,
      '-o',
      join(dir, 'x.o'),
    );
    expect(two.status).toBe(2);
  });
});

describe('corematrix obj dump', () => {
  it('lists programs with their types and the CO-RE relocations as libbpf formats them', async () => {
    const obj = join(cases, 'kernel_changes.bpf.o');
    const r = corematrix('obj', 'dump', obj);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/task_state_portable: sec 'raw_tp\/sched_switch' RAW_TRACEPOINT/);
    // Each local spec line equals the one libbpf logs for the same relocation.
    const oracle = (await runCoreOracleReport(obj, kernelBtf)).relocations;
    for (const e of oracle) {
      if (e.spec !== null) expect(r.stdout).toContain(`relo #${e.index}: `);
      if (e.spec !== null) expect(r.stdout).toContain(e.spec);
    }
  });
});
