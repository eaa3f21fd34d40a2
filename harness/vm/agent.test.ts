// The in-VM agent and the libbpf reference loader, run natively on the host (as ordinary processes:
// --no-init, no mounts, no power off) with hand-made plans and a small clang-built object. What they
// print must parse through protocol.ts with the verdicts, errnos and logs the host kernel gives.
// Booting them in QEMU is tested with the VM driver.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadPlan, PlannedMap, PlannedProgram } from './plan.js';
import { encodePlan } from './plan-encoding.js';
import { type AgentOutput, parseAgentOutput } from './protocol.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const agentBin = join(repo, 'build', 'agent', 'corematrix-agent');
const loaderBin = join(repo, 'build', 'agent', 'libbpf-loader');

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}
// Loading BPF needs root (CAP_BPF/CAP_SYS_ADMIN) on the host; the binaries need gcc's static libc.
const usable = process.getuid?.() === 0 && has('gcc') && existsSync('/sys/kernel/btf/vmlinux');

// ---- instructions ----
const BPF_MAP_TYPE_ARRAY = 2;
const BPF_MAP_TYPE_PROG_ARRAY = 3;
const BPF_MAP_TYPE_ARRAY_OF_MAPS = 12;
const BPF_PROG_TYPE_SOCKET_FILTER = 1;
const BPF_F_RDONLY_PROG = 0x80;
const EACCES = 13;
const EINVAL = 22;

function insn(code: number, dst = 0, src = 0, off = 0, imm = 0): Uint8Array {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  b[0] = code;
  b[1] = (src << 4) | dst;
  v.setInt16(2, off, true);
  v.setInt32(4, imm, true);
  return b;
}
const concat = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
const movImm = (dst: number, imm: number) => insn(0xb7, dst, 0, 0, imm);
const movReg = (dst: number, src: number) => insn(0xbf, dst, src);
const exit = () => insn(0x95);
const ldImm64 = (dst: number) => concat(insn(0x18, dst), insn(0));
const call = (id: number) => insn(0x85, 0, 0, 0, id);
const jeqImm = (dst: number, imm: number, off: number) => insn(0x15, dst, 0, off, imm);
const ldxW = (dst: number, src: number, off: number) => insn(0x61, dst, src, off);
const ldxDw = (dst: number, src: number, off: number) => insn(0x79, dst, src, off);
const stW = (dst: number, off: number, imm: number) => insn(0x62, dst, 0, off, imm);
const addImm = (dst: number, imm: number) => insn(0x07, dst, 0, 0, imm);

/** r0 = *(map[0] + off) as `size`, through bpf_map_lookup_elem; the map's ld_imm64 is insn 3. */
function lookupAndRead(load: (dst: number, src: number, off: number) => Uint8Array, off: number): Uint8Array {
  return concat(
    stW(10, -4, 0), // *(u32 *)(r10 - 4) = 0
    movReg(2, 10),
    addImm(2, -4), // r2 = &key
    ldImm64(1), // r1 = map (insns 3-4)
    call(1), // bpf_map_lookup_elem
    jeqImm(0, 0, 1),
    load(0, 0, off),
    movImm(0, 0),
    exit(),
  );
}

/** Loads only when the verifier knows the u32 at the map value (insn 0) is 42: a frozen .rodata. */
const readOnlyCheck = concat(
  ldImm64(1), // r1 = &map value (insns 0-1)
  ldxW(0, 1, 0),
  jeqImm(0, 42, 1),
  movReg(0, 3), // r3 was never written: "R3 !read_ok" unless this is dead code
  exit(),
);

// ---- a minimal BTF: [1] int, [2] func_proto int(void), [3] static func "prog" ----
function btf(): Uint8Array {
  const strings = Buffer.from('\0int\0prog\0', 'latin1');
  const types = new Uint32Array([1, 1 << 24, 4, (1 << 24) | 32, 0, 13 << 24, 1, 5, 12 << 24, 2]);
  const typeBytes = Buffer.from(types.buffer);
  const header = Buffer.alloc(24);
  header.writeUInt16LE(0xeb9f, 0);
  header[2] = 1;
  header.writeUInt32LE(24, 4);
  header.writeUInt32LE(0, 8);
  header.writeUInt32LE(typeBytes.length, 12);
  header.writeUInt32LE(typeBytes.length, 16);
  header.writeUInt32LE(strings.length, 20);
  return new Uint8Array(Buffer.concat([header, typeBytes, strings]));
}
const funcInfo = { recordSize: 8, records: new Uint8Array(new Uint32Array([0, 3]).buffer) };

