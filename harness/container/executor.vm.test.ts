/**
 * The container executor for real: the executor image (built from Debian's archive, or reused),
 * the case suite loaded on two Debian kernels (bullseye 5.10 and bookworm 6.1) once with QEMU on
 * this host and once with QEMU in a container. The same verdicts, errnos, causes and verifier
 * instruction counts, and — through buildReport with the same static verdicts — the same report
 * cells, timings aside. Then cleanup: a VM timeout leaves no container, a harness killed mid-run
 * (SIGTERM, SIGINT) leaves none, and a SIGKILLed one's container is swept by the next process.
 *
 * Needs a Docker engine (.ci/run starts dockerd); skipped, saying so, when none answers.
 */

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { type KernelSource, matrixKernelSources } from '../matrix/kernels.js';
import { loadMatrix } from '../matrix/load.js';
import { bothTiersReport, caseObjects } from '../report/fixture.js';
import { readReport } from '../report/json.js';
import type { Report } from '../report/schema.js';
import { runCorematrix } from '../test-support/cli.js';
import { testCacheRoot } from '../test-support/kernels.js';
import { AGENT_BIN, type CellResult, loadOnKernel } from '../vm/cell.js';
import { VmPool } from '../vm/pool.js';
import {
  connectEngine,
  engineAvailable,
  OWNER_LABEL,
  ownedContainers,
  ownerId,
  sweepLeftovers,
} from './engine.js';
import { containerExecutor } from './executor.js';
import { ensureImage } from './image.js';
import { EXECUTOR_IMAGE } from './images.js';

const repo = path.join(import.meta.dirname, '..', '..');
const engine = await engineAvailable();
const cases = caseObjects();
const KERNELS = ['bullseye', 'bookworm'];
const missing = [
  ...(engine.ok ? [] : [engine.reason]),
  ...(existsSync(AGENT_BIN) ? [] : [`no agent at ${AGENT_BIN} (scripts/build-agent.sh)`]),
  ...(cases.length > 0 ? [] : ['no case objects in build/cases (scripts/build-cases.sh)']),
];
const why = missing.length === 0 ? '' : ` (skipped: ${missing.join('; ')})`;

let sources: KernelSource[] = [];
let executorTag = '';
const cells = new Map<string, { local: CellResult; container: CellResult }>();

/** The containers carrying an owner label, with their owner. */
async function labelledContainers(): Promise<{ id: string; owner: string }[]> {
  const { docker } = await connectEngine();
  const list = await docker.listContainers({ all: true, filters: { label: [OWNER_LABEL] } });
  return list.map((c) => ({ id: c.Id, owner: c.Labels[OWNER_LABEL] ?? '' }));
}

beforeAll(async () => {
  if (missing.length > 0) return;
  const matrix = loadMatrix(path.join(repo, 'matrix.yaml'), { checkCases: false });
  sources = matrixKernelSources(matrix, { cache: testCacheRoot() }).filter((s) => KERNELS.includes(s.name));
  for (const s of sources) await s.open({ fetch: true });
  const image = await ensureImage(EXECUTOR_IMAGE);
  executorTag = image.tag;
  console.log(`executor image ${image.tag}: ${image.built ? 'built' : 'reused'} in ${image.ms} ms`);
  const executor = containerExecutor({ image: executorTag });
  // Both executors side by side, one VM per core at most.
  const pool = new VmPool({ concurrency: 2 });
  await Promise.all(
    sources.map(async (source) => {
      const t0 = performance.now();
      const [local, container] = await Promise.all([
        loadOnKernel({ kernel: source, objects: cases, options: { timeoutMs: 240_000, pool } }),
        loadOnKernel({ kernel: source, objects: cases, options: { timeoutMs: 240_000, pool, executor } }),
      ]);
      console.log(
        `${source.name}: local vm ${local.phases.vm} ms (boot ${local.phases.boot}), container vm ${container.phases.vm} ms (boot ${container.phases.boot}); both done in ${Math.round(performance.now() - t0)} ms`,
      );
      cells.set(source.name, { local, container });
    }),
  );
}, 1_200_000);

