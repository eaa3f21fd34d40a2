// Checks the libbpf CO-RE oracle against facts read independently of libbpf: offsets, sizes and
// enum values from `bpftool btf dump file /sys/kernel/btf/vmlinux`, and fixtures whose outcome is
// known by construction (a field no kernel has, a type no kernel has, an ambiguous target BTF).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Elf } from '../elf/elf.js';
import {
  type OracleError,
  type OraclePatched,
  type OracleRelocation,
  type OracleReport,
  runCoreOracle,
  runCoreOracleReport,
} from './libbpf-oracle.js';

const here = dirname(fileURLToPath(import.meta.url));
const fixtures = join(here, 'testdata-oracle');
const vmlinux = '/sys/kernel/btf/vmlinux';

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}
const usable = existsSync(vmlinux) && has('clang-19') && has('bpftool');

function multiarch(): string {
  const r = spawnSync('gcc', ['-print-multiarch'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() !== '' ? r.stdout.trim() : 'x86_64-linux-gnu';
}

describe.skipIf(!usable)('libbpf CO-RE oracle', () => {
  const work = mkdtempSync(join(tmpdir(), 'libbpf-oracle-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  async function compile(name: string, bpf = true): Promise<string> {
    const object = join(work, `${name}.o`);
    const source = join(fixtures, bpf ? `${name}.bpf.c` : `${name}.c`);
    await execa('clang-19', [
      '-target',
      'bpf',
      '-g',
      '-O2',
      '-Werror',
      '-idirafter',
      `/usr/include/${multiarch()}`,
      '-c',
      source,
      '-o',
      object,
    ]);
    return object;
  }

  // ---- what bpftool says about the running kernel's BTF ----
  interface Struct {
    size: number;
    members: Map<string, number>; // name -> bits_offset
  }
  let dump = '';
  function struct(name: string): Struct {
    const lines = dump.split('\n');
    const at = lines.findIndex((l) => new RegExp(`^\\[\\d+\\] STRUCT '${name}' size=`).test(l));
    expect(at, `struct ${name} in bpftool's dump`).toBeGreaterThanOrEqual(0);
    const size = Number(/size=(\d+)/.exec(lines[at]!)![1]);
    const members = new Map<string, number>();
    for (let i = at + 1; i < lines.length && lines[i]!.startsWith('\t'); i++) {
      const m = /^\t'([^']*)' type_id=\d+ bits_offset=(\d+)/.exec(lines[i]!);
      if (m) members.set(m[1]!, Number(m[2]));
    }
    return { size, members };
  }
  function enumValue(enumName: string, value: string): string {
    const lines = dump.split('\n');
    const at = lines.findIndex((l) => new RegExp(`^\\[\\d+\\] ENUM(64)? '${enumName}' `).test(l));
    expect(at).toBeGreaterThanOrEqual(0);
    for (let i = at + 1; i < lines.length && lines[i]!.startsWith('\t'); i++) {
      const m = /^\t'([^']*)' val=(-?\d+)/.exec(lines[i]!);
      if (m && m[1] === value) return m[2]!;
    }
    throw new Error(`${enumName}::${value} not in bpftool's dump`);
  }

  let kinds: OracleReport;
  let kindsObject = '';
  beforeAll(async () => {
    dump = (await execa('bpftool', ['btf', 'dump', 'file', vmlinux], { maxBuffer: 1 << 30 })).stdout;
    kindsObject = await compile('kinds');
    kinds = await runCoreOracleReport(kindsObject, vmlinux, { insns: true });
  });

  function relo(section: string, index: number): OracleRelocation {
    const r = kinds.relocations.find((x) => x.section === section && x.index === index);
    expect(r, `${section} relo #${index}`).toBeDefined();
    return r!;
  }
  function patched(section: string, index: number): OraclePatched {
    const r = relo(section, index);
    expect(r.result).toBe('patched');
    return r as OraclePatched;
  }

  it('prepares the object and reports every relocation once, in order', () => {
    expect(kinds.done).toMatchObject({ done: true, prepare: 0 });
    const main = kinds.relocations.filter((r) => r.section === 'raw_tp/sys_enter');
    expect(main.map((r) => r.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(main.every((r) => r.function === 'kinds')).toBe(true);
    const text = kinds.relocations.filter((r) => r.section === '.text');
    expect(text.map((r) => [r.index, r.function])).toEqual([[0, 'subprog_tgid']]);
    expect(kinds.relocations).toHaveLength(9);
  });

  it('field byte offsets match bpftool (task_struct.pid, and tgid from a subprogram)', () => {
    const task = struct('task_struct');
    const pid = patched('raw_tp/sys_enter', 0);
    expect(pid).toMatchObject({ kind: 'byte_off', insnClass: 'ALU/ALU64', operand: 'imm', old: '0' });
    expect(pid.spec).toMatch(/^<byte_off> \[\d+\] struct task_struct\.pid \(0:0 @ offset 0\)$/);
    expect(pid.new).toBe(String(task.members.get('pid')! / 8));
    const tgid = patched('.text', 0);
    expect(tgid).toMatchObject({ kind: 'byte_off', old: '4' });
    expect(tgid.new).toBe(String(task.members.get('tgid')! / 8));
  });

  it('the patched instruction holds the new value', () => {
    const pid = patched('raw_tp/sys_enter', 0);
    const prog = kinds.programs.find((p) => p.program === 'kinds');
    expect(prog).toBeDefined();
    const bytes = Buffer.from(prog!.insns, 'hex');
    expect(bytes.readInt32LE(pid.insn! * 8 + 4)).toBe(Number(pid.new));
  });

  it('a field missing from the kernel: exists = 0, and a read of it is poisoned', () => {
    expect(struct('task_struct').members.has('corematrix_no_such_field')).toBe(false);
    expect(patched('raw_tp/sys_enter', 1)).toMatchObject({ kind: 'field_exists', old: '1', new: '0' });
    expect(patched('raw_tp/sys_enter', 2)).toMatchObject({ kind: 'field_exists', old: '1', new: '1' });
    const read = relo('raw_tp/sys_enter', 7);
    expect(read).toMatchObject({ kind: 'byte_off', result: 'poisoned' });
    expect(read.insn).not.toBeNull();
    expect(read.candidates?.every((c) => !c.matching)).toBe(true);
  });

  it('type existence and size match bpftool', () => {
    expect(patched('raw_tp/sys_enter', 3)).toMatchObject({ kind: 'type_exists', new: '1' });
    expect(dump).not.toMatch(/STRUCT 'corematrix_no_such_struct'/);
    expect(patched('raw_tp/sys_enter', 4)).toMatchObject({ kind: 'type_exists', new: '0', candidates: [] });
    expect(patched('raw_tp/sys_enter', 6)).toMatchObject({
      kind: 'type_size',
      new: String(struct('task_struct').size),
    });
  });

  it("an enum value is the kernel's", () => {
    const r = patched('raw_tp/sys_enter', 5);
    expect(r).toMatchObject({ kind: 'enumval_value', insnClass: 'LDIMM64', operand: 'imm64', old: '100' });
    expect(r.spec).toMatch(/enum pid_type::PIDTYPE_SID = 100$/);
    expect(r.new).toBe(enumValue('pid_type', 'PIDTYPE_SID'));
  });

  it('an ambiguous relocation is an error, the last line, and fails the object', async () => {
    const target = await compile('ambiguous-target', false);
    const report = await runCoreOracleReport(await compile('ambiguous'), target);
    expect(report.relocations).toHaveLength(1);
    const r = report.relocations[0] as OracleError;
    expect(r).toMatchObject({ section: 'raw_tp/sys_enter', index: 0, function: 'amb', result: 'error' });
    expect(r.kind).toBe('byte_off');
    // x is at bit 0 in corematrix_amb and bit 64 in corematrix_amb___v2
    expect(r.message).toMatch(/^field offset ambiguity: (64 != 0|0 != 64)$/);
    expect(r.errorCode).toBe('-EINVAL');
    expect(r.candidates?.map((c) => c.matching)).toEqual([true, true]);
    expect(report.done).toMatchObject({ prepare: -22, stage: 'core', error: r.message });
    expect(await runCoreOracle(await compile('ambiguous'), target)).toEqual(report.relocations);
  });

  it('an instruction whose value does not match its relocation is an error', async () => {
    // byte_off relo #0 reads task_struct.pid, local offset 0: make its instruction's imm 5.
    const pid = patched('raw_tp/sys_enter', 0);
    const bytes = readFileSync(kindsObject);
    const text = Elf.parse(new Uint8Array(bytes)).sectionHeader('raw_tp/sys_enter')!;
    bytes.writeInt32LE(5, text.offset + pid.insn! * 8 + 4);
    const broken = join(work, 'kinds-broken.o');
    writeFileSync(broken, bytes);
    const report = await runCoreOracleReport(broken, vmlinux);
    expect(report.relocations).toHaveLength(1);
    expect(report.relocations[0]).toMatchObject({
      section: 'raw_tp/sys_enter',
      index: 0,
      function: 'kinds',
      insn: pid.insn,
      kind: 'byte_off',
      result: 'error',
      message: `unexpected insn #${pid.insn} (ALU/ALU64) value: got 5, exp 0 -> ${pid.new}`,
      errorCode: '-EINVAL',
    });
    expect(report.done).toMatchObject({ prepare: -22, stage: 'core' });
  });

  it('a missing target BTF fails in the CO-RE stage', async () => {
    const report = await runCoreOracleReport(await compile('ambiguous'), join(work, 'no-such.btf'));
    expect(report.relocations).toEqual([]);
    expect(report.done).toMatchObject({ prepare: -2, stage: 'core' });
    expect(report.done.error).toMatch(/target BTF/);
  });

  it('.kconfig externs resolve from --kconfig, and their failure is not a CO-RE one', async () => {
    const object = await compile('kconfig');
    const without = await runCoreOracleReport(object, vmlinux);
    expect(without.done).toMatchObject({ stage: 'other' });
    expect(without.done.prepare).toBeLessThan(0);
    expect(without.done.error).toMatch(/CONFIG_COREMATRIX_ORACLE_TEST/);
    const config = join(work, 'config');
    writeFileSync(config, '# CONFIG_FOO is not set\nCONFIG_COREMATRIX_ORACLE_TEST=7\n');
    const withConfig = await runCoreOracleReport(object, vmlinux, { kconfig: config });
    expect(withConfig.done).toMatchObject({ prepare: 0 });
  });
});
