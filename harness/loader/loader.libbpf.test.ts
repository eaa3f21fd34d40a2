/**
 * The loader against libbpf itself: for every case object × the host kernel's BTF and a Debian
 * kernel's BTF, each planned program's final instructions must equal what libbpf 1.7 leaves in the
 * program after bpf_object__prepare (the oracle's --insns), byte for byte except the map fds of
 * ld_imm64s (BPF_PSEUDO_MAP_FD / BPF_PSEUDO_MAP_VALUE imm, which are fds of the oracle's run).
 *
 * The oracle resolves ksyms/kfuncs against the running kernel's BTF even when the CO-RE target is
 * another kernel's (btf_custom_path is for CO-RE only), so against a Debian BTF the imm of
 * BPF_PSEUDO_BTF_ID loads and kfunc calls is masked too.
 */
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { Btf } from '../btf/btf.js';
import { parseBpfObject } from '../object/object.js';
import { type CachedKernel, defaultDebianKernels } from '../test-support/kernels.js';
import { runCoreOracleReport } from '../test-support/libbpf-oracle.js';
import { planObject } from './loader.js';

const repo = join(import.meta.dirname, '..', '..');
const casesDir = join(repo, 'build', 'cases');
const cases = readdirSync(casesDir)
  .filter((f) => f.endsWith('.bpf.o'))
  .sort();

/** The instructions with fds (and, when asked, kernel BTF ids) zeroed. */
function mask(bytes: Uint8Array, btfIds: boolean): Uint8Array {
  const out = Uint8Array.from(bytes);
  for (let p = 0; p + 8 <= out.length; p += 8) {
    const code = out[p]!;
    const src = out[p + 1]! >> 4;
    const zeroImm = () => out.fill(0, p + 4, p + 8);
    if (code === 0x18 && (src === 1 || src === 2 || (btfIds && src === 3))) {
      zeroImm();
      if (btfIds && src === 3) out.fill(0, p + 12, p + 16);
    }
    if (btfIds && code === 0x85 && src === 2) zeroImm();
  }
  return out;
}

interface Target {
  name: string;
  btfPath: string;
  configPath: string;
  release: string;
  version?: string;
  host: boolean;
}

const targets: Target[] = [];
let debian: CachedKernel[] = [];

beforeAll(async () => {
  debian = await defaultDebianKernels();
  targets.push({
    name: 'host',
    btfPath: '/sys/kernel/btf/vmlinux',
    configPath: '/proc/config.gz',
    release: os.release(),
    host: true,
  });
  for (const k of debian) {
    if (k.btf === undefined) continue;
    const version = /^(\S+)_(\d+\.\d+\.\d+)/.exec(k.dir.split('/').pop() ?? '')?.[2];
    targets.push({
      name: k.name,
      btfPath: k.btf,
      configPath: k.config,
      release: k.release,
      ...(version === undefined ? {} : { version }),
      host: false,
    });
  }
});

function readConfig(path: string): string {
  const bytes = readFileSync(path);
  return (bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes).toString('latin1');
}

let compared = 0;

describe.each(cases)('%s: planned instructions equal libbpf 1.7', (file) => {
  it.each(['host', 'debian-bookworm-6.1', 'debian-bullseye-5.10'])('against %s', async (targetName) => {
    const target = targets.find((t) => t.name === targetName);
    expect(target, `kernel ${targetName}`).toBeDefined();
    const t = target!;
    const path = join(casesDir, file);
    const obj = parseBpfObject(new Uint8Array(readFileSync(path)), { path });
    const kernelBtf = Btf.parse(new Uint8Array(readFileSync(t.btfPath)));
    const result = planObject(obj, {
      btf: kernelBtf,
      config: readConfig(t.configPath),
      release: t.release,
      ...(t.version === undefined ? {} : { version: t.version }),
    });
    const oracle = await runCoreOracleReport(path, t.btfPath, { insns: true, kconfig: t.configPath });
    if (oracle.done.prepare !== 0) {
      // libbpf refused the object when loading all programs; the plan refuses at least the culprit.
      const refused = result.problems.filter((p) => p.severity === 'refused');
      expect(refused.length, JSON.stringify(oracle.done)).toBeGreaterThan(0);
      if (oracle.done.stage === 'core') expect(refused.some((p) => p.stage === 'core')).toBe(true);
      return;
    }
    const plan = result.plan;
    if (plan === undefined && !t.host) {
      // The oracle resolves ksyms against the running kernel, not the target: a ksym only the
      // host has (bpf_prog_active is a BTF VAR on 6.18, not in 5.10's BTF) refuses the plan alone.
      const externs = result.problems.filter((p) => p.stage === 'externs' && p.severity === 'refused');
      expect(externs.length, JSON.stringify(result.problems)).toBeGreaterThan(0);
      for (const p of externs) {
        const name = /'([^']+)': not found in kernel BTF/.exec(p.message)?.[1];
        expect(name, p.message).toBeDefined();
        expect(kernelBtf.findByNameKind(name!, 'var')).toBeUndefined();
      }
      return;
    }
    expect(plan, JSON.stringify(result.problems)).toBeDefined();
    compared += oracle.programs.length;
    const planned = new Map(plan!.programs.map((p) => [p.name, p]));
    for (const o of oracle.programs) {
      const mine = planned.get(o.program);
      const refusal = result.problems.find((p) => p.program === o.program && p.severity === 'refused');
      if (mine === undefined) {
        // Refused before PROG_LOAD by corematrix only for reasons libbpf checks at load time
        // (attach targets), never at prepare.
        expect(refusal?.stage, `${o.program}: ${refusal?.message}`).toBe('prog');
        continue;
      }
      const want = mask(Buffer.from(o.insns, 'hex'), !t.host);
      const got = mask(mine.insns, !t.host);
      expect(Buffer.from(got).toString('hex'), `${o.program} (${o.section})`).toBe(
        Buffer.from(want).toString('hex'),
      );
    }
    expect(plan!.programs.length).toBeLessThanOrEqual(oracle.programs.length);
  });
});

describe('coverage', () => {
  it('compared programs of every case object', () => {
    // Runs after the comparisons above (vitest runs a file's tests in order).
    expect(compared).toBeGreaterThan(cases.length * 2);
  });
});