/** What a verdict is, without how long it took. */
function verdictOf(p: CellResult['programs'][number]) {
  return {
    object: p.object,
    program: p.program,
    verdict: p.verdict,
    errno: p.errno,
    errnoName: p.errnoName,
    stage: p.stage,
    cause: p.cause,
    insnsProcessed: p.insnsProcessed,
    notes: p.notes,
  };
}

/** A report with its timings removed: keys for durations and times, and the verifier's own clock. */
function withoutTimings(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutTimings);
  if (typeof value === 'string')
    return value.replace(/verification time \d+ usec/g, 'verification time N usec');
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([k]) => !/^(timings|generatedAt|durationMs|loadNs)$|Ms$|Ns$/.test(k))
      .map(([k, v]) => [k, withoutTimings(v)]),
  );
}

async function reportOf(source: KernelSource, cell: CellResult): Promise<Report> {
  return bothTiersReport(source.name, await source.open(), cell);
}

describe.skipIf(missing.length > 0)(`the container executor, for real${why}`, () => {
  it('gives the verdicts the local executor gives: the case suite on bullseye and bookworm', () => {
    expect([...cells.keys()].sort()).toEqual([...KERNELS].sort());
    for (const [name, { local, container }] of cells) {
      expect(local.status, `${name} local: ${local.infra?.reason}`).toBe('ok');
      expect(container.status, `${name} container: ${container.infra?.reason}`).toBe('ok');
      expect(container.accel).toBe(local.accel);
      expect(container.release).toBe(local.release);
      expect(container.programs.map(verdictOf)).toEqual(local.programs.map(verdictOf));
      const loaded = local.programs.filter((p) => p.verdict === 'loaded').length;
      const rejected = local.programs.filter((p) => p.verdict === 'rejected').length;
      // Both kinds happen on each kernel, so equal lists compare real outcomes, not empty ones.
      expect(loaded).toBeGreaterThan(10);
      expect(rejected).toBeGreaterThan(0);
      console.log(`${name}: ${loaded} loaded, ${rejected} rejected, identical in both executors`);
    }
  });

  it('makes the same report cells (timings aside)', async () => {
    for (const source of sources) {
      const { local, container } = cells.get(source.name)!;
      const a = withoutTimings(await reportOf(source, local)) as Report;
      const b = withoutTimings(await reportOf(source, container)) as Report;
      expect(b.cells.length).toBe(cases.length);
      expect(b.cells).toEqual(a.cells);
      expect(b.kernels).toEqual(a.kernels);
    }
  });

  it('corematrix run --executor container gives the report cells --executor local gives', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'corematrix-executor-run-'));
    try {
      const args = 'run --tier vm --kernel bookworm -t kernel_changes minimal --out'.split(' ');
      const [local, container] = await Promise.all([
        runCorematrix(...args, path.join(dir, 'local'), '--executor', 'local'),
        runCorematrix(...args, path.join(dir, 'container'), '--executor', 'container'),
      ]);
      expect(local.stderr).not.toMatch(/^corematrix: /m);
      expect(container.stderr).not.toMatch(/^corematrix: /m);
      expect([local.status, container.status]).toEqual([0, 0]);
      const a = await readReport(path.join(dir, 'local', 'report.json'));
      const b = await readReport(path.join(dir, 'container', 'report.json'));
      expect(a.cells.map((c) => c.object)).toEqual([
        'build/cases/kernel_changes.bpf.o',
        'build/cases/minimal.bpf.o',
      ]);
      // Real VM verdicts on both sides, rejections among them, so equality compares outcomes.
      const verdicts = a.cells.flatMap((c) => c.programs.map((p) => p.vm?.verdict));
      expect(verdicts).toContain('loaded');
      expect(verdicts).toContain('rejected');
      expect(withoutTimings(b.cells)).toEqual(withoutTimings(a.cells));
      expect(ownedContainers()).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 600_000);

  it('leaves no container behind after the cells', async () => {
    expect(ownedContainers()).toEqual([]);
    const mine = (await labelledContainers()).filter((c) => c.owner === ownerId());
    expect(mine).toEqual([]);
  });

  it('a VM timeout: the container is gone, the cell an infra_error after the retry', async () => {
    const source = sources.find((s) => s.name === 'bookworm')!;
    const seen = new Set<string>();
    const watch = setInterval(() => {
      for (const id of ownedContainers()) seen.add(id);
    }, 50);
    const r = await loadOnKernel({
      kernel: source,
      objects: cases.slice(0, 1),
      options: { timeoutMs: 1000, executor: containerExecutor({ image: executorTag }) },
    });
    clearInterval(watch);
    expect(r.status).toBe('infra_error');
    expect(r.infra?.kind).toBe('timeout');
    expect(r.infra?.attempts).toBe(2);
    // Two containers ran (the run and its retry), and both are gone.
    expect(seen.size).toBe(2);
    expect(ownedContainers()).toEqual([]);
    const ids = new Set((await labelledContainers()).map((c) => c.id));
    expect([...seen].filter((id) => ids.has(id))).toEqual([]);
  });

  /** A harness process (the built dist/) loading the suite on bookworm in a container. */
  function harnessProcess() {
    const kernel = sources.find((s) => s.name === 'bookworm')!;
    const script = `
      const { containerExecutor } = await import(${JSON.stringify(path.join(repo, 'dist', 'container', 'executor.js'))});
      const { loadOnKernel } = await import(${JSON.stringify(path.join(repo, 'dist', 'vm', 'cell.js'))});
      const { matrixKernelSources } = await import(${JSON.stringify(path.join(repo, 'dist', 'matrix', 'kernels.js'))});
      const { loadMatrix } = await import(${JSON.stringify(path.join(repo, 'dist', 'matrix', 'load.js'))});
      const matrix = loadMatrix(${JSON.stringify(path.join(repo, 'matrix.yaml'))}, { checkCases: false });
      const source = matrixKernelSources(matrix, { cache: ${JSON.stringify(testCacheRoot())} }).find((s) => s.name === ${JSON.stringify(kernel.name)});
      await loadOnKernel({ kernel: source, objects: ${JSON.stringify(cases)}, options: { timeoutMs: 300000, executor: containerExecutor({ image: ${JSON.stringify(executorTag)} }) } });
    `;
    return spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: repo, stdio: 'ignore' });
  }

  async function containerOf(pid: number, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = (await labelledContainers()).find((c) => c.owner.split('/')[1] === String(pid));
      if (found !== undefined) return found.id;
      if (Date.now() > deadline) throw new Error(`no container of process ${pid} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async function goneWithin(id: string, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (!(await labelledContainers()).some((c) => c.id === id)) return true;
      await new Promise((r) => setTimeout(r, 250));
    }
    return false;
  }

  const distReady = existsSync(path.join(repo, 'dist', 'container', 'executor.js'));
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it.skipIf(!distReady)(
      `a harness killed mid-run (${signal}) leaves no container`,
      async () => {
        const child = harnessProcess();
        const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
          child.on('exit', (code, s) => resolve({ code, signal: s })),
        );
        const id = await containerOf(child.pid!, 60_000);
        child.kill(signal);
        // It ends by the signal (its handlers removed the container first), not after its 300 s VM.
        expect(await exited).toEqual({ code: null, signal });
        // Removal was asked for before the process ended; under vfs it may still be finishing.
        expect(await goneWithin(id, 30_000)).toBe(true);
      },
      120_000,
    );
  }

  it.skipIf(!distReady)(
    "a SIGKILLed harness's container is swept by the next process that connects",
    async () => {
      const child = harnessProcess();
      const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
      const id = await containerOf(child.pid!, 60_000);
      child.kill('SIGKILL');
      await exited;
      // Nothing could clean up: the container is still there, its owner gone.
      expect((await labelledContainers()).map((c) => c.id)).toContain(id);
      const swept = await sweepLeftovers(await connectEngine());
      expect(swept).toContain(id);
      expect((await labelledContainers()).map((c) => c.id)).not.toContain(id);
    },
    120_000,
  );
});