function map(name: string, change: Partial<PlannedMap> = {}): PlannedMap {
  return {
    name,
    type: BPF_MAP_TYPE_ARRAY,
    keySize: 4,
    valueSize: 4,
    maxEntries: 1,
    flags: 0,
    btfKeyTypeId: 0,
    btfValueTypeId: 0,
    freeze: false,
    ...change,
  };
}

function program(name: string, insns: Uint8Array, change: Partial<PlannedProgram> = {}): PlannedProgram {
  return {
    name,
    section: 'socket',
    type: BPF_PROG_TYPE_SOCKET_FILTER,
    expectedAttachType: 0,
    attachBtfId: 0,
    flags: 0,
    license: 'GPL',
    kernVersion: 0,
    insns,
    mapReferences: [],
    maps: [],
    ...change,
  };
}

const trivial = concat(movImm(0, 0), exit());
// A long straight run before the error: a level-1 log far over the agent's 64 KiB per result.
const hugeLog = concat(...Array.from({ length: 6000 }, () => movImm(0, 1)), movReg(0, 3), exit());

function testPlan(): LoadPlan {
  return {
    version: 1,
    kernel: 'host',
    objects: [
      {
        name: 'test.o',
        btf: btf(),
        maps: [
          // 0: an array with BTF key/value types and an initial value
          map('values', { btfKeyTypeId: 1, btfValueTypeId: 1, initialValue: new Uint8Array([7, 0, 0, 0]) }),
          // 1: .rodata as libbpf makes it: read-only for programs, value written, then frozen
          map('test.rodata', {
            flags: BPF_F_RDONLY_PROG,
            initialValue: new Uint8Array([42, 0, 0, 0]),
            freeze: true,
          }),
          // 2: the same, not frozen: the verifier cannot trust its value
          map('test.unfrozen', { flags: BPF_F_RDONLY_PROG, initialValue: new Uint8Array([42, 0, 0, 0]) }),
          // 3: an array with an 8-byte key: MAP_CREATE refuses it (EINVAL)
          map('badkey', { keySize: 8 }),
          // 4-6: map in map with its inner map template and a slot, a prog array with a slot
          map('inner'),
          map('outer', { type: BPF_MAP_TYPE_ARRAY_OF_MAPS, innerMap: 4, initialSlots: [{ key: 0, map: 4 }] }),
          map('jmp', { type: BPF_MAP_TYPE_PROG_ARRAY, initialSlots: [{ key: 0, program: 0 }] }),
          // 7: BTF value type (int, 4 bytes) that does not match the value size: created without BTF
          map('mismatch', { valueSize: 8, btfKeyTypeId: 1, btfValueTypeId: 1 }),
        ],
        programs: [
          program('trivial', trivial, { funcInfo }),
          program('oob', lookupAndRead(ldxDw, 64), {
            mapReferences: [{ insn: 3, map: 0, kind: 'fd', offset: 0 }],
          }),
          program('lookup', lookupAndRead(ldxW, 0), {
            mapReferences: [{ insn: 3, map: 0, kind: 'fd', offset: 0 }],
            maps: [0],
          }),
          program('rodata', readOnlyCheck, {
            mapReferences: [{ insn: 0, map: 1, kind: 'value', offset: 0 }],
          }),
          program('unfrozen', readOnlyCheck, {
            mapReferences: [{ insn: 0, map: 2, kind: 'value', offset: 0 }],
          }),
          program('uses_badkey', trivial, { maps: [3] }),
          program('huge_log', hugeLog),
          program('slots', concat(ldImm64(1), ldImm64(2), movImm(0, 0), exit()), {
            mapReferences: [
              { insn: 0, map: 5, kind: 'fd', offset: 0 },
              { insn: 2, map: 6, kind: 'fd', offset: 0 },
            ],
            maps: [5, 6, 7],
          }),
        ],
      },
      {
        // BTF the kernel refuses (bad magic): dropped as libbpf drops optional BTF, programs load
        // without func info
        name: 'badbtf.o',
        btf: new Uint8Array(24),
        maps: [map('m', { btfKeyTypeId: 1, btfValueTypeId: 1 })],
        programs: [program('trivial', trivial, { funcInfo, maps: [0] })],
      },
    ],
  };
}

