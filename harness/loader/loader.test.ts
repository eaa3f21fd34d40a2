/**
 * Unit tests of the loader on a hand-written object (testdata/assembly.bpf.c): subprogram append
 * order and callbacks (checked through func_info and against libbpf's instructions), kfuncs weak
 * and strong, .kconfig values from a config file, and BTF sanitization of each kind for older
 * kernels, checked by parsing the sanitized BTF.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Btf } from '../btf/btf.js';
import { BtfBuilder } from '../btf/builder.js';
import { type BpfObject, parseBpfObject } from '../object/object.js';
import { ensureCoreOracle } from '../test-support/libbpf-oracle.js';
import { POISON_CALL_KFUNC_BASE } from './assemble.js';
import { kernelVersionCode } from './features.js';
import { parseU64 } from './kconfig.js';
import { planObject } from './loader.js';

const repo = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'corematrix-loader-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function build(defines: string[] = []): { path: string; obj: BpfObject } {
  const path = join(dir, `assembly${defines.map((d) => `-${d}`).join('')}.bpf.o`);
  execFileSync('clang-19', [
    '-g',
    '-O2',
    '-target',
    'bpf',
    '-I',
    join(repo, 'build', 'libbpf', 'include'),
    ...defines.map((d) => `-D${d}`),
    '-c',
    join(import.meta.dirname, 'testdata', 'assembly.bpf.c'),
    '-o',
    path,
  ]);
  return { path, obj: parseBpfObject(new Uint8Array(readFileSync(path)), { path }) };
}

const hostBtf = Btf.parse(new Uint8Array(readFileSync('/sys/kernel/btf/vmlinux')));
const hostConfig = gunzipSync(readFileSync('/proc/config.gz')).toString('latin1');
const host = { btf: hostBtf, config: hostConfig, release: os.release() };

let fixture: { path: string; obj: BpfObject };
beforeAll(() => {
  fixture = build();
});

function u32(bytes: Uint8Array, off: number): number {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(off, true);
}
function imm(insns: Uint8Array, i: number): number {
  return new DataView(insns.buffer, insns.byteOffset).getInt32(i * 8 + 4, true);
}
function src(insns: Uint8Array, i: number): number {
  return insns[i * 8 + 1]! >> 4;
}

/** func_info as [insn_off, FUNC name] pairs. */
function funcInfo(obj: BpfObject, info: { recordSize: number; records: Uint8Array } | undefined) {
  const out: [number, string][] = [];
  if (info === undefined) return out;
  for (let p = 0; p < info.records.length; p += info.recordSize) {
    out.push([u32(info.records, p), obj.btf!.name(u32(info.records, p + 4))]);
  }
  return out;
}

