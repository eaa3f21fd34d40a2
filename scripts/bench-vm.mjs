// The VM tier's benchmark, run by scripts/bench.mjs (needs `npm run build`, the Debian kernels in
// kernels/ and the case suite; builds the agent and the libbpf loader). For the four default
// Debian kernels, TCG, at most as many VMs at once as cores, three ways over the same objects:
//   - bare boots: a busybox init that powers off at once (what any VM run costs);
//   - corematrix: `corematrix load <all case objects> --kernel K`, whole processes;
//   - libbpf 1.7: its reference loader (build/agent/libbpf-loader) as init, loading every program
//     of every object on its own, in the same kind of VM.
// Prints one JSON object: wall times, per-kernel phases and program counts.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (m) => import(join(repo, 'dist', m));
const { loadMatrix } = await dist('matrix/load.js');
const { matrixKernelSources } = await dist('matrix/kernels.js');
const { LIBBPF_LOADER_BIN, runResultInit } = await dist('vm/cell.js');
const { VmPool } = await dist('vm/pool.js');
const { busyboxRun, runInVm } = await dist('vm/run.js');

for (const script of ['build-cases.sh', 'build-agent.sh']) {
  const r = spawnSync('bash', [join(repo, 'scripts', script)], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) throw new Error(`${script} failed`);
}
const casesDir = join(repo, 'build', 'cases');
const cases = readdirSync(casesDir).filter((n) => n.endsWith('.o') && !n.includes('/'));
// The default matrix's kernels that have an image to boot (the Debian ones; the host has none).
const matrix = loadMatrix(join(repo, 'matrix.yaml'), { checkCases: false });
const kernels = [];
for (const source of matrixKernelSources(matrix)) {
  const k = await source.open({ fetch: true, read: false });
  if (k.vmlinuz !== undefined)
    kernels.push({ name: k.name, vmlinuz: k.vmlinuz, config: k.configFile, release: k.release });
}
const concurrency = availableParallelism();

/** Runs `task` over `items`, `limit` at a time; resolves to the wall time in ms and the results. */
async function timed(items, limit, task) {
  const start = performance.now();
  const results = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await task(items[i]);
      }
    }),
  );
  return { wallMs: performance.now() - start, results };
}

const bare = await timed(kernels, concurrency, async (k) => {
  const vm = await busyboxRun('done_marker; poweroff -f');
  const t = performance.now();
  const outcome = await runInVm({ kernel: k.vmlinuz, ...vm, timeoutMs: 120_000 });
  return { kernel: k.name, kind: outcome.kind, ms: performance.now() - t };
});

const ours = await timed(kernels, concurrency, (k) => {
  const objects = cases.map((n) => join(casesDir, n));
  const args = [join(repo, 'bin', 'corematrix.js'), 'load', ...objects, '--kernel', k.name, '--json'];
  return new Promise((resolve) => {
    const t = performance.now();
    const child = spawn(process.execPath, args, { cwd: repo, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('close', (code) => {
      let cell;
      try {
        cell = JSON.parse(out);
      } catch {
        cell = undefined;
      }
      resolve({
        kernel: k.name,
        exit: code,
        programs: cell?.programs?.length,
        phases: cell?.phases,
        ms: performance.now() - t,
      });
    });
  });
});

const pool = new VmPool({ concurrency });
const theirs = await timed(kernels, concurrency, async (k) => {
  const config = readFileSync(k.config);
  const files = [
    { path: '/libbpf-loader', bytes: readFileSync(LIBBPF_LOADER_BIN), mode: 0o755 },
    { path: `/boot/config-${k.release}`, bytes: config[0] === 0x1f ? gunzipSync(config) : config },
    ...cases.map((n) => ({ path: `/objects/${n}`, bytes: readFileSync(join(casesDir, n)) })),
  ];
  const t = performance.now();
  const run = await runResultInit(
    { vmlinuz: k.vmlinuz, init: '/libbpf-loader', files, timeoutMs: 300_000 },
    pool,
  );
  return {
    kernel: k.name,
    kind: run.outcome.kind,
    programs: run.output.results?.length,
    ms: performance.now() - t,
    phases: run.outcome.phases,
  };
});

console.log(JSON.stringify({ concurrency, objects: cases.length, bare, corematrix: ours, libbpf: theirs }));
