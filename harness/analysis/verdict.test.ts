// Feature availability and static verdicts: hand-built instructions for the helper scan, the guard
// module's answer read into reasons, and real Debian kernel BTFs for the uapi enums.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Btf } from '../btf/btf.js';
import type { RelocationRecord } from '../core/relocate.js';
import { parseBpfObject } from '../object/object.js';
import { type CachedKernel, defaultDebianKernels } from '../test-support/kernels.js';
import { enumValues, helperCalls } from './features.js';
import { guardResult, staticVerdicts, VERIFIER_UNKNOWN } from './verdict.js';

const repo = path.join(import.meta.dirname, '..', '..');

function insn(code: number, dst: number, src: number, off: number, imm: number): number[] {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  b[0] = code;
  b[1] = (src << 4) | dst;
  v.setInt16(2, off, true);
  v.setInt32(4, imm, true);
  return [...b];
}

describe('helper scan', () => {
  it('helper calls (src_reg 0) once each; bpf-to-bpf, kfunc and CO-RE poison calls are not helpers', () => {
    const insns = new Uint8Array([
      ...insn(0x85, 0, 0, 0, 14), // bpf_get_current_pid_tgid
      ...insn(0x85, 0, 1, 0, 3), // call a subprogram
      ...insn(0x85, 0, 2, 0, 1234), // kfunc
      ...insn(0x85, 0, 0, 0, 0xbad2310), // CO-RE poison
      ...insn(0x85, 0, 0, 0, 14),
      ...insn(0x85, 0, 0, 0, 212),
      ...insn(0x95, 0, 0, 0, 0),
    ]);
    expect(helperCalls(insns)).toEqual([14, 212]);
  });
});

describe('guard module answers', () => {
  const rec = (access: string, result: RelocationRecord['result']) =>
    ({
      access,
      result,
      kind: 'byte_off',
      function: 'prog',
      insn: 3,
      index: 0,
    }) as unknown as RelocationRecord;
  it('relocations and reachable kfunc poison calls become classifications and messages', () => {
    const a = rec('struct request.rq_disk', 'poisoned');
    const g = guardResult(
      {
        relocations: [
          {
            record: a,
            status: 'needs-guard',
            access: a.access,
            insn: 7,
            fix: 'guard it',
            reason: 'reachable',
          },
        ],
        reachablePoison: [
          { insn: 7, kind: 'core', record: a },
          { insn: 9, kind: 'kfunc', externIndex: 1 },
        ],
        deadEdges: [],
        reachableCount: 10,
        problems: [],
      },
      (i) => ['bpf_a', 'bpf_rcu_read_lock'][i],
    );
    expect(g.relocations).toEqual([{ record: a, status: 'needs-guard', insn: 7, fix: 'guard it' }]);
    expect(g.kfuncPoison).toEqual([
      'reachable call to weak kfunc bpf_rcu_read_lock, which the kernel lacks (insn 9)',
    ]);
  });
});

let kernels: CachedKernel[] = [];
const btfs = new Map<string, Btf>();
beforeAll(async () => {
  kernels = await defaultDebianKernels();
  for (const k of kernels) btfs.set(k.name, Btf.parse(new Uint8Array(readFileSync(k.btf!))));
});

describe('kernel uapi enums', () => {
  it('map types and helpers by kernel: arena and newer helpers are missing on old kernels', () => {
    const bullseye = btfs.get('debian-bullseye-5.10')!;
    const sid = btfs.get('debian-sid')!;
    expect(enumValues(bullseye, 'bpf_map_type')?.get(27)).toBe('BPF_MAP_TYPE_RINGBUF');
    expect(enumValues(bullseye, 'bpf_map_type')?.has(33)).toBe(false);
    expect(enumValues(sid, 'bpf_map_type')?.get(33)).toBe('BPF_MAP_TYPE_ARENA');
    const b = enumValues(bullseye, 'bpf_func_id')!;
    expect(b.get(1)).toBe('BPF_FUNC_map_lookup_elem');
    expect(b.has(177)).toBe(false);
    expect(enumValues(sid, 'bpf_func_id')?.has(177)).toBe(true);
    // The MAX sentinels are not types.
    expect([...b.values()].some((n) => n.startsWith('__'))).toBe(false);
  });

  it('a case program calling a helper past bullseye: rejected there with the helper named, loads on sid', async () => {
    const file = path.join(repo, 'build', 'cases', 'ksyscall.bpf.o');
    const obj = parseBpfObject(new Uint8Array(readFileSync(file)), { path: file });
    const verdicts = (name: string) => {
      const k = kernels.find((q) => q.name === name)!;
      return staticVerdicts({
        name: file,
        obj,
        kernelName: name,
        kernel: { btf: btfs.get(name)!, config: readFileSync(k.config, 'latin1'), release: k.release },
      });
    };
    const old = verdicts('debian-bullseye-5.10').find((p) => p.program === 'tgkill_entry')!;
    expect(old.verdict).toBe('rejected');
    expect(old.reasons[0]?.message).toMatch(/^unknown func bpf_\w+#177: past the kernel's last helper$/);
    expect(old.unknown).toContain(VERIFIER_UNKNOWN);
    const sid = verdicts('debian-sid').find((p) => p.program === 'tgkill_entry')!;
    expect(sid.reasons.filter((r) => r.source === 'feature')).toEqual([]);
  });

  it('an unguarded access to a field the kernel lacks: rejected, with the access and a fix named', () => {
    const file = path.join(repo, 'build', 'cases', 'kernel_changes.bpf.o');
    const obj = parseBpfObject(new Uint8Array(readFileSync(file)), { path: file });
    const verdict = (name: string, program: string) => {
      const k = kernels.find((q) => q.name === name)!;
      return staticVerdicts({
        name: file,
        obj,
        kernelName: k.name,
        kernel: { btf: btfs.get(k.name)!, config: readFileSync(k.config, 'latin1'), release: k.release },
      }).find((p) => p.program === program)!;
    };
    // task_struct.__state appeared in 5.14: bullseye's 5.10 lacks it.
    const old = verdict('debian-bullseye-5.10', 'task_state_new_only');
    expect(old.poisoned).toBe(1);
    expect(old.verdict).toBe('rejected');
    expect(old.reasons.find((r) => r.source === 'guard')?.message).toMatch(
      /CO-RE relocation struct task_struct.__state .*reachable path; fix: .*bpf_core_field_exists/,
    );
    expect(verdict('debian-bullseye-5.10', 'task_state_portable').verdict).toBe('loads');
    expect(verdict('debian-sid', 'task_state_new_only').verdict).toBe('loads');
  });
});