describe('program assembly', () => {
  it('appends subprograms in libbpf order (calls, then callbacks, depth first) with func_info shifted', () => {
    const { obj } = fixture;
    const { plan } = planObject(obj, host);
    const a = plan!.programs.find((p) => p.name === 'main_a')!;
    const b = plan!.programs.find((p) => p.name === 'main_b')!;
    const names = (p: typeof a) => funcInfo(obj, p.funcInfo).map(([, n]) => n);
    expect(names(a)).toEqual(['main_a', 'sub_a', 'sub_b', 'global_sub']);
    // main_b: bpf_loop's callback comes first (its ld_imm64 precedes the call of sub_c), and
    // sub_b, called from the callback, is appended while the callback is processed.
    expect(names(b)).toEqual(['main_b', 'loop_cb', 'sub_b', 'sub_c']);
    for (const p of [a, b]) {
      const infos = funcInfo(obj, p.funcInfo);
      // Every call/callback lands on a func_info boundary, and insn_offs increase.
      const starts = new Set(infos.map(([off]) => off));
      const n = p.insns.length / 8;
      for (let i = 0; i < n; i++) {
        const code = p.insns[i * 8];
        if (code === 0x85 && src(p.insns, i) === 1) expect(starts.has(i + imm(p.insns, i) + 1)).toBe(true);
        if (code === 0x18 && src(p.insns, i) === 4) expect(starts.has(i + imm(p.insns, i) + 1)).toBe(true);
      }
      expect(infos.map(([o]) => o)).toEqual([...infos.map(([o]) => o)].sort((x, y) => x - y));
      expect(p.lineInfo!.records.length / p.lineInfo!.recordSize).toBeGreaterThan(infos.length);
    }
  });

  it('gives the same instructions as libbpf (map fds masked) and refuses a missing attach target', async () => {
    const { obj, path } = fixture;
    const result = planObject(obj, host);
    const bin = await ensureCoreOracle();
    const out = execFileSync(bin, [path, '/sys/kernel/btf/vmlinux', '--insns'], { encoding: 'utf8' });
    const programs = out
      .split('\n')
      .filter((l) => l.startsWith('{"program"'))
      .map((l) => JSON.parse(l) as { program: string; insns: string });
    expect(programs.map((p) => p.program).sort()).toEqual([
      'main_a',
      'main_b',
      'main_kfuncs',
      'missing_target',
    ]);
    const mask = (b: Uint8Array) => {
      const c = Uint8Array.from(b);
      for (let p = 0; p < c.length; p += 8) {
        if (c[p] === 0x18 && (c[p + 1]! >> 4 === 1 || c[p + 1]! >> 4 === 2)) c.fill(0, p + 4, p + 8);
      }
      return Buffer.from(c).toString('hex');
    };
    for (const o of programs) {
      const mine = result.plan!.programs.find((p) => p.name === o.program);
      if (o.program === 'missing_target') {
        expect(mine).toBeUndefined();
        continue;
      }
      expect(mask(mine!.insns), o.program).toBe(mask(Buffer.from(o.insns, 'hex')));
    }
    expect(result.problems).toContainEqual({
      program: 'missing_target',
      severity: 'refused',
      stage: 'prog',
      message: 'attach target cm_no_such_function not found in kernel BTF (no func cm_no_such_function)',
    });
  });

  it('resolves kfuncs to kernel BTF ids and poisons a missing weak one', () => {
    const { obj } = fixture;
    const { plan } = planObject(obj, host);
    const p = plan!.programs.find((q) => q.name === 'main_kfuncs')!;
    const missing = obj.externs.findIndex((e) => e.name === 'cm_no_such_kfunc');
    const calls: number[] = [];
    for (let i = 0; i < p.insns.length / 8; i++) {
      if (p.insns[i * 8] === 0x85 && src(p.insns, i) === 2) calls.push(imm(p.insns, i));
      if (p.insns[i * 8] === 0x85 && src(p.insns, i) === 0 && imm(p.insns, i) >= POISON_CALL_KFUNC_BASE) {
        expect(imm(p.insns, i)).toBe(POISON_CALL_KFUNC_BASE + missing);
      }
    }
    expect(calls).toEqual([
      hostBtf.findByNameKind('bpf_task_acquire', 'func'),
      hostBtf.findByNameKind('bpf_task_release', 'func'),
    ]);
    expect(attachId(p.attachBtfId)).toBe('btf_trace_sched_process_fork');
  });

  it('refuses the whole object for a missing strong kfunc', () => {
    const { obj } = build(['STRONG']);
    const r = planObject(obj, host);
    expect(r.plan).toBeUndefined();
    expect(r.problems.map((p) => p.program).sort()).toEqual([
      'main_a',
      'main_b',
      'main_kfuncs',
      'missing_target',
    ]);
    expect(r.problems[0]!.message).toBe(
      "extern (func ksym) 'cm_no_such_kfunc': not found in kernel or module BTFs",
    );
  });
});

function attachId(id: number): string {
  return hostBtf.name(id);
}

