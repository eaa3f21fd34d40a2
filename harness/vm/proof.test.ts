/**
 * The VM tier's proof (issue 5): for every case object × every default Debian kernel, the verdict
 * corematrix gives each program (its own loader's plan, loaded by the agent) equals the verdict of
 * libbpf 1.7 loading the same program on its own (build/agent/libbpf-loader), on the same kernel.
 *
 * Per kernel, ONE boot runs both loaders, one after the other (the kernels side by side through one
 * VmPool, at most as many VMs as cores). It is `loadOnKernel` itself — the code path of
 * `corematrix load`: the same plan, verdicts and causes — with its VM run adjusted (`adjustRun`):
 * a busybox script as /init mounts /proc, /sys, /dev, debugfs and bpffs and lifts RLIMIT_MEMLOCK
 * (what both binaries do as PID 1), runs the agent as an ordinary process (`--no-init`, frames on
 * ttyS1, read by loadOnKernel as ever), then the libbpf loader (`--no-init`, the objects under
 * /objects, the kernel's config as /boot/config-<release>: libbpf's .kconfig source, Debian kernels
 * have no /proc/config.gz; frames on ttyS2, a third serial port), then powers off. The script marks
 * the end of each loader on the console, which splits the run into its two load phases.
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
  kernelLineWatch,
  LIBBPF_LOADER_BIN,
  loadOnKernel,
} from './cell.js';
import { VmPool } from './pool.js';
import { type AgentOutput, AgentOutputParser } from './protocol.js';
import type { ConsoleWatch } from './qemu.js';
import { BUSYBOX, busyboxRun, type RunOptions, type RunOutcome, runInVm } from './run.js';

const repo = path.join(import.meta.dirname, '..', '..');
const casesDir = path.join(repo, 'build', 'cases');
const cases = existsSync(casesDir)
  ? readdirSync(casesDir)
      .filter((f) => f.endsWith('.o'))
      .sort()
  : [];
const ready =
  existsSync(AGENT_BIN) && existsSync(LIBBPF_LOADER_BIN) && existsSync(BUSYBOX) && cases.length > 0;

interface Side {
  verdict: 'loaded' | 'rejected';
  detail: string;
}

/** Host times (ms) of one boot's console signs: the init runs, the agent is done, libbpf is done. */
interface Signs {
  started?: number;
  agentDone?: number;
  libbpfDone?: number;
}

interface KernelRun {
  kernel: CachedKernel;
  cell: CellResult;
  libbpf: AgentOutput;
  /** The agent's and the libbpf loader's load phases, split by the script's console lines. */
  split: { agent?: number; libbpf?: number };
  /** The boot's QEMU outcome: kind, console tail (libbpf's side of an infra fault). */
  vmKind: string;
  vmTail: string;
}

let kernels: CachedKernel[] = [];
const runs = new Map<string, KernelRun>();
let wallMs = 0;

const AGENT_DONE = 'corematrix-proof: agent done';
const LIBBPF_DONE = 'corematrix-proof: libbpf done';

/** The /init script: the agent, then libbpf, each writing frames to a serial port of its own. */
const SCRIPT = [
  'mkdir -p /sys/kernel/debug /sys/fs/bpf',
  'mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null',
  'mount -t bpf bpf /sys/fs/bpf 2>/dev/null',
  // Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK (the binaries raise it only as PID 1).
  'ulimit -l unlimited',
  '/corematrix-agent --no-init --plan /plan.bin --out /dev/ttyS1',
  `echo "${AGENT_DONE} $?"`,
  'CMX_OBJECTS=/objects /libbpf-loader --no-init --out /dev/ttyS2',
  `echo "${LIBBPF_DONE} $?"`,
  'poweroff -f',
].join('\n');

async function configText(file: string): Promise<Uint8Array> {
  const bytes = await fs.readFile(file);
  return new Uint8Array(bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes);
}

