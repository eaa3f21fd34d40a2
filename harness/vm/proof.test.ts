/**
 * The VM tier's proof (issue 5): for every case object × every default Debian kernel, the verdict
 * corematrix gives each program (its own loader's plan, loaded by the agent) equals the verdict of
 * libbpf 1.7 loading the same program on its own (build/agent/libbpf-loader), on the same kernel.
 *
 * Per kernel, two boots of the same image (run side by side through one VmPool, at most as many
 * VMs as cores): one is `loadOnKernel` itself — the code path of `corematrix load` — and one boots
 * the libbpf loader as init with the objects under /objects and the kernel's config as
 * /boot/config-<release> (libbpf's .kconfig source; Debian kernels have no /proc/config.gz). Two
 * boots instead of one VM running both: the cell is tested exactly as the CLI runs it, and a boot
 * costs ~2.5 s under TCG, which the pool overlaps.
 *
 * Verdicts compared: loaded vs not loaded. corematrix's `refused-before-load` (what its loader
 * knows libbpf refuses before PROG_LOAD) counts as rejected, as libbpf's load of that program
 * fails (no PROG_LOAD, or the object cannot be opened).
 */

import { existsSync, promises as fs, readdirSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { type CachedKernel, defaultDebianKernels } from '../test-support/kernels.js';
import {
  AGENT_BIN,
  type CellResult,
  firstLines,
  LIBBPF_LOADER_BIN,
  loadOnKernel,
  runResultInit,
} from './cell.js';
import { VmPool } from './pool.js';
import type { AgentOutput } from './protocol.js';

const repo = path.join(import.meta.dirname, '..', '..');
const casesDir = path.join(repo, 'build', 'cases');
const cases = existsSync(casesDir)
  ? readdirSync(casesDir)
      .filter((f) => f.endsWith('.o'))
      .sort()
  : [];
const ready = existsSync(AGENT_BIN) && existsSync(LIBBPF_LOADER_BIN) && cases.length > 0;

interface Side {
  verdict: 'loaded' | 'rejected';
  detail: string;
}

interface KernelRun {
  kernel: CachedKernel;
  cell: CellResult;
  libbpf: AgentOutput;
  libbpfPhases: { boot?: number; run?: number; shutdown?: number; total: number };
  libbpfKind: string;
  libbpfTail: string;
}

let kernels: CachedKernel[] = [];
const runs = new Map<string, KernelRun>();
let wallMs = 0;

async function configText(file: string): Promise<Uint8Array> {
  const bytes = await fs.readFile(file);
  return new Uint8Array(bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes);
}

async function runKernel(k: CachedKernel, pool: VmPool): Promise<KernelRun> {
  const objects = cases.map((f) => path.join('build', 'cases', f));
  const libbpfFiles = [
    { path: '/libbpf-loader', bytes: await fs.readFile(LIBBPF_LOADER_BIN), mode: 0o755 },
    { path: `/boot/config-${k.release}`, bytes: await configText(k.config) },
    ...(await Promise.all(
      cases.map(async (f) => ({ path: `/objects/${f}`, bytes: await fs.readFile(path.join(casesDir, f)) })),
    )),
  ];
  const [cell, lib] = await Promise.all([
    loadOnKernel({
      kernel: { name: k.name, vmlinuz: k.vmlinuz, btf: k.btf!, config: k.config, release: k.release },
      objects,
      options: { pool, timeoutMs: 180_000 },
    }),
    runResultInit(
      { vmlinuz: k.vmlinuz, init: '/libbpf-loader', files: libbpfFiles, timeoutMs: 300_000 },
      pool,
    ),
  ]);
  return {
    kernel: k,
    cell,
    libbpf: lib.output,
    libbpfPhases: lib.outcome.phases,
    libbpfKind: lib.outcome.kind,
    libbpfTail: lib.outcome.consoleTail,
  };
}

beforeAll(async () => {
  if (!ready) return;
  kernels = await defaultDebianKernels();
  const t0 = performance.now();
  const pool = new VmPool();
  const done = await Promise.all(kernels.map((k) => runKernel(k, pool)));
  wallMs = Math.round(performance.now() - t0);
  for (const r of done) runs.set(r.kernel.name, r);
  const ms = (n: number | undefined) => (n === undefined ? '-' : `${(n / 1000).toFixed(2)} s`);
  for (const r of done) {
    const p = r.cell.phases;
    const l = r.libbpfPhases;
    const n = r.cell.programs.length;
    console.log(
      `${r.kernel.name}: corematrix plan ${ms(p.plan)}, boot ${ms(p.boot)}, load ${ms(p.load)}, shutdown ${ms(p.shutdown)} (${n} programs)` +
        ` | libbpf boot ${ms(l.boot)}, load ${ms(l.run)}, shutdown ${ms(l.shutdown)}`,
    );
  }
  console.log(
    `proof: ${done.length} kernels × 2 boots, ${pool.concurrency} VMs at once, wall ${ms(wallMs)} (accel ${done[0]?.cell.accel ?? '?'})`,
  );
}, 900_000);

/** libbpf's verdict per "object basename\0program". Objects libbpf cannot open reject every program. */
function libbpfVerdicts(out: AgentOutput): { verdicts: Map<string, Side>; unopened: Map<string, string> } {
  const verdicts = new Map<string, Side>();
  for (const r of out.results) {
    verdicts.set(`${path.basename(r.object)}\0${r.program}`, {
      verdict: r.verdict,
      detail: r.verdict === 'loaded' ? 'loaded' : `errno ${r.errno}: ${firstLines(r.log, 3)}`,
    });
  }
  const unopened = new Map<string, string>();
  for (const e of out.errors) {
    if (e.kind === 'agent-error' && e.object !== undefined) unopened.set(path.basename(e.object), e.message);
  }
  return { verdicts, unopened };
}

describe.skipIf(!ready)('proof: corematrix verdicts equal libbpf 1.7 per program, same kernel', () => {
  it.each(['debian-bullseye-5.10', 'debian-bookworm-6.1', 'debian-trixie-6.12', 'debian-sid'])(
    '%s',
    (name) => {
      const run = runs.get(name);
      expect(run, `kernel ${name} ran`).toBeDefined();
      const { cell, libbpf } = run!;
      // Both runs are whole: no infra fault on either side.
      expect(cell.status, `${cell.infra?.reason}\n${cell.infra?.consoleTail}`).toBe('ok');
      expect(
        libbpf.complete,
        `${run!.libbpfKind}: ${JSON.stringify(libbpf.errors)}\n${run!.libbpfTail}`,
      ).toBe(true);
      expect(libbpf.hello?.kernelRelease).toBe(cell.agent?.hello?.kernelRelease);

      const { verdicts, unopened } = libbpfVerdicts(libbpf);
      const mismatches: string[] = [];
      let compared = 0;
      for (const p of cell.programs) {
        const base = path.basename(p.object);
        const mine: Side = {
          verdict: p.verdict === 'loaded' ? 'loaded' : 'rejected',
          detail: `${p.verdict}${p.errnoName === undefined ? '' : ` ${p.errnoName}`}: ${p.cause}${p.logHead === '' ? '' : `\n    ${p.logHead.split('\n').slice(0, 3).join('\n    ')}`}`,
        };
        expect(p.verdict, `${base} ${p.program}: ${p.cause}`).not.toBe('infra_error');
        let theirs = verdicts.get(`${base}\0${p.program}`);
        // Known difference, explained: an object libbpf cannot even open (bpf_object__open fails)
        // has no per-program results from the libbpf loader; every program of it is not loaded.
        if (theirs === undefined && unopened.has(base)) {
          theirs = { verdict: 'rejected', detail: `libbpf cannot open it: ${unopened.get(base)}` };
        }
        if (theirs === undefined) {
          mismatches.push(`${base} ${p.program}: no libbpf result (corematrix: ${mine.detail})`);
          continue;
        }
        compared++;
        if (theirs.verdict !== mine.verdict) {
          mismatches.push(
            `${base} ${p.program}: corematrix ${mine.detail}\n  libbpf ${theirs.verdict} ${theirs.detail}`,
          );
        }
      }
      // Every libbpf result has its corematrix counterpart.
      const mineKeys = new Set(cell.programs.map((p) => `${path.basename(p.object)}\0${p.program}`));
      for (const key of verdicts.keys()) {
        if (!mineKeys.has(key))
          mismatches.push(`${key.replace('\0', ' ')}: libbpf loaded it, corematrix has no verdict`);
      }
      const agree = compared - mismatches.length;
      const count = (v: string) => cell.programs.filter((p) => p.verdict === v).length;
      console.log(
        `${name}: ${agree}/${cell.programs.length} programs agree with libbpf` +
          ` (loaded ${count('loaded')}, rejected ${count('rejected')}, refused before load ${count('refused-before-load')};` +
          ` objects libbpf could not open: ${unopened.size})`,
      );
      expect(mismatches, mismatches.join('\n')).toEqual([]);
      expect(compared).toBe(cell.programs.length);
    },
  );
});