describe('.kconfig', () => {
  it('fills the map from the kernel config and the release', () => {
    const { obj } = fixture;
    const config = [
      '# Linux/x86 6.1.176 Kernel Configuration',
      'CONFIG_HZ=0xfa',
      'CONFIG_BPF_SYSCALL=y',
      'CONFIG_NF_CONNTRACK=m',
      'CONFIG_DEFAULT_HOSTNAME="(none)"',
      '# CONFIG_CM_MISSING is not set',
      'CONFIG_HZ=100',
    ].join('\n');
    const { plan } = planObject(obj, {
      ...host,
      config,
      release: '6.1.0-50-cloud-amd64',
      version: '6.1.176',
    });
    const index = obj.maps.findIndex((m) => m.kind === 'kconfig');
    const map = plan!.maps[index]!;
    expect(map.freeze).toBe(true);
    const value = map.initialValue!;
    const at = (name: string) => obj.externs.find((e) => e.name === name)!.kconfig!.dataOffset;
    expect(u32(value, at('LINUX_KERNEL_VERSION'))).toBe((6 << 16) + (1 << 8) + 176);
    expect(u32(value, at('CONFIG_HZ'))).toBe(250); // the first line wins, as in libbpf
    expect(value[at('CONFIG_BPF_SYSCALL')]).toBe(1);
    expect(u32(value, at('CONFIG_NF_CONNTRACK'))).toBe(2); // TRI_MODULE
    const host16 = value.subarray(at('CONFIG_DEFAULT_HOSTNAME'), at('CONFIG_DEFAULT_HOSTNAME') + 16);
    expect(Buffer.from(host16.subarray(0, host16.indexOf(0))).toString()).toBe('(none)');
    expect(u32(value, at('CONFIG_CM_MISSING'))).toBe(0);
  });

  it('refuses a strong CONFIG_ the config lacks', () => {
    const r = planObject(fixture.obj, { ...host, config: 'CONFIG_BPF_SYSCALL=y\n' });
    expect(r.plan).toBeUndefined();
    expect(r.problems[0]!.message).toBe("extern 'CONFIG_HZ' (strong): not resolved");
  });

  it('reads numbers as strtoull does and versions as libbpf does', () => {
    expect(parseU64('0x1f')).toBe(31n);
    expect(parseU64('010')).toBe(8n);
    expect(parseU64('-1')).toBe(0xffffffffffffffffn);
    expect(parseU64('12abc')).toBeUndefined();
    expect(kernelVersionCode('5.10.0-32-cloud-amd64', '5.10.223')).toBe((5 << 16) + (10 << 8) + 223);
    expect(kernelVersionCode('4.19.300')).toBe((4 << 16) + (19 << 8) + 255);
  });
});