/** kernelLineWatch (boot → run → shutdown) that also notes when the script's two lines go by. */
function signsWatch(signs: Signs): ConsoleWatch {
  const t0 = performance.now();
  const at = (): number => Math.round(performance.now() - t0);
  const kernel = kernelLineWatch();
  let window = '';
  return (chunk) => {
    window = (window + Buffer.from(chunk).toString('latin1')).slice(-4096);
    if (signs.agentDone === undefined && window.includes(AGENT_DONE)) signs.agentDone = at();
    if (signs.libbpfDone === undefined && window.includes(LIBBPF_DONE)) signs.libbpfDone = at();
    const said = kernel(chunk);
    if (said?.started === true) signs.started ??= at();
    return said;
  };
}

/** Each kernel's last VM attempt (the pool's runner sees every attempt; the last one counts). */
const lastOutcome = new Map<string, RunOutcome>();

async function runKernel(k: CachedKernel, pool: VmPool): Promise<KernelRun> {
  const objects = cases.map((f) => path.join('build', 'cases', f));
  const shell = await busyboxRun(SCRIPT);
  const extra = [
    ...shell.files,
    { path: '/libbpf-loader', bytes: await fs.readFile(LIBBPF_LOADER_BIN), mode: 0o755 },
    { path: `/boot/config-${k.release}`, bytes: await configText(k.config) },
    ...(await Promise.all(
      cases.map(async (f) => ({ path: `/objects/${f}`, bytes: await fs.readFile(path.join(casesDir, f)) })),
    )),
  ];
  let signs: Signs = {};
  const adjustRun = (o: RunOptions): RunOptions => ({
    ...o,
    init: shell.init,
    files: [...o.files, ...extra],
    resultPorts: 2,
    timeoutMs: 480_000,
    // A fresh watch (and signs) per attempt: the pool may run it again.
    get watch(): ConsoleWatch {
      signs = {};
      return signsWatch(signs);
    },
  });
  const cell = await loadOnKernel({
    kernel: { name: k.name, vmlinuz: k.vmlinuz, btf: k.btf!, config: k.config, release: k.release },
    objects,
    options: { pool, adjustRun },
  });
  const outcome = lastOutcome.get(k.vmlinuz);
  const parser = new AgentOutputParser();
  parser.push(outcome?.resultsByPort?.[1] ?? new Uint8Array(0));
  const split: KernelRun['split'] = {};
  if (signs.started !== undefined && signs.agentDone !== undefined)
    split.agent = signs.agentDone - signs.started;
  if (signs.agentDone !== undefined && signs.libbpfDone !== undefined)
    split.libbpf = signs.libbpfDone - signs.agentDone;
  return {
    kernel: k,
    cell,
    libbpf: parser.finish(),
    split,
    vmKind: outcome === undefined ? 'no VM run' : `${outcome.kind}: ${outcome.reason}`,
    vmTail: outcome?.consoleTail ?? '',
  };
}

beforeAll(async () => {
  if (!ready) return;
  kernels = await defaultDebianKernels();
  const t0 = performance.now();
  const pool = new VmPool({
    runner: async (o) => {
      const outcome = await runInVm(o);
      lastOutcome.set(o.kernel, outcome);
      return outcome;
    },
  });
  const done = await Promise.all(kernels.map((k) => runKernel(k, pool)));
  wallMs = Math.round(performance.now() - t0);
  for (const r of done) runs.set(r.kernel.name, r);
  const ms = (n: number | undefined) => (n === undefined ? '-' : `${(n / 1000).toFixed(2)} s`);
  for (const r of done) {
    const p = r.cell.phases;
    const n = r.cell.programs.length;
    console.log(
      `${r.kernel.name}: plan ${ms(p.plan)}, boot ${ms(p.boot)}, corematrix load ${ms(r.split.agent)},` +
        ` libbpf load ${ms(r.split.libbpf)}, shutdown ${ms(p.shutdown)}, VM ${ms(p.vm)} (${n} programs)`,
    );
  }
  console.log(
    `proof: ${done.length} kernels × 1 boot (both loaders), ${pool.concurrency} VMs at once, wall ${ms(wallMs)} (accel ${done[0]?.cell.accel ?? '?'})`,
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
      expect(libbpf.complete, `${run!.vmKind}: ${JSON.stringify(libbpf.errors)}\n${run!.vmTail}`).toBe(true);
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