describe.skipIf(!usable)('in-VM agent and libbpf loader, natively on the host', () => {
  const work = mkdtempSync(join(tmpdir(), 'cmx-agent-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  beforeAll(async () => {
    await execa('bash', [join(repo, 'scripts', 'build-agent.sh')], { stdin: 'ignore' });
  });

  async function runAgent(plan: Uint8Array): Promise<{ out: AgentOutput; exitCode: number }> {
    const path = join(work, `plan-${Math.random().toString(36).slice(2)}.bin`);
    writeFileSync(path, plan);
    const r = await execa(agentBin, ['--no-init', '--plan', path], {
      reject: false,
      encoding: 'buffer',
      stripFinalNewline: false,
    });
    return { out: parseAgentOutput(r.stdout), exitCode: r.exitCode ?? -1 };
  }

  it('builds fully static binaries', () => {
    for (const bin of [agentBin, loaderBin]) {
      const r = spawnSync('file', [bin], { encoding: 'utf8' });
      expect(r.stdout).toMatch(/statically linked/);
    }
  });

  it('loads each program on its own and reports verdicts, errnos and logs', async () => {
    const { out, exitCode } = await runAgent(encodePlan(testPlan()));
    expect(exitCode).toBe(0);
    expect(out.errors).toEqual([]);
    expect(out.complete).toBe(true);
    expect(out.hello).toMatchObject({ agent: 'corematrix-agent', plan: 'host', objects: 2, programs: 9 });
    expect(out.hello?.features).toEqual({ progName: true, logStats: true });

    const byName = new Map(out.results.map((r) => [`${r.object}:${r.program}`, r]));
    expect([...byName.keys()]).toEqual([
      'test.o:trivial',
      'test.o:oob',
      'test.o:lookup',
      'test.o:rodata',
      'test.o:unfrozen',
      'test.o:uses_badkey',
      'test.o:huge_log',
      'test.o:slots',
      'badbtf.o:trivial',
    ]);
    const trivialResult = byName.get('test.o:trivial')!;
    expect(trivialResult).toMatchObject({ verdict: 'loaded', insnsProcessed: 2, section: 'socket' });
    expect(trivialResult.errno).toBeUndefined();
    expect(trivialResult.log).toMatch(/processed 2 insns/);

    const oob = byName.get('test.o:oob')!;
    expect(oob).toMatchObject({ verdict: 'rejected', stage: 'prog', errno: EACCES });
    expect(oob.log).toMatch(/invalid access to map value, value_size=4 off=64 size=8/);
    expect(oob.log).toMatch(/^0: \(62\) \*\(u32 \*\)\(r10 -4\) = 0/m);

    expect(byName.get('test.o:lookup')).toMatchObject({ verdict: 'loaded' });
    // loads only because the frozen .rodata's 42 made the bad branch dead code
    expect(byName.get('test.o:rodata')).toMatchObject({ verdict: 'loaded' });
    const unfrozen = byName.get('test.o:unfrozen')!;
    expect(unfrozen).toMatchObject({ verdict: 'rejected', stage: 'prog', errno: EACCES });
    expect(unfrozen.log).toMatch(/R3 !read_ok/);

    const badkey = byName.get('test.o:uses_badkey')!;
    expect(badkey).toMatchObject({ verdict: 'rejected', stage: 'map', errno: EINVAL });
    expect(badkey.log).toMatch(/map 'badkey': create failed/);

    const huge = byName.get('test.o:huge_log')!;
    expect(huge).toMatchObject({ verdict: 'rejected', stage: 'prog', errno: EACCES });
    expect(huge.logOmitted).toBeGreaterThan(100_000);
    expect(huge.log.length).toBeLessThanOrEqual(65536 + 100);
    expect(huge.log).toMatch(/\n\[\.\.\. \d+ bytes of the log left out \.\.\.\]\n/);
    expect(huge.log).toMatch(/^0: \(b7\) r0 = 1/m);
    expect(huge.log).toMatch(/R3 !read_ok/);

    expect(byName.get('test.o:slots')).toMatchObject({ verdict: 'loaded' });
    expect(byName.get('badbtf.o:trivial')).toMatchObject({ verdict: 'loaded' });

    expect(out.objects).toEqual([
      {
        object: 'test.o',
        btf: { loaded: true },
        maps: [
          { name: 'values', created: true },
          { name: 'test.rodata', created: true },
          { name: 'test.unfrozen', created: true },
          { name: 'badkey', created: false, errno: EINVAL, step: 'create' },
          { name: 'inner', created: true },
          { name: 'outer', created: true },
          { name: 'jmp', created: true },
          { name: 'mismatch', created: true, retriedWithoutBtf: true },
        ],
      },
      {
        object: 'badbtf.o',
        btf: { loaded: false, errno: EINVAL, log: expect.stringMatching(/magic/i) },
        maps: [{ name: 'm', created: true }],
      },
    ]);
  });

  it('sends every message twice with CMX_REPEAT=2, and the host reads each once', async () => {
    const path = join(work, 'repeat-plan.bin');
    writeFileSync(path, encodePlan(testPlan()));
    const r = await execa(agentBin, ['--no-init', '--plan', path], {
      reject: false,
      stripFinalNewline: false,
      env: { CMX_REPEAT: '2' },
    });
    expect(r.stdout.split('\n').filter((l) => l.startsWith('@@CMX1 0 0 1 '))).toHaveLength(2);
    const out = parseAgentOutput(r.stdout);
    expect(out.errors).toEqual([]);
    expect(out.complete).toBe(true);
    expect(out.results).toHaveLength(9);
  });

  it('reports an unusable plan and still ends with done', async () => {
    const plan = encodePlan(testPlan());
    const { out, exitCode } = await runAgent(plan.subarray(0, plan.length - 7));
    expect(exitCode).toBe(2);
    expect(out.done).toBe(true);
    expect(out.results).toEqual([]);
    expect(out.errors).toEqual([
      { kind: 'agent-error', seq: 1, message: expect.stringMatching(/plan size does not match/) },
    ]);
    const missing = await execa(agentBin, ['--no-init', '--plan', join(work, 'absent.bin')], {
      reject: false,
    });
    expect(missing.exitCode).toBe(2);
    expect(parseAgentOutput(missing.stdout).errors[0]?.message).toMatch(/cannot read the plan .*absent\.bin/);
  });

  // PID 1 of a new PID namespace stands in for PID 1 of a VM: the agent mounts (in a mount namespace
  // of its own), runs, and its power off ends the namespace (its init killed by SIGINT).
  it.skipIf(!has('unshare'))('runs as PID 1: mounts, plan from CMX_PLAN, power off at the end', async () => {
    const path = join(work, 'pid1-plan.bin');
    const plan = testPlan();
    plan.objects = plan.objects.slice(1);
    writeFileSync(path, encodePlan(plan));
    const r = await execa('unshare', ['--pid', '--fork', '--mount', '--propagation', 'private', agentBin], {
      reject: false,
      stripFinalNewline: false,
      env: { CMX_PLAN: path },
      timeout: 30_000,
    });
    const out = parseAgentOutput(r.stdout);
    expect(out.errors).toEqual([]);
    expect(out.complete).toBe(true);
    expect(out.results.map((x) => [x.object, x.program, x.verdict])).toEqual([
      ['badbtf.o', 'trivial', 'loaded'],
    ]);
    // unshare passes its child's death by SIGINT on as its own
    expect(r.signal ?? r.exitCode).toBe('SIGINT');
  });

  it.skipIf(!has('clang-19'))('libbpf loader: each program of a clang-built object on its own', async () => {
    const source = join(work, 'small.bpf.c');
    writeFileSync(
      source,
      `#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} values SEC(".maps");
const volatile __u32 answer = 42;
SEC("socket") int good(struct __sk_buff *skb)
{
	__u32 k = 0, *v = bpf_map_lookup_elem(&values, &k);
	return v ? *v + answer : 0;
}
SEC("socket") int bad(struct __sk_buff *skb)
{
	__u32 k = 0, *v = bpf_map_lookup_elem(&values, &k);
	return v ? ((volatile __u32 *)v)[16] : 0;
}
`,
    );
    const object = join(work, 'small.bpf.o');
    const multiarch = spawnSync('gcc', ['-print-multiarch'], { encoding: 'utf8' }).stdout.trim();
    await execa('clang-19', [
      '-target',
      'bpf',
      '-g',
      '-O2',
      `-I${join(repo, 'build', 'libbpf', 'include')}`,
      '-idirafter',
      `/usr/include/${multiarch || 'x86_64-linux-gnu'}`,
      '-c',
      source,
      '-o',
      object,
    ]);
    const r = await execa(loaderBin, ['--no-init', object], {
      reject: false,
      encoding: 'buffer',
      stripFinalNewline: false,
    });
    expect(r.exitCode).toBe(0);
    const out = parseAgentOutput(r.stdout);
    expect(out.errors).toEqual([]);
    expect(out.complete).toBe(true);
    expect(out.hello).toMatchObject({ agent: 'libbpf-loader', libbpf: '1.7' });
    expect(out.results.map((x) => [x.program, x.verdict, x.errno, x.stage])).toEqual([
      ['good', 'loaded', undefined, undefined],
      ['bad', 'rejected', EACCES, 'prog'],
    ]);
    expect(out.results[1]!.log).toMatch(/invalid access to map value, value_size=4 off=64 size=4/);
    expect(out.results[1]!.log).not.toMatch(/BEGIN PROG LOAD LOG/);
  });
});
