/**
 * The static tier's proof (issue 6): for the case suite × the four default Debian kernels, the
 * static verdict of every program (harness/analysis/verdict.ts, no boot) against the VM tier's
 * (loadOnKernel: the programs loaded by the agent in a boot of that kernel).
 *
 * - Every program with at least one poisoned CO-RE relocation: static == VM (the guard analysis
 *   decides those; without it that part is reported, not asserted).
 * - Every program: static == VM, or the VM's rejection is of a kind the static tier declares it
 *   cannot see for that program (the verifier's own checks, a helper not allowed for the program
 *   type, poisoned relocations when the guard analysis is missing).
 */

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { rawKconfig } from '../loader/kconfig.js';
import type { PlanKernel } from '../loader/loader.js';
import { matrixKernelSources } from '../matrix/kernels.js';
import { loadMatrix } from '../matrix/load.js';
import { parseBpfObject } from '../object/object.js';
import { DEFAULT_DEBIAN_KERNELS, testCacheRoot } from '../test-support/kernels.js';
import { AGENT_BIN, type CellResult, loadOnKernel, type ProgramVerdict } from '../vm/cell.js';
import { VmPool } from '../vm/pool.js';
import { HELPER_PROG_TYPE_UNKNOWN, type ProgramStatic, staticVerdicts, VERIFIER_UNKNOWN } from './verdict.js';

const repo = path.join(import.meta.dirname, '..', '..');
const casesDir = path.join(repo, 'build', 'cases');
const cases = existsSync(casesDir)
  ? readdirSync(casesDir)
      .filter((f) => f.endsWith('.o'))
      .sort()
      .map((f) => path.join('build', 'cases', f))
  : [];
/** The matrix's names of the default Debian kernels (matrix.yaml: bullseye, bookworm, trixie, sid). */
const KERNELS = DEFAULT_DEBIAN_KERNELS.map((k) => k.spec.suite);
const ready = existsSync(AGENT_BIN) && cases.length > 0;

interface Pair {
  kernel: string;
  stat: ProgramStatic;
  vm: ProgramVerdict;
}

const pairs: Pair[] = [];

/** Why the static tier may miss this VM rejection: one of its declared unknowns, or undefined. */
function explanation(p: Pair): string | undefined {
  const cause = p.vm.cause;
  const has = (u: string) => p.stat.unknown.includes(u);
  if (/^unknown func/.test(cause))
    return has(HELPER_PROG_TYPE_UNKNOWN) ? HELPER_PROG_TYPE_UNKNOWN : undefined;
  if (p.vm.stage === 'prog' || p.vm.stage === undefined)
    return has(VERIFIER_UNKNOWN) ? VERIFIER_UNKNOWN : undefined;
  return undefined;
}

const vmLoads = (v: ProgramVerdict) => v.verdict === 'loaded';

beforeAll(async () => {
  if (!ready) return;
  const matrix = loadMatrix(path.join(repo, 'matrix.yaml'), { checkCases: false });
  const sources = matrixKernelSources(matrix, { cache: testCacheRoot() }).filter((s) =>
    KERNELS.includes(s.name),
  );
  const pool = new VmPool({ concurrency: 2 });
  const t0 = performance.now();
  const runs = await Promise.all(
    sources.map(async (s) => {
      const r = await s.open({ fetch: true });
      const kernel: PlanKernel = {
        btf: r.btf!,
        config: r.config!,
        release: r.release!,
        ...(r.config?.version === undefined ? {} : { version: r.config.version }),
      };
      const kconfig = rawKconfig(r.config!);
      const ts = performance.now();
      const stat = cases.flatMap((file) => {
        const obj = parseBpfObject(new Uint8Array(readFileSync(file)), { path: file });
        return staticVerdicts({ name: file, obj, kernelName: s.name, kernel, kconfig });
      });
      const staticMs = performance.now() - ts;
      const cell: CellResult = await loadOnKernel({
        kernel: s,
        objects: cases,
        options: { pool, timeoutMs: 180_000 },
      });
      return { name: s.name, stat, cell, staticMs };
    }),
  );
  for (const r of runs) {
    expect(r.cell.status, `${r.name}: ${r.cell.infra?.reason}`).toBe('ok');
    for (const vm of r.cell.programs) {
      const stat = r.stat.find((p) => p.object === vm.object && p.program === vm.program);
      if (stat !== undefined) pairs.push({ kernel: r.name, stat, vm });
    }
    console.log(
      `${r.name}: static ${Math.round(r.staticMs)} ms for ${r.stat.length} programs | VM boot ${r.cell.phases.boot} ms, load ${r.cell.phases.load} ms, total ${r.cell.phases.total} ms`,
    );
  }
  console.log(`VM wall for ${runs.length} kernels (pool of 2): ${Math.round(performance.now() - t0)} ms`);
}, 900_000);

describe.skipIf(!ready)('proof: static verdicts vs the VM tier, case suite × default Debian kernels', () => {
  it('every VM program has a static verdict', () => {
    expect(pairs.length).toBeGreaterThan(0);
    expect(pairs.every((p) => p.vm.verdict !== 'infra_error')).toBe(true);
  });

  it('programs with poisoned CO-RE relocations: static == VM', () => {
    const poisoned = pairs.filter((p) => p.stat.poisoned > 0);
    const agree = poisoned.filter((p) => (p.stat.verdict === 'loads') === vmLoads(p.vm));
    console.log(`poisoned: ${agree.length}/${poisoned.length} agree`);
    for (const p of poisoned.filter((q) => !agree.includes(q))) {
      console.log(
        `  ${p.kernel} ${p.vm.object} ${p.vm.program}: static ${p.stat.verdict}, VM ${p.vm.verdict}: ${p.vm.cause}`,
      );
    }
    expect(agree.length).toBe(poisoned.length);
  });

  it('every program: static == VM, or the VM saw a cause the static tier declares it cannot see', () => {
    const agree = pairs.filter((p) => (p.stat.verdict === 'loads') === vmLoads(p.vm));
    const explained = new Map<string, number>();
    const unexplained: Pair[] = [];
    for (const p of pairs) {
      if (agree.includes(p)) continue;
      const why = p.stat.verdict === 'loads' ? explanation(p) : undefined;
      if (why === undefined) unexplained.push(p);
      else explained.set(why, (explained.get(why) ?? 0) + 1);
    }
    console.log(
      `all programs: ${agree.length}/${pairs.length} agree; ${pairs.length - agree.length - unexplained.length} explained, ${unexplained.length} unexplained`,
    );
    for (const [why, n] of explained) console.log(`  explained by "${why}": ${n}`);
    for (const p of pairs.filter((q) => !agree.includes(q))) {
      console.log(
        `  ${p.kernel} ${p.vm.object} ${p.vm.program}: static ${p.stat.verdict} (${p.stat.reasons[0]?.message ?? ''}), VM ${p.vm.verdict}: ${p.vm.cause}`,
      );
    }
    expect(
      unexplained.map(
        (p) =>
          `${p.kernel} ${p.vm.object} ${p.vm.program}: static ${p.stat.verdict}, VM ${p.vm.verdict}: ${p.vm.cause}`,
      ),
    ).toEqual([]);
  });
});