describe('BTF sanitization', () => {
  /** A kernel with a BTF that proves nothing, so that only the release decides. */
  function oldKernel(release: string) {
    const b = new BtfBuilder();
    b.int('int', 4, { signed: true });
    return { btf: Btf.parse(b.encode()), config: hostConfig, release };
  }
  const kinds = (btf: Btf) => {
    const out = new Map<string, number>();
    for (let id = 1; id < btf.typeCount; id++) out.set(btf.kind(id), (out.get(btf.kind(id)) ?? 0) + 1);
    return out;
  };

  it('keeps every kind on a current kernel, with DATASECs laid out from the ELF', () => {
    const { obj } = fixture;
    const { plan, sanitized } = planObject(obj, host);
    expect(sanitized).toEqual([]);
    const btf = Btf.parse(plan!.btf!);
    // The same kinds, plus libbpf's dummy_ksym VAR (added when .ksyms holds kfuncs).
    const orig = kinds(obj.btf!);
    orig.set('var', (orig.get('var') ?? 0) + 1);
    expect(kinds(btf)).toEqual(orig);
    const dummy = btf.type(obj.btf!.typeCount);
    expect(dummy.kind === 'var' && dummy.name).toBe('dummy_ksym');
    const bssId = btf.findByNameKind('.bss', 'datasec')!;
    const bss = btf.type(bssId);
    expect(bss.kind === 'datasec' && bss.size).toBe(obj.elf.sectionHeader('.bss')!.size);
    const syms = obj.elf.symbols();
    for (const v of bss.kind === 'datasec' ? bss.vars : []) {
      const sym = syms.find((s) => s.name === btf.name(v.type) && s.type === 1);
      expect(v.offset, btf.name(v.type)).toBe(Number(sym!.value));
    }
    // .kconfig variables sit at their offsets in the .kconfig map, allocated.
    const kc = btf.type(btf.findByNameKind('.kconfig', 'datasec')!);
    for (const v of kc.kind === 'datasec' ? kc.vars : []) {
      const ext = obj.externs.find((e) => e.name === btf.name(v.type))!;
      expect(v.offset).toBe(ext.kconfig!.dataOffset);
      const vt = btf.type(v.type);
      expect(vt.kind === 'var' && vt.linkageRaw).toBe(1);
    }
  });

  it('on 5.15: DECL_TAG → INT, TYPE_TAG → CONST, ENUM64 → UNION of a placeholder; FLOAT kept', () => {
    const { obj } = fixture;
    const { plan, sanitized } = planObject(obj, oldKernel('5.15.0'));
    const btf = Btf.parse(plan!.btf!);
    const k = kinds(btf);
    expect(k.get('decl_tag')).toBeUndefined();
    expect(k.get('type_tag')).toBeUndefined();
    expect(k.get('enum64')).toBeUndefined();
    expect(k.get('float')).toBe(1);
    expect(sanitized.some((s) => s.endsWith('ENUM64 → UNION'))).toBe(true);
    expect(btf.typeCount).toBe(obj.btf!.typeCount + 2); // dummy_ksym, enum64_placeholder
    const placeholder = btf.type(btf.typeCount - 1);
    expect(placeholder.kind === 'int' && placeholder.name).toBe('enum64_placeholder');
    const big = btf.type(btf.findByNameKind('cm_big', 'union')!);
    expect(big.kind === 'union' && big.members.every((m) => m.type === btf.typeCount - 1)).toBe(true);
    // Type ids and the strings line_info points at are unchanged.
    // (TYPE_TAGs become anonymous CONSTs, as in libbpf.)
    for (let id = 1; id < obj.btf!.typeCount; id++) {
      const kind = obj.btf!.kind(id);
      expect(btf.name(id)).toBe(kind === 'type_tag' ? '' : obj.btf!.name(id));
      if (kind === 'type_tag') expect(btf.kind(id)).toBe('const');
      if (kind === 'decl_tag') expect(btf.kind(id)).toBe('int');
    }
    const line = plan!.programs[0]!.lineInfo!;
    for (let p = 0; p < line.records.length; p += line.recordSize) {
      const file = u32(line.records, p + 4);
      expect(btf.strings.get(file)).toBe(obj.btf!.strings.get(file));
    }
  });

  it('on 4.19: FUNC → TYPEDEF, FUNC_PROTO → ENUM, VAR → INT, DATASEC → STRUCT, FLOAT → STRUCT', () => {
    const { obj } = fixture;
    const { plan } = planObject(obj, oldKernel('4.19.0'));
    const btf = Btf.parse(plan!.btf!);
    const k = kinds(btf);
    for (const gone of ['func', 'func_proto', 'var', 'datasec', 'float', 'decl_tag', 'type_tag', 'enum64']) {
      expect(k.get(gone as never), gone).toBeUndefined();
    }
    const data = btf.type(btf.findByNameKind('_data', 'struct')!);
    expect(data.kind === 'struct' && data.members.map((m) => m.name)).toContain('counter');
    // No func_info or line_info on a kernel without BTF functions.
    expect(plan!.programs.every((p) => p.funcInfo === undefined && p.lineInfo === undefined)).toBe(true);
  });

  it('on 5.4: global functions become static; no BPF_F_MMAPABLE before 5.5', () => {
    const { obj } = fixture;
    const { plan } = planObject(obj, oldKernel('5.4.0'));
    const btf = Btf.parse(plan!.btf!);
    const f = btf.type(btf.findByNameKind('global_sub', 'func')!);
    expect(f.kind === 'func' && f.linkage).toBe('static');
    expect(plan!.maps.every((m) => (m.flags & 0x400) === 0)).toBe(true);
    const onNew = planObject(obj, host).plan!;
    expect(onNew.maps.some((m) => (m.flags & 0x400) !== 0)).toBe(true);
  });
});
