/**
 * Differential test: corematrix's CO-RE engine against libbpf 1.7 (Debian sid's libbpf.a, through
 * build/oracle/core-oracle), for every little-endian case object × every target BTF available: the
 * host kernel, the hand-made target fixtures, and the Debian kernels in the cache. Every relocation
 * must get the same decision: same order, same instruction, same kind and local spec, same result,
 * and for patched instructions the same old and new values.
 *
 * libbpf cannot prepare a big-endian object on this little-endian host, so bpfeb objects are
 * covered by the unit tests instead.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { beforeAll, describe, expect, test } from 'vitest';
import { Btf } from '../btf/btf.js';
import { readBtfFile } from '../kernels/read.js';
import { parseBpfObject } from '../object/object.js';
import { defaultDebianKernels } from '../test-support/kernels.js';
import {
  ensureCoreOracle,
  type OracleRelocation,
  runCoreOracleReport,
} from '../test-support/libbpf-oracle.js';
import { relocateObject } from './relocate.js';

const repo = join(import.meta.dirname, '..', '..');
const casesDir = join(repo, 'build', 'cases');

interface Target {
  name: string;
  btfPath: string;
  kconfig?: string;
}

let debianTargets: Target[] = [];

function targets(): Target[] {
  const list: Target[] = [
    { name: 'host', btfPath: '/sys/kernel/btf/vmlinux', kconfig: '/proc/config.gz' },
    ...debianTargets,
  ];
  const fixtures = join(casesDir, 'targets');
  for (const f of readdirSync(fixtures)
    .filter((n) => n.endsWith('.btf'))
    .sort()) {
    list.push({ name: f.replace(/\.btf$/, ''), btfPath: join(fixtures, f) });
  }
  return list;
}

function objects(): string[] {
  return readdirSync(casesDir)
    .filter((n) => n.endsWith('.bpf.o'))
    .sort()
    .map((n) => join(casesDir, n));
}

function readBtf(path: string): Btf {
  const raw = readFileSync(path);
  return Btf.parse(new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength));
}

beforeAll(async () => {
  await execa('bash', [join(repo, 'scripts', 'build-cases.sh')], { stdin: 'ignore' });
  await ensureCoreOracle();
  // libbpf's btf_custom_path takes raw BTF or an ELF, not a vmlinuz: hand it the extracted BTF.
  const dir = mkdtempSync(join(tmpdir(), 'corematrix-core-'));
  debianTargets = await Promise.all(
    (await defaultDebianKernels()).map(async (k) => {
      let btfPath = k.btf;
      if (btfPath === undefined) {
        btfPath = join(dir, `${k.name}.btf`);
        writeFileSync(btfPath, (await readBtfFile(k.vmlinuz)).btf.raw);
      }
      return { name: k.name, btfPath, kconfig: k.config };
    }),
  );
}, 600_000);

describe('CO-RE decisions equal libbpf 1.7', () => {
  test('every case object × every target', async () => {
    const disagreements: string[] = [];
    const tally = new Map<string, number>();
    const perTarget = new Map<string, number>();
    let compared = 0;
    for (const target of targets()) {
      const vmlinux = readBtf(target.btfPath);
      for (const objPath of objects()) {
        const name = `${objPath.split('/').pop()} @ ${target.name}`;
        const oracle = await runCoreOracleReport(objPath, target.btfPath, { kconfig: target.kconfig });
        const expected = oracle.relocations.filter((r) => r.result !== 'skipped');
        if (expected.length === 0 && oracle.done.stage !== undefined && oracle.done.stage !== 'core') {
          disagreements.push(
            `${name}: libbpf stopped before CO-RE (${oracle.done.stage}: ${oracle.done.error})`,
          );
          continue;
        }
        const obj = parseBpfObject(new Uint8Array(readFileSync(objPath)));
        const ours = relocateObject(obj, { vmlinux, modules: [], vmlinuxOverride: true }).records;
        if (ours.length !== expected.length) {
          disagreements.push(`${name}: ${ours.length} relocations processed, libbpf ${expected.length}`);
        }
        for (let i = 0; i < Math.min(ours.length, expected.length); i++) {
          const a = ours[i]!;
          const e = expected[i]!;
          const where = `${name} ${e.section} relo #${e.index}`;
          const diff = compare(a, e);
          if (diff !== undefined) disagreements.push(`${where}: ${diff}`);
          tally.set(e.result, (tally.get(e.result) ?? 0) + 1);
          perTarget.set(target.name, (perTarget.get(target.name) ?? 0) + 1);
          compared++;
        }
      }
    }
    console.log(
      `compared ${compared} relocations (${[...tally].map(([k, n]) => `${n} ${k}`).join(', ')}); ${disagreements.length} disagreements`,
    );
    console.log([...perTarget].map(([t, n]) => `${t}: ${n}`).join(', '));
    // Every target must have been compared, and every outcome libbpf has must be exercised, or the
    // comparison proves less than it claims.
    expect([...perTarget.keys()].sort()).toEqual(
      targets()
        .map((t) => t.name)
        .sort(),
    );
    expect([...tally.keys()].sort()).toEqual(['error', 'patched', 'poisoned']);
    expect(disagreements).toEqual([]);
    expect(compared).toBeGreaterThan(500);
  });
});

function compare(
  a: ReturnType<typeof relocateObject>['records'][number],
  e: OracleRelocation,
): string | undefined {
  if (a.section !== e.section || a.index !== e.index) return `order: ours ${a.section} #${a.index}`;
  if (e.function !== null && a.function !== e.function) return `function ${a.function} vs ${e.function}`;
  if (e.kind !== null && a.kind !== e.kind) return `kind ${a.kind} vs ${e.kind}`;
  if (e.spec !== null && a.localSpec !== e.spec) return `spec '${a.localSpec}' vs '${e.spec}'`;
  if (a.result !== e.result) {
    return `result ${a.result}${a.message ? ` (${a.message})` : ''} vs ${e.result}${'message' in e && e.message ? ` (${e.message})` : ''}`;
  }
  if (e.insn !== null && a.insn !== e.insn) return `insn ${a.insn} vs ${e.insn}`;
  if (e.result === 'patched') {
    if (a.old?.toString() !== e.old || a.new?.toString() !== e.new)
      return `values ${a.old} -> ${a.new} vs ${e.old} -> ${e.new}`;
    const ms =
      a.memSize === undefined ? undefined : { old: String(a.memSize.old), new: String(a.memSize.new) };
    if (JSON.stringify(ms) !== JSON.stringify(e.memSize))
      return `mem size ${JSON.stringify(ms)} vs ${JSON.stringify(e.memSize)}`;
  }
  if (e.result === 'error' && !(a.message ?? '').includes(e.message.replace(/^.*?: /, ''))) {
    return `error message '${a.message}' vs '${e.message}'`;
  }
  return undefined;
}
